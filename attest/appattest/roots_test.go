package appattest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestAppleRootPins checks the embedded root against the SHA-256 values
// published with the vendor roots: of the certificate and of its key.
func TestAppleRootPins(t *testing.T) {
	root, err := AppleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(root.Raw); hex.EncodeToString(h[:]) != "1cb9823ba28ba6ad2d33a006941de2ae4f513ef1d4e831b9f7e0fa7b6242c932" {
		t.Errorf("certificate SHA-256 %x", h)
	}
	if h := sha256.Sum256(root.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != "1ae751fd29896d0f1f13fe226c063f445d40d8938acc6245c251ecc0679330bd" {
		t.Errorf("SPKI SHA-256 %x", h)
	}
	if root.Subject.CommonName != AppleRootName || !root.IsCA {
		t.Errorf("root %v, CA %v", root.Subject, root.IsCA)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("the root is not self-signed: %v", err)
	}
	// The same file as the shared vendor roots, when they are at hand.
	shared := filepath.Join("..", "..", "..", "shared", "roots", "apple-app-attestation-root-ca.pem")
	if b, err := os.ReadFile(shared); err == nil && string(b) != string(appleRootPEM) {
		t.Errorf("the embedded root differs from %s", shared)
	}
}

// TestAppleRootPinMismatch checks that an edited embedded root is refused
// rather than trusted.
func TestAppleRootPinMismatch(t *testing.T) {
	saved := appleRootPEM
	defer func() { appleRootPEM = saved }()
	appleRootPEM = []byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
	if _, err := AppleRoot(); err == nil {
		t.Fatal("an edited root was accepted")
	}
	v := &Verifier{}
	if _, err := v.VerifyAttestation(nil, make([]byte, 32), AttestationOptions{ClientDataHash: []byte{1}, AppIDs: []string{"A.b"}}); err == nil {
		t.Fatal("a verifier without its root verified something")
	}
}
