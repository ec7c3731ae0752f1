package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
)

// CertificationParameters is go-attestation's certification of a key by an
// AK, as Key.CertificationParameters returns it on the device: Public (the
// key's TPMT_PUBLIC), CreateAttestation (the TPMS_ATTEST of TPM2_Certify)
// and CreateSignature (its TPMT_SIGNATURE by the AK). CreateData is not part
// of a certification and is not read.
type CertificationParameters = goattest.CertificationParameters

// MaxChallenge is the longest server challenge a TPM takes as qualifying
// data (a TPM2B_DATA holds at most a SHA-512 digest).
const MaxChallenge = 64

// VerifyCertification checks that ak certified the key in p as a sign-in
// key created inside its TPM, for this challenge, and returns the verdict
// (Format "tpm", Trust hardware, Root the AK's root, PublicKey the certified
// key). The checks, in order, one code each:
//
//   - the structures decode strictly (tpm.malformed_*), the attestation is
//     a TPM2_Certify (tpm.attestation_type) made by a TPM (tpm.bad_magic);
//   - go-attestation's CertificationParameters.Verify: the key is RSA or
//     ECC (tpm.unsupported_key) of a secure size (tpm.weak_key), fixedTPM
//     (tpm.not_fixed_tpm), not restricted (tpm.restricted), fixedParent
//     (tpm.not_fixed_parent), made by the TPM (tpm.not_tpm_generated), the
//     one the attestation names (tpm.name_mismatch), signed by the AK
//     (tpm.bad_signature);
//   - the attested extraData equals challenge, compared in constant time
//     (tpm.challenge_mismatch): go-attestation leaves this to its caller,
//     and without it a certification could be replayed.
func VerifyCertification(ak *AK, p CertificationParameters, challenge []byte) (*attest.Verdict, error) {
	if ak == nil {
		return nil, attest.Errorf(CodeInputMissing, "no attestation key")
	}
	if len(challenge) == 0 {
		return nil, attest.Errorf(CodeInputChallenge, "no challenge")
	}
	if len(challenge) > MaxChallenge {
		return nil, attest.Errorf(CodeInputChallengeTooLong, "a challenge of %d bytes (at most %d)", len(challenge), MaxChallenge)
	}
	pub, err := ParsePublic(p.Public)
	if err != nil {
		return nil, err
	}
	att, err := ParseAttestation(p.CreateAttestation)
	if err != nil {
		return nil, err
	}
	if att.Type != tpm2.TagAttestCertify {
		return nil, attest.Errorf(CodeAttestationType, "the attestation is not a TPM2_Certify (type %#04x)", uint16(att.Type))
	}
	sig, err := ParseSignature(p.CreateSignature)
	if err != nil {
		return nil, err
	}
	if err := p.Verify(goattest.VerifyOpts{Public: ak.key, Hash: ak.hash}); err != nil {
		return nil, explainCertification(ak, p, pub, att, sig, err)
	}
	if subtle.ConstantTimeCompare(att.ExtraData, challenge) != 1 {
		return nil, attest.Errorf(CodeChallengeMismatch, "the certification was made for another challenge")
	}
	key, err := pub.Key()
	if err != nil {
		return nil, attest.Errorf(CodeUnsupportedKey, "%v", err)
	}
	return &attest.Verdict{
		Format:    "tpm",
		Trust:     attest.TrustHardware,
		Root:      ak.root,
		PublicKey: key,
		Facts:     keyFacts(pub, att),
	}, nil
}

// explainCertification names the check go-attestation's Verify failed,
// by making its checks again in its order. It runs only on rejection: the
// verdict itself is always go-attestation's.
func explainCertification(ak *AK, p CertificationParameters, pub tpm2.Public, att *tpm2.AttestationData, sig *tpm2.Signature, verr error) error {
	if err := CheckSignInKey(pub); err != nil {
		return err
	}
	if ok, err := att.AttestedCertifyInfo.Name.MatchesPublic(pub); err != nil || !ok {
		return attest.Errorf(CodeNameMismatch, "the attestation certifies another key than the one presented")
	}
	if !signedBy(ak.key, ak.hash, p.CreateAttestation, sig) {
		return attest.Errorf(CodeBadSignature, "the attestation is not signed by the AK: %v", verr)
	}
	return attest.Errorf(CodeCertificationInvalid, "go-attestation: %v", verr)
}

// CheckSignInKey checks the public area of a sign-in key as
// VerifyCertification does, one code each: RSA or ECC (tpm.unsupported_key)
// of a secure size (tpm.weak_key), fixedTPM (tpm.not_fixed_tpm), not
// restricted (tpm.restricted), fixedParent (tpm.not_fixed_parent), made by
// the TPM (tpm.not_tpm_generated).
func CheckSignInKey(pub tpm2.Public) error {
	if err := checkKeyStrength("certified key", pub); err != nil {
		return err
	}
	a := pub.Attributes
	switch {
	case a&tpm2.FlagFixedTPM == 0:
		return attest.Errorf(CodeNotFixedTPM, "the key is not fixedTPM: it can leave the TPM")
	case a&tpm2.FlagRestricted != 0:
		return attest.Errorf(CodeRestricted, "the key is restricted: an attestation or storage key is no sign-in key")
	case a&tpm2.FlagFixedParent == 0:
		return attest.Errorf(CodeNotFixedParent, "the key is not fixedParent: it can be duplicated to another parent")
	case a&tpm2.FlagSensitiveDataOrigin == 0:
		return attest.Errorf(CodeNotTPMGenerated, "the key's sensitiveDataOrigin is clear: its private key came from outside the TPM")
	}
	return nil
}

