package webauthn

import (
	"crypto/x509"
	_ "embed"
	"fmt"

	"github.com/keybind/keybind/attest"
)

// microsoftTPMRootPEM is the Microsoft TPM Root Certificate Authority 2014,
// the root of the AIK certificates Windows obtains for its TPM (published at
// http://www.microsoft.com/pkiops/certs/Microsoft%20TPM%20Root%20Certificate%20Authority%202014.crt).
//
//go:embed microsoft-tpm-root-ca-2014.pem
var microsoftTPMRootPEM []byte

// Pins of the embedded root: SHA-256 of the certificate and of its
// SubjectPublicKeyInfo. The root is used only when both match.
const (
	MicrosoftTPMRootSHA256     = "870c7a35ceab3d59979f2c6a524042d404cb71518004350925fb2ced79a999da"
	MicrosoftTPMRootSPKISHA256 = "5eadfa0187a24edb747b98523f89cf92d33eeb20ec81b9d0a31e170b73c2dbb2"
)

// MicrosoftTPMRoot returns the built-in root of the tpm format, after
// checking it against its pins.
func MicrosoftTPMRoot() (*x509.Certificate, error) {
	c, err := attest.PinnedCertificate(microsoftTPMRootPEM, MicrosoftTPMRootSHA256, MicrosoftTPMRootSPKISHA256)
	if err != nil {
		return nil, fmt.Errorf("webauthn: %v", err)
	}
	return c, nil
}
