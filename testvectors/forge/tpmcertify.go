package forge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/google/go-tpm/legacy/tpm2"
)

// TPMCertification is what a PC sends to enroll a sign-in key with an
// attestation key (AK) enrolled before: the key's TPMT_PUBLIC, the
// TPMS_ATTEST of a TPM2_Certify of it by the AK over the server's challenge,
// and the AK's TPMT_SIGNATURE of that; AKPublic is the AK's TPMT_PUBLIC.
// Both keys are ECDSA P-256 keys made in software, with the attributes a TPM
// gives them (fixedTPM, fixedParent, sensitiveDataOrigin; the AK restricted):
// the structures are exactly a TPM's, but no TPM vouches for anything, and
// only a verifier told to trust AKPublic accepts them (for tests and
// benchmarks without a TPM; testvectors/forge/tpmsim makes the same with the
// TCG reference TPM).
type TPMCertification struct {
	AKPublic                       []byte
	Public, Attestation, Signature []byte
	// AK signs the certifications, Key is the certified key.
	AK, Key *ecdsa.PrivateKey
}

// TPMKeyAttributes are a TPM-made, non-duplicable signing key's attributes.
const TPMKeyAttributes = tpm2.FlagFixedTPM | tpm2.FlagFixedParent | tpm2.FlagSensitiveDataOrigin | tpm2.FlagUserWithAuth | tpm2.FlagSign

// TPMCertify makes a new AK and a new sign-in key certified by it over
// challenge.
func TPMCertify(challenge []byte) (*TPMCertification, error) {
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &TPMCertification{AK: ak}
	if c.AKPublic, err = tpmECCPublic(&ak.PublicKey, TPMKeyAttributes|tpm2.FlagRestricted); err != nil {
		return nil, err
	}
	return c, c.Certify(challenge)
}

// Certify makes a new sign-in key certified by c's AK over challenge, in
// place of c's key.
func (c *TPMCertification) Certify(challenge []byte) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, err := tpmECCPublic(&key.PublicKey, TPMKeyAttributes)
	if err != nil {
		return err
	}
	name, err := tpmName(pub)
	if err != nil {
		return err
	}
	akName, err := tpmName(c.AKPublic)
	if err != nil {
		return err
	}
	att, err := tpm2.AttestationData{
		Magic: 0xff544347, Type: tpm2.TagAttestCertify, QualifiedSigner: akName, ExtraData: challenge,
		ClockInfo: tpm2.ClockInfo{Clock: 1000, Safe: 1}, FirmwareVersion: 0x2019102300000000,
		AttestedCertifyInfo: &tpm2.CertifyInfo{Name: name, QualifiedName: name},
	}.Encode()
	if err != nil {
		return fmt.Errorf("forge: TPMS_ATTEST: %w", err)
	}
	d := sha256.Sum256(att)
	r, s, err := ecdsa.Sign(rand.Reader, c.AK, d[:])
	if err != nil {
		return err
	}
	sig, err := tpm2.Signature{Alg: tpm2.AlgECDSA, ECC: &tpm2.SignatureECC{HashAlg: tpm2.AlgSHA256, R: r, S: s}}.Encode()
	if err != nil {
		return fmt.Errorf("forge: TPMT_SIGNATURE: %w", err)
	}
	c.Key, c.Public, c.Attestation, c.Signature = key, pub, att, sig
	return nil
}

// tpmECCPublic encodes a P-256 ECDSA signing key's TPMT_PUBLIC.
func tpmECCPublic(k *ecdsa.PublicKey, attrs tpm2.KeyProp) ([]byte, error) {
	point, err := k.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, err
	}
	return tpm2.Public{
		Type: tpm2.AlgECC, NameAlg: tpm2.AlgSHA256, Attributes: attrs,
		ECCParameters: &tpm2.ECCParams{
			Sign:    &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256},
			CurveID: tpm2.CurveNISTP256,
			Point:   tpm2.ECPoint{XRaw: point[1:33], YRaw: point[33:]},
		},
	}.Encode()
}

// tpmName returns the TPM name of an encoded TPMT_PUBLIC.
func tpmName(public []byte) (tpm2.Name, error) {
	p, err := tpm2.DecodePublic(public)
	if err != nil {
		return tpm2.Name{}, err
	}
	return p.Name()
}
