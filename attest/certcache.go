package attest

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
)

// CertCache remembers what is expensive about attestation chains and the
// same for millions of devices: parsed intermediate certificates, and
// signature links already verified. Both are keyed by the SHA-256 of the
// exact DER bytes, so a cached answer is only ever reused for identical
// bytes. Only facts that never change are cached (this certificate parses to
// that; this certificate's signature verifies under that certificate's key):
// validity periods, revocation and policy are checked again on every use, so
// the validation time, the revocation list and the expiry policy of each
// call are always honoured.
//
// A CertCache is bounded (when full, the oldest entries go first) and safe
// for concurrent use. The zero value is not usable; call NewCertCache.
type CertCache struct {
	mu     sync.Mutex
	max    int
	certs  map[[32]byte]*x509.Certificate
	links  map[[64]byte]struct{}
	order  [][32]byte // insertion order of certs, for eviction
	lorder [][64]byte // insertion order of links
}

// NewCertCache returns a cache holding at most max certificates and max
// links (max <= 0 means 4096).
func NewCertCache(max int) *CertCache {
	if max <= 0 {
		max = 4096
	}
	return &CertCache{max: max, certs: map[[32]byte]*x509.Certificate{}, links: map[[64]byte]struct{}{}}
}

// Parse returns the certificate for der, parsing it only the first time. The
// returned certificate is shared: callers must not modify it.
func (c *CertCache) Parse(der []byte) (*x509.Certificate, error) {
	k := sha256.Sum256(der)
	c.mu.Lock()
	cert, ok := c.certs[k]
	c.mu.Unlock()
	if ok {
		return cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, ok := c.certs[k]; !ok {
		if len(c.order) >= c.max {
			delete(c.certs, c.order[0])
			c.order = c.order[1:]
		}
		c.certs[k] = cert
		c.order = append(c.order, k)
	}
	c.mu.Unlock()
	return cert, nil
}

// CheckSignature checks that child's signature verifies under parent's key,
// remembering success (never failure) for the exact pair of certificates.
// It does not look at validity, constraints or revocation.
func (c *CertCache) CheckSignature(child, parent *x509.Certificate) error {
	var k [64]byte
	ck, pk := sha256.Sum256(child.Raw), sha256.Sum256(parent.Raw)
	copy(k[:32], ck[:])
	copy(k[32:], pk[:])
	c.mu.Lock()
	_, ok := c.links[k]
	c.mu.Unlock()
	if ok {
		return nil
	}
	// The bare signature check, not CheckSignatureFrom: that also demands
	// CA rights of parent, and real attestation chains have batch
	// certificates without them. Callers check the chain's shape.
	if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return err
	}
	c.mu.Lock()
	if _, ok := c.links[k]; !ok {
		if len(c.lorder) >= c.max {
			delete(c.links, c.lorder[0])
			c.lorder = c.lorder[1:]
		}
		c.links[k] = struct{}{}
		c.lorder = append(c.lorder, k)
	}
	c.mu.Unlock()
	return nil
}

// Len returns the number of cached certificates and links.
func (c *CertCache) Len() (certs, links int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.certs), len(c.links)
}
