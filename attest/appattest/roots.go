package appattest

import (
	"crypto/x509"
	_ "embed"
	"fmt"

	"github.com/keybind/keybind/attest"
)

// The Apple App Attestation Root CA, as Apple publishes it at
// https://www.apple.com/certificateauthority/Apple_App_Attestation_Root_CA.pem.
//
//go:embed apple-app-attestation-root-ca.pem
var appleRootPEM []byte

// Pins of the embedded root: SHA-256 of the certificate (DER) and of its
// SubjectPublicKeyInfo. The root is only used when both match.
const (
	AppleRootSHA256     = "1cb9823ba28ba6ad2d33a006941de2ae4f513ef1d4e831b9f7e0fa7b6242c932"
	AppleRootSPKISHA256 = "1ae751fd29896d0f1f13fe226c063f445d40d8938acc6245c251ecc0679330bd"
)

// AppleRoot returns a freshly parsed copy of the built-in Apple App
// Attestation Root CA, after checking both pins.
func AppleRoot() (*x509.Certificate, error) {
	c, err := attest.PinnedCertificate(appleRootPEM, AppleRootSHA256, AppleRootSPKISHA256)
	if err != nil {
		return nil, fmt.Errorf("appattest: the embedded Apple root: %v", err)
	}
	return c, nil
}
