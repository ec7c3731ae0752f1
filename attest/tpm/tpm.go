// Package tpm verifies TPM 2.0 key attestation: it enrolls a PC's attestation
// key (AK) by credential activation against the TPM's endorsement key (EK),
// and then accepts sign-in keys that the enrolled AK certifies as created
// inside the same TPM. The TPM structures and the verification steps are
// those of github.com/google/go-attestation; this package adds what that
// library leaves to its caller (EK trust, the activation secret's single
// use, the server challenge in the certification) and names every check
// with a stable error code.
//
// Enrollment, in two round trips:
//
//	// 1. The device sends its EK (certificate or public key) and the AK's
//	//    go-attestation AttestationParameters.
//	challenge, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{…}, &opts)
//	// Store pending.MarshalBinary() under pending.ID(); send challenge
//	// (an EncryptedCredential) to the device, which answers with
//	// AK.ActivateCredential.
//
//	// 2. Take (load and delete) the stored activation, then:
//	pending, err := tpm.ParseActivation(stored)
//	ak, err := pending.Activate(secretFromDevice, time.Now())
//	// Store ak.MarshalBinary(): the AK is enrolled.
//
// Sign-in keys, each in one message:
//
//	verdict, err := tpm.VerifyCertification(ak, key.CertificationParameters(), challenge)
//
// Every rejection is an *attest.Error whose code names the one check that
// failed (tpm.restricted, tpm.challenge_mismatch, chain.expired, …).
package tpm

import "github.com/keybind/keybind/attest"

// Codes of the structure checks: every TPM structure is decoded strictly
// (go-tpm decodes it, and encoding the result again must give back exactly
// the input: no trailing bytes, no truncation, no second encoding of the
// same value).
const (
	CodeMalformedPublic       attest.Code = "tpm.malformed_public"        // TPMT_PUBLIC / TPM2B_PUBLIC
	CodeMalformedAttestation  attest.Code = "tpm.malformed_attestation"   // TPMS_ATTEST
	CodeMalformedSignature    attest.Code = "tpm.malformed_signature"     // TPMT_SIGNATURE
	CodeMalformedCreationData attest.Code = "tpm.malformed_creation_data" // TPMS_CREATION_DATA
	CodeBadMagic              attest.Code = "tpm.bad_magic"               // TPMS_ATTEST not made by a TPM (magic is not TPM_GENERATED_VALUE)
	CodeAttestationType       attest.Code = "tpm.attestation_type"        // not a TPM2_Certify (or, for an AK, TPM2_CertifyCreation) attestation
)

// Codes of the checks on a certified sign-in key (VerifyCertification), in
// the order they are made.
const (
	CodeUnsupportedKey    attest.Code = "tpm.unsupported_key"    // neither RSA nor ECC, or a curve Go cannot use
	CodeWeakKey           attest.Code = "tpm.weak_key"           // RSA under 2048 bits, or a curve not on the secure list
	CodeNotFixedTPM       attest.Code = "tpm.not_fixed_tpm"      // the key can leave the TPM
	CodeRestricted        attest.Code = "tpm.restricted"         // a restricted key (an AK or storage key) is no sign-in key
	CodeNotFixedParent    attest.Code = "tpm.not_fixed_parent"   // the key can be duplicated to another parent
	CodeNotTPMGenerated   attest.Code = "tpm.not_tpm_generated"  // sensitiveDataOrigin clear: the private key came from outside the TPM
	CodeNameMismatch      attest.Code = "tpm.name_mismatch"      // the attestation certifies another key than the one presented
	CodeBadSignature      attest.Code = "tpm.bad_signature"      // the attestation is not signed by the AK
	CodeChallengeMismatch attest.Code = "tpm.challenge_mismatch" // the attested extraData is not the server challenge
	// CodeCertificationInvalid: go-attestation refused the certification
	// for a reason none of the checks above names (its reason is kept).
	CodeCertificationInvalid attest.Code = "tpm.certification_invalid"
)

