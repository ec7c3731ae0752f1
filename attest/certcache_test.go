package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestCertCache(t *testing.T) {
	c := NewCertCache(2)
	root, rootKey := makeCert(t, "root", nil, nil)
	leaf, _ := makeCert(t, "leaf", root, rootKey)
	other, _ := makeCert(t, "other", nil, nil)

	p1, err := c.Parse(root.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := c.Parse(root.Raw); p2 != p1 {
		t.Error("second Parse of the same bytes parsed again")
	}
	if _, err := c.Parse(append([]byte{}, root.Raw[:len(root.Raw)-1]...)); err == nil {
		t.Error("truncated certificate parsed")
	}
	if err := c.CheckSignature(leaf, root); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignature(leaf, other); err == nil {
		t.Error("signature by another key accepted")
	}
	if _, links := c.Len(); links != 1 {
		t.Errorf("links = %d, want 1 (failures are not cached)", links)
	}
	// A forged child with the same TBS but a broken signature is other bytes,
	// so the cached link does not cover it.
	forged := *leaf
	forged.Signature = append([]byte{}, leaf.Signature...)
	forged.Signature[len(forged.Signature)-1] ^= 1
	forged.Raw = append(append([]byte{}, leaf.Raw...), 0)
	if err := c.CheckSignature(&forged, root); err == nil {
		t.Error("forged signature accepted")
	}
	for i := 0; i < 5; i++ {
		x, _ := makeCert(t, "x", nil, nil)
		if _, err := c.Parse(x.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if certs, _ := c.Len(); certs != 2 {
		t.Errorf("cache holds %d certificates, bound is 2", certs)
	}
}
