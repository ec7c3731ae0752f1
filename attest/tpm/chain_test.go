package tpm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(t *testing.T, name string, parent *testCert, tmpl *x509.Certificate) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.Subject = pkix.Name{CommonName: name}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0)
	}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{c, key}
}

func ca(pathLen int, zero bool) *x509.Certificate {
	return &x509.Certificate{BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign, MaxPathLen: pathLen, MaxPathLenZero: zero}
}

// TestVerifyChain covers each check of VerifyChain.
func TestVerifyChain(t *testing.T) {
	root := issue(t, "root", nil, ca(-1, false))
	inter := issue(t, "intermediate", root, ca(-1, false))
	leaf := issue(t, "leaf", inter, &x509.Certificate{})
	zeroPath := issue(t, "zero path", root, ca(0, true))
	sub := issue(t, "sub", zeroPath, ca(-1, false))
	subLeaf := issue(t, "sub leaf", sub, &x509.Certificate{})
	notCA := issue(t, "not a CA", root, &x509.Certificate{BasicConstraintsValid: true})
	underNotCA := issue(t, "under not a CA", notCA, &x509.Certificate{})
	noSign := issue(t, "no cert sign", root, &x509.Certificate{BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature})
	underNoSign := issue(t, "under no cert sign", noSign, &x509.Certificate{})
	critical := issue(t, "critical", inter, &x509.Certificate{ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}})
	otherRoot := issue(t, "root", nil, ca(-1, false)) // same name, other key
	expiredInter := issue(t, "expired intermediate", root, &x509.Certificate{BasicConstraintsValid: true, IsCA: true, NotBefore: t0.AddDate(-2, 0, 0), NotAfter: t0.AddDate(0, 0, -1)})
	underExpired := issue(t, "under expired", expiredInter, &x509.Certificate{})

	roots := []*x509.Certificate{root.cert}
	chain := func(cs ...*testCert) []*x509.Certificate {
		out := make([]*x509.Certificate, len(cs))
		for i, c := range cs {
			out[i] = c.cert
		}
		return out
	}
	for _, c := range []struct {
		name  string
		chain []*x509.Certificate
		roots []*x509.Certificate
		code  attest.Code
	}{
		{"valid", chain(leaf, inter), roots, ""},
		{"valid with its root", chain(leaf, inter, root), roots, ""},
		{"empty", nil, roots, tpm.CodeChainShape},
		{"no roots", chain(leaf, inter), nil, tpm.CodeChainUntrustedRoot},
		{"missing intermediate", chain(leaf), roots, tpm.CodeChainUntrustedRoot},
		{"root of the same name, other key", chain(leaf, inter), []*x509.Certificate{otherRoot.cert}, tpm.CodeChainBadSignature},
		{"out of order", chain(inter, leaf), roots, tpm.CodeChainBadSignature},
		{"path length exceeded", chain(subLeaf, sub, zeroPath), roots, tpm.CodeChainPathLength},
		{"issuer not a CA", chain(underNotCA, notCA), roots, tpm.CodeChainNotCA},
		{"issuer without certSign", chain(underNoSign, noSign), roots, tpm.CodeChainNotCA},
		{"unknown critical extension", chain(critical, inter), roots, tpm.CodeChainCritical},
		{"expired intermediate", chain(underExpired, expiredInter), roots, tpm.CodeChainExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cache := range []*attest.CertCache{nil, attest.NewCertCache(0)} {
				r, err := tpm.VerifyChain(c.chain, tpm.ChainOptions{Roots: c.roots, Time: t0, Cache: cache})
				wantCode(t, err, c.code)
				if c.code == "" && r != root.cert {
					t.Fatalf("root %v", r.Subject)
				}
			}
		})
	}
	if _, err := tpm.VerifyChain(chain(leaf, inter), tpm.ChainOptions{Roots: roots, Time: t0.AddDate(2, 0, 0)}); attest.CodeOf(err) != tpm.CodeChainExpired {
		t.Errorf("after expiry: %v", err)
	}
	if _, err := tpm.VerifyChain(chain(leaf, inter), tpm.ChainOptions{Roots: roots, Time: t0.AddDate(-2, 0, 0)}); attest.CodeOf(err) != tpm.CodeChainNotYetValid {
		t.Errorf("before validity: %v", err)
	}
	many := make([][]byte, 9)
	for i := range many {
		many[i] = leaf.cert.Raw
	}
	if _, err := tpm.ParseChain(many, nil); attest.CodeOf(err) != tpm.CodeChainShape {
		t.Errorf("9 certificates: %v", err)
	}
	if _, err := tpm.ParseChain([][]byte{leaf.cert.Raw[:50]}, nil); attest.CodeOf(err) != tpm.CodeChainMalformed {
		t.Errorf("truncated certificate: %v", err)
	}
}
