package tpm

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/keybind/keybind/attest"
)

// ChainOptions says how a certificate chain is verified.
type ChainOptions struct {
	// Roots are the trust anchors. None means nothing is trusted.
	Roots []*x509.Certificate
	// Time is the validation time; zero means time.Now().
	Time time.Time
	// Cache, when set, remembers parsed issuing certificates and verified
	// signature links across calls.
	Cache *attest.CertCache
	// LeafCritical lists the critical extensions the leaf may carry beyond
	// those crypto/x509 handles, because the caller checks them itself (a
	// TPM certificate's subject alternative name holds only a
	// directoryName, which crypto/x509 leaves unhandled).
	LeafCritical []asn1.ObjectIdentifier
}

// ParseChain parses a chain given leaf first. The leaf is parsed afresh;
// issuing certificates go through the cache when there is one.
func ParseChain(ders [][]byte, cache *attest.CertCache) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, attest.Errorf(CodeChainShape, "no certificate")
	}
	if len(ders) > 8 {
		return nil, attest.Errorf(CodeChainShape, "a chain of %d certificates (at most 8)", len(ders))
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		var (
			c   *x509.Certificate
			err error
		)
		if i > 0 && cache != nil {
			c, err = cache.Parse(der)
		} else {
			c, err = x509.ParseCertificate(der)
		}
		if err != nil {
			return nil, attest.Errorf(CodeChainMalformed, "certificate %d: %v", i, err)
		}
		certs[i] = c
	}
	return certs, nil
}

// VerifyChain checks a parsed chain, leaf first, as the device sent it: each
// certificate is signed by the next, the last by one of the roots (a copy of
// the root at the end of the chain is allowed); every certificate, the root
// included, is valid at the validation time; every issuing certificate is a
// CA allowed to sign certificates, within its path length; no certificate
// carries a critical extension nobody checks. It returns the root.
func VerifyChain(certs []*x509.Certificate, opts ChainOptions) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, attest.Errorf(CodeChainShape, "no certificate")
	}
	if len(opts.Roots) == 0 {
		return nil, attest.Errorf(CodeChainUntrustedRoot, "no trust anchor is configured")
	}
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	// A chain that carries its root ends with a certificate identical to a
	// trust anchor: the anchor itself is what is checked.
	if last := certs[len(certs)-1]; len(certs) > 1 && isRoot(last, opts.Roots) {
		certs = certs[:len(certs)-1]
	}
	for i, c := range certs {
		if err := checkValidity(fmt.Sprintf("certificate %d (%s)", i, name(c)), c, now); err != nil {
			return nil, err
		}
		if err := checkCritical(i, c, opts.LeafCritical); err != nil {
			return nil, err
		}
		if i > 0 {
			if err := checkIssuer(i, c, i-1); err != nil {
				return nil, err
			}
		}
		if i+1 < len(certs) {
			if err := checkLink(opts.Cache, c, certs[i+1]); err != nil {
				return nil, attest.Errorf(CodeChainBadSignature, "certificate %d (%s) is not signed by certificate %d (%s): %v", i, name(c), i+1, name(certs[i+1]), err)
			}
		}
	}
	last := certs[len(certs)-1]
	var lastErr error
	for _, r := range opts.Roots {
		if !bytes.Equal(r.RawSubject, last.RawIssuer) {
			continue
		}
		if err := checkLink(opts.Cache, last, r); err != nil {
			lastErr = err
			continue
		}
		if err := checkValidity("root "+name(r), r, now); err != nil {
			return nil, err
		}
		if err := checkIssuer(len(certs), r, len(certs)-1); err != nil {
			return nil, err
		}
		return r, nil
	}
	if lastErr != nil {
		return nil, attest.Errorf(CodeChainBadSignature, "certificate %d (%s) names a trusted root as issuer, and its signature does not verify under it: %v", len(certs)-1, name(last), lastErr)
	}
	return nil, attest.Errorf(CodeChainUntrustedRoot, "certificate %d (%s) is issued by %q, which is not a trusted root", len(certs)-1, name(last), last.Issuer.String())
}

func checkValidity(what string, c *x509.Certificate, now time.Time) error {
	valid := func() string {
		return fmt.Sprintf("valid from %s to %s, not at %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.Before(c.NotBefore) {
		return attest.Errorf(CodeChainNotYetValid, "%s is %s", what, valid())
	}
	if now.After(c.NotAfter) {
		return attest.Errorf(CodeChainExpired, "%s is %s", what, valid())
	}
	return nil
}

func isRoot(c *x509.Certificate, roots []*x509.Certificate) bool {
	for _, r := range roots {
		if bytes.Equal(c.Raw, r.Raw) {
			return true
		}
	}
	return false
}

// checkIssuer checks that c, at position i of the chain, may issue the
// certificates below it, of which casBelow are CAs (all but the leaf).
func checkIssuer(i int, c *x509.Certificate, casBelow int) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return attest.Errorf(CodeChainNotCA, "certificate %d (%s) issues a certificate and is not a CA", i, name(c))
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return attest.Errorf(CodeChainNotCA, "certificate %d (%s) issues a certificate and its key usage does not allow it", i, name(c))
	}
	if (c.MaxPathLen > 0 || c.MaxPathLenZero) && casBelow > c.MaxPathLen {
		return attest.Errorf(CodeChainPathLength, "certificate %d (%s) allows %d CAs below it, the chain has %d", i, name(c), c.MaxPathLen, casBelow)
	}
	return nil
}

func checkCritical(i int, c *x509.Certificate, leafAllowed []asn1.ObjectIdentifier) error {
	for _, oid := range c.UnhandledCriticalExtensions {
		allowed := false
		if i == 0 {
			for _, a := range leafAllowed {
				allowed = allowed || oid.Equal(a)
			}
		}
		if !allowed {
			return attest.Errorf(CodeChainCritical, "certificate %d (%s) has the critical extension %v, which nothing checks", i, name(c), oid)
		}
	}
	return nil
}

func checkLink(cache *attest.CertCache, child, parent *x509.Certificate) error {
	if cache != nil {
		return cache.CheckSignature(child, parent)
	}
	return parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature)
}

// name is how a certificate is named in reasons and verdicts.
func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if s := c.Subject.String(); s != "" {
		return s
	}
	return fmt.Sprintf("serial %x", c.SerialNumber)
}

// RootName is the name a verdict gives a trust anchor: its common name, or
// its whole subject when it has none.
func RootName(c *x509.Certificate) string { return name(c) }
