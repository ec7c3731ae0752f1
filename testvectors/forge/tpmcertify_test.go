package forge_test

import (
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestTPMCertify checks that a certification made in software passes every
// check of attest/tpm under an AK trusted explicitly, and fails them when
// changed.
func TestTPMCertify(t *testing.T) {
	challenge := []byte("enrollment challenge 42")
	c, err := forge.TPMCertify(challenge)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := tpm.TrustedAK(c.AKPublic, "forge")
	if err != nil {
		t.Fatal(err)
	}
	params := tpm.CertificationParameters{Public: c.Public, CreateAttestation: c.Attestation, CreateSignature: c.Signature}
	v, err := tpm.VerifyCertification(ak, params, challenge)
	if err != nil {
		t.Fatal(err)
	}
	if v.Format != "tpm" || v.Root != "forge" || !c.Key.PublicKey.Equal(v.PublicKey) {
		t.Errorf("verdict %+v", v)
	}
	// Another challenge, another AK, a changed attestation: refused with
	// the code of the check.
	if _, err := tpm.VerifyCertification(ak, params, []byte("another")); attest.CodeOf(err) != tpm.CodeChallengeMismatch {
		t.Errorf("another challenge: %v", err)
	}
	other, err := forge.TPMCertify(challenge)
	if err != nil {
		t.Fatal(err)
	}
	otherAK, _ := tpm.TrustedAK(other.AKPublic, "other")
	if _, err := tpm.VerifyCertification(otherAK, params, challenge); attest.CodeOf(err) != tpm.CodeBadSignature {
		t.Errorf("another AK: %v", err)
	}
	bad := append([]byte{}, c.Attestation...)
	bad[len(bad)-1] ^= 1
	if _, err := tpm.VerifyCertification(ak, tpm.CertificationParameters{Public: c.Public, CreateAttestation: bad, CreateSignature: c.Signature}, challenge); err == nil {
		t.Error("a changed attestation was accepted")
	}
	// A new key certified by the same AK.
	if err := c.Certify(challenge); err != nil {
		t.Fatal(err)
	}
	if _, err := tpm.VerifyCertification(ak, tpm.CertificationParameters{Public: c.Public, CreateAttestation: c.Attestation, CreateSignature: c.Signature}, challenge); err != nil {
		t.Error(err)
	}
}