// checkKeyStrength checks that a key is RSA of at least 2048 bits, or ECC on
// P-256, P-384 or P-521.
func checkKeyStrength(what string, pub tpm2.Public) error {
	switch pub.Type {
	case tpm2.AlgRSA:
		if pub.RSAParameters.KeyBits < 2048 {
			return attest.Errorf(CodeWeakKey, "the %s is RSA-%d (at least 2048 bits)", what, pub.RSAParameters.KeyBits)
		}
	case tpm2.AlgECC:
		switch pub.ECCParameters.CurveID {
		case tpm2.CurveNISTP256, tpm2.CurveNISTP384, tpm2.CurveNISTP521:
		case tpm2.CurveNISTP224, tpm2.CurveNISTP192:
			return attest.Errorf(CodeWeakKey, "the %s is on curve %#04x (P-256 or larger)", what, uint16(pub.ECCParameters.CurveID))
		default:
			return attest.Errorf(CodeUnsupportedKey, "the %s is on curve %#04x (P-256, P-384 or P-521)", what, uint16(pub.ECCParameters.CurveID))
		}
	default:
		return attest.Errorf(CodeUnsupportedKey, "the %s is of type %v", what, pub.Type)
	}
	return nil
}

// signedBy reports whether sig is key's signature of msg with hash h.
func signedBy(key crypto.PublicKey, h crypto.Hash, msg []byte, sig *tpm2.Signature) bool {
	if !h.Available() {
		return false
	}
	d := h.New()
	d.Write(msg)
	digest := d.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		if sig.RSA == nil {
			return false
		}
		if sig.Alg == tpm2.AlgRSAPSS {
			return rsa.VerifyPSS(k, h, digest, sig.RSA.Signature, nil) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig.RSA.Signature) == nil
	case *ecdsa.PublicKey:
		return sig.ECC != nil && ecdsa.Verify(k, digest, sig.ECC.R, sig.ECC.S)
	}
	return false
}

// KeyFacts are the facts verdicts report about a TPM key:
// public_key_algorithm, name_alg, attributes, auth_policy and the TPM's
// firmware_version from the attestation.
func KeyFacts(pub tpm2.Public, att *tpm2.AttestationData) map[string]any { return keyFacts(pub, att) }

// keyFacts are the facts of a certified key.
func keyFacts(pub tpm2.Public, att *tpm2.AttestationData) map[string]any {
	return map[string]any{
		"public_key_algorithm": KeyAlgorithm(pub),
		"name_alg":             hashName(pub.NameAlg),
		"attributes":           attributeNames(pub.Attributes),
		"auth_policy":          hex.EncodeToString(pub.AuthPolicy),
		"firmware_version":     fmt.Sprintf("%016x", att.FirmwareVersion),
	}
}

// KeyAlgorithm names a key's algorithm as verdicts report it: "ecdsa-p256",
// "ecdsa-p384", "ecdsa-p521" or "rsa-2048" (with its size).
func KeyAlgorithm(pub tpm2.Public) string {
	switch pub.Type {
	case tpm2.AlgRSA:
		return fmt.Sprintf("rsa-%d", pub.RSAParameters.KeyBits)
	case tpm2.AlgECC:
		switch pub.ECCParameters.CurveID {
		case tpm2.CurveNISTP256:
			return "ecdsa-p256"
		case tpm2.CurveNISTP384:
			return "ecdsa-p384"
		case tpm2.CurveNISTP521:
			return "ecdsa-p521"
		}
		return fmt.Sprintf("ecdsa-%#04x", uint16(pub.ECCParameters.CurveID))
	}
	return fmt.Sprintf("%#04x", uint16(pub.Type))
}

func hashName(a tpm2.Algorithm) string {
	switch a {
	case tpm2.AlgSHA1:
		return "sha1"
	case tpm2.AlgSHA256:
		return "sha256"
	case tpm2.AlgSHA384:
		return "sha384"
	case tpm2.AlgSHA512:
		return "sha512"
	}
	return fmt.Sprintf("%#04x", uint16(a))
}

// attributeNames lists the TPMA_OBJECT bits set, by their names in the TPM
// specification.
func attributeNames(a tpm2.KeyProp) []string {
	names := []struct {
		flag tpm2.KeyProp
		name string
	}{
		{tpm2.FlagFixedTPM, "fixedTPM"},
		{tpm2.FlagStClear, "stClear"},
		{tpm2.FlagFixedParent, "fixedParent"},
		{tpm2.FlagSensitiveDataOrigin, "sensitiveDataOrigin"},
		{tpm2.FlagUserWithAuth, "userWithAuth"},
		{tpm2.FlagAdminWithPolicy, "adminWithPolicy"},
		{tpm2.FlagNoDA, "noDA"},
		{0x00000800, "encryptedDuplication"},
		{tpm2.FlagRestricted, "restricted"},
		{tpm2.FlagDecrypt, "decrypt"},
		{tpm2.FlagSign, "sign"},
	}
	out := []string{}
	for _, n := range names {
		if a&n.flag != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
