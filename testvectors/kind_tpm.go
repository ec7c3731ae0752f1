package testvectors

import (
	"crypto/x509"
	"fmt"

	"github.com/keybind/keybind/attest/tpm"
)

// EnrolledAKRoot is the root a tpm-certify verdict names when the vector
// gives no AK certificate: the vector's AK stands for one enrolled earlier
// by credential activation.
const EnrolledAKRoot = "enrolled AK"

// kindTPMCertify checks a key certified by a TPM attestation key (VECTORS.md,
// kind tpm-certify).
func kindTPMCertify(c *Case) (map[string]any, error) {
	when, err := c.Time()
	if err != nil {
		return nil, err
	}
	akPublic, err := c.RequiredBytes(Input, "ak_public")
	if err != nil {
		return nil, err
	}
	var p tpm.CertificationParameters
	if p.Public, err = c.RequiredBytes(Input, "public"); err != nil {
		return nil, err
	}
	if p.CreateAttestation, err = c.RequiredBytes(Input, "create_attestation"); err != nil {
		return nil, err
	}
	if p.CreateSignature, err = c.RequiredBytes(Input, "create_signature"); err != nil {
		return nil, err
	}
	akChain, hasChain, err := c.Certificates(Input, "ak_certificate")
	if err != nil {
		return nil, err
	}
	challenge, err := c.RequiredBytes(Params, "challenge")
	if err != nil {
		return nil, err
	}
	rootDERs, _, err := c.Certificates(Params, "roots")
	if err != nil {
		return nil, err
	}
	roots, err := anchorsField(Params, "roots", rootDERs)
	if err != nil {
		return nil, err
	}

	public, _, err := tpm.ParsePublic2B(akPublic)
	if err != nil {
		return nil, err
	}
	var ak *tpm.AK
	if hasChain {
		ak, err = tpm.AKFromCertificate(public, akChain, tpm.ChainOptions{Roots: roots, Time: when})
	} else {
		ak, err = tpm.TrustedAK(public, EnrolledAKRoot)
	}
	if err != nil {
		return nil, err
	}
	v, err := tpm.VerifyCertification(ak, p, challenge)
	if err != nil {
		return nil, err
	}
	return v.Facts, nil
}

// anchorsField parses trust anchors given as a vector field; one that does not
// parse makes the vector unusable.
func anchorsField(section, field string, ders [][]byte) ([]*x509.Certificate, error) {
	roots := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		r, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, &FieldError{Field: section + "." + field, Err: fmt.Errorf("root %d: %v", i, err)}
		}
		roots = append(roots, r)
	}
	return roots, nil
}
