package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

func TestSplitCertificates(t *testing.T) {
	a, _ := makeCert(t, "a", nil, nil)
	b, _ := makeCert(t, "b", nil, nil)
	two := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Raw})...)
	certs, err := ParseCertificates(two)
	if err != nil || len(certs) != 2 || certs[0].Subject.CommonName != "a" || certs[1].Subject.CommonName != "b" {
		t.Fatalf("PEM pair: %v %v", certs, err)
	}
	if ders, err := SplitCertificates(a.Raw); err != nil || len(ders) != 1 || string(ders[0]) != string(a.Raw) {
		t.Errorf("DER: %v", err)
	}
	for name, bad := range map[string]string{
		"key block":     "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"trailing text": string(two) + "garbage",
		"no block":      "-----BEGIN CERTIFICATE-----\nnot closed",
	} {
		if _, err := SplitCertificates([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseCertificates([]byte("junk")); err == nil {
		t.Error("junk DER parsed")
	}
}

func TestPinnedCertificate(t *testing.T) {
	c, _ := makeCert(t, "root", nil, nil)
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	hexsum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	certPin, spkiPin := hexsum(c.Raw), hexsum(c.RawSubjectPublicKeyInfo)
	if _, err := PinnedCertificate(p, certPin, spkiPin); err != nil {
		t.Fatal(err)
	}
	if _, err := PinnedCertificate(p, strings.Repeat("0", 64), spkiPin); err == nil {
		t.Error("certificate pin not checked")
	}
	if _, err := PinnedCertificate(p, certPin, strings.Repeat("0", 64)); err == nil {
		t.Error("key pin not checked")
	}
	if _, err := PinnedCertificate(append(p, p...), certPin, spkiPin); err == nil {
		t.Error("two certificates accepted as one root")
	}
}