// Codes of the checks on an attestation key at enrollment (StartEnrollment),
// besides the structure codes and tpm.unsupported_key / tpm.weak_key.
const (
	CodeAKNotFixedTPM      attest.Code = "tpm.ak_not_fixed_tpm"       // the AK can leave the TPM
	CodeAKNotRestricted    attest.Code = "tpm.ak_not_restricted"      // the AK could sign anything, so its attestations prove nothing
	CodeAKNotFixedParent   attest.Code = "tpm.ak_not_fixed_parent"    // the AK can be duplicated
	CodeAKNotTPMGenerated  attest.Code = "tpm.ak_not_tpm_generated"   // the AK's private key came from outside the TPM
	CodeAKCreationMismatch attest.Code = "tpm.ak_creation_mismatch"   // the creation attestation is about other creation data or another key
	CodeAKBadSignature     attest.Code = "tpm.ak_bad_signature"       // the creation attestation is not signed by the AK itself
	CodeAKInvalid          attest.Code = "tpm.ak_invalid"             // go-attestation refused the AK for a reason no code above names
	CodeAKCertificateKey   attest.Code = "tpm.ak_certificate_key"     // an AK certificate is for another key than the AK
	CodeActivationMismatch attest.Code = "tpm.activation_mismatch"    // the device answered the activation with another secret
	CodeActivationUsed     attest.Code = "tpm.activation_used"        // the activation was already answered once
	CodeActivationExpired  attest.Code = "tpm.activation_expired"     // the activation is past its deadline
	CodeMalformedStored    attest.Code = "tpm.malformed_stored"       // a stored activation or AK record does not decode
	CodeEKCertificateMiss  attest.Code = "tpm.ek_certificate_missing" // the policy trusts EK certificates, and none was sent
	CodeEKNotAllowed       attest.Code = "tpm.ek_not_allowed"         // the EK public key is not on the allow-list
	CodeEKMalformed        attest.Code = "tpm.ek_malformed"           // the EK certificate or public key does not parse
	CodeEKMismatch         attest.Code = "tpm.ek_mismatch"            // the EK public key sent is not the one in the EK certificate
)

// Codes of the TCG profile of an AK (AIK) certificate, checked by
// CheckAIKCertificate.
const (
	CodeAIKVersion          attest.Code = "tpm.aik_version"           // not an X.509 version 3 certificate
	CodeAIKExtKeyUsage      attest.Code = "tpm.aik_eku"               // extended key usage without tcg-kp-AIKCertificate (2.23.133.8.3)
	CodeAIKBasicConstraints attest.Code = "tpm.aik_basic_constraints" // basic constraints absent, or CA true
	CodeAIKSubjectAltName   attest.Code = "tpm.aik_san"               // no subject alternative name naming the TPM's manufacturer, model and version
)

// Codes of certificate chains (EK certificates, AK certificates).
const (
	CodeChainMalformed     attest.Code = "asn1.certificate"     // a certificate does not parse
	CodeChainShape         attest.Code = "chain.shape"          // no certificate, or too many, where a chain was required
	CodeChainUntrustedRoot attest.Code = "chain.untrusted_root" // the chain does not end in a configured root
	CodeChainBadSignature  attest.Code = "chain.signature"      // a certificate is not signed by the next one
	CodeChainNotYetValid   attest.Code = "chain.not_yet_valid"  // a certificate's validity starts after the validation time
	CodeChainExpired       attest.Code = "chain.expired"        // a certificate expired before the validation time
	CodeChainNotCA         attest.Code = "chain.not_ca"         // an issuing certificate has no CA rights
	CodeChainPathLength    attest.Code = "chain.path_length"    // an issuing certificate's path length is exceeded
	CodeChainCritical      attest.Code = "chain.critical_extension"
)

// Codes for the caller's parameters.
const (
	CodeInputChallenge        attest.Code = "input.challenge_missing"  // no challenge
	CodeInputChallengeTooLong attest.Code = "input.challenge_too_long" // a challenge over 64 bytes (a TPM2B_DATA holds no more)
	CodeInputMissing          attest.Code = "input.missing"            // a required field is empty
)
