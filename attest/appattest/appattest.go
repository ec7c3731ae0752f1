// Package appattest verifies Apple App Attest: the attestation an iPhone
// app makes once for a Secure Enclave key (at enrollment), and the
// assertions it signs with that key afterwards (at every sign-in).
//
// An attestation is checked as Apple documents it, one check per error code:
//
//	v := appattest.NewVerifier() // once; safe for concurrent use
//	att, err := v.VerifyAttestation(attestationObject, keyID, appattest.AttestationOptions{
//		ClientDataHash: clientDataHash, // what the app passed to attestKey
//		AppIDs:         []string{"TEAMID.com.example.app"},
//	})
//	// store att.PublicKey (and att.KeyID) for the user; the counter starts at 0
//
// An assertion is checked against the stored key and counter:
//
//	res, err := appattest.VerifyAssertion(assertion, clientData, pub, appattest.AssertionOptions{
//		AppIDs:          []string{"TEAMID.com.example.app"},
//		PreviousCounter: stored,
//		Challenge:       challenge,
//	})
//	// store res.Counter: it only rises
//
// Servers that batch signature checks use the split form: ParseAssertion,
// then Assertion.Check (everything but the signature), then
// Assertion.SignedDigest, the 32-byte digest that the ECDSA signature covers.
//
// Rejections are *attest.Error values with the codes below; zero options are
// the safe defaults (production environment, Apple's root, the current time).
package appattest

import (
	"crypto/x509"
	"fmt"

	"github.com/keybind/keybind/attest"
)

// Format is the attestation format name, as in the attestation object's
// "fmt" and in Verdict.Format.
const Format = "apple-appattest"

// Error codes of attestations, in the order of Apple's checklist. Each check
// has its own code; testvectors/appattest holds an invalid vector for each
// (except input.app_ids and input.environment, which the vector format
// cannot express) next to the valid ones.
const (
	// Inputs the caller passes.
	CodeKeyID          attest.Code = "input.key_id"           // the key id is not 32 bytes
	CodeClientDataHash attest.Code = "input.client_data_hash" // no client data hash given
	CodeAppIDs         attest.Code = "input.app_ids"          // no App ID given
	CodeEnvironment    attest.Code = "input.environment"      // not production, development or any
	CodePublicKey      attest.Code = "input.public_key"       // assertion key missing or not P-256

	// 1. The attestation object decodes (cbor.* codes for the strict
	// profile), with fmt "apple-appattest" and an attStmt of x5c and receipt.
	CodeObject  attest.Code = "appattest.object"  // keys missing, unknown, or of the wrong type
	CodeFormat  attest.Code = "appattest.format"  // fmt is not "apple-appattest"
	CodeReceipt attest.Code = "appattest.receipt" // the receipt is missing or empty

	// 2. The certificate chain: x5c = [credential certificate, intermediate],
	// ending in a trusted root at the validation time.
	CodeChainShape        attest.Code = "chain.shape"              // x5c is not two certificates
	CodeCertificate       attest.Code = "asn1.certificate"         // a certificate does not parse
	CodeUntrustedRoot     attest.Code = "chain.untrusted_root"     // the intermediate is not signed by a trusted root
	CodeNotCA             attest.Code = "chain.not_ca"             // the intermediate may not issue certificates
	CodeSignature         attest.Code = "chain.signature"          // the credential certificate is not signed by the intermediate
	CodeNotYetValid       attest.Code = "chain.not_yet_valid"      // a certificate's validity starts after the validation time
	CodeExpired           attest.Code = "chain.expired"            // a certificate expired before the validation time
	CodeCriticalExtension attest.Code = "chain.critical_extension" // a certificate has a critical extension nobody handles
	CodeKeyUsage          attest.Code = "chain.key_usage"          // an extended key usage that excludes App Attest

	// 3. The nonce: SHA-256(authData ‖ clientDataHash) is the octet string
	// in the credential certificate's extension 1.2.840.113635.100.8.2.
	CodeNonceMissing   attest.Code = "appattest.nonce_missing"
	CodeNonceMalformed attest.Code = "appattest.nonce_malformed"
	CodeNonceMismatch  attest.Code = "appattest.nonce_mismatch"

	// 4. The key: a P-256 key whose SHA-256 (of the uncompressed point) is
	// the key id; the credential id in authData is the key id; the COSE key
	// in authData is the certificate's key.
	CodeCredentialKeyType attest.Code = "appattest.public_key"
	CodeKeyIDMismatch     attest.Code = "appattest.key_id_mismatch"
	CodeCredentialID      attest.Code = "appattest.credential_id_mismatch"
	CodeCredentialKey     attest.Code = "appattest.credential_key_mismatch"
	CodeCredentialKeyCOSE attest.Code = "appattest.credential_key_malformed" // the COSE key is not an ES256 P-256 key
	CodeAppIDMismatch     attest.Code = "appattest.app_id_mismatch"
	CodeCounterNotZero    attest.Code = "appattest.counter_not_zero"
	CodeAAGUID            attest.Code = "appattest.aaguid"               // neither App Attest AAGUID
	CodeEnvironmentWrong  attest.Code = "appattest.environment_mismatch" // the other environment's AAGUID
	CodeAuthData          attest.Code = "appattest.auth_data_malformed"  // authData too short, AT clear, truncated
	CodeAuthDataTrailing  attest.Code = "appattest.auth_data_trailing"   // bytes after the key that are not the extension map
)

// Error codes of assertions.
const (
	CodeAssertionMalformed attest.Code = "assert.malformed"       // not {signature, authenticatorData}
	CodeAssertionAuthData  attest.Code = "assert.auth_data"       // authenticatorData too short, or trailing bytes not the extension map
	CodeAssertionAppID     attest.Code = "assert.app_id_mismatch" // RP ID hash is not that of a configured App ID
	CodeAssertionCounter   attest.Code = "assert.counter"         // counter not greater than the stored one
	CodeAssertionChallenge attest.Code = "assert.challenge"       // client data does not contain the challenge
	CodeAssertionSignature attest.Code = "assert.signature"       // the signature does not verify
)

// Environment is the App Attest environment an attestation was made in, or
// the environments a caller accepts. The zero value is Production.
type Environment int

const (
	// Production: AAGUID "appattest" followed by seven zero bytes. Apps
	// from the App Store, TestFlight and enterprise distribution.
	Production Environment = iota
	// Development: AAGUID "appattestdevelop". Apps built for development;
	// accept these only on development servers.
	Development
	// AnyEnvironment accepts both (in AttestationOptions only).
	AnyEnvironment
)

// String returns "production", "development" or "any".
func (e Environment) String() string {
	switch e {
	case Production:
		return "production"
	case Development:
		return "development"
	case AnyEnvironment:
		return "any"
	}
	return fmt.Sprintf("Environment(%d)", int(e))
}

// ParseEnvironment parses "production", "development" or "any".
func ParseEnvironment(s string) (Environment, error) {
	switch s {
	case "production":
		return Production, nil
	case "development":
		return Development, nil
	case "any":
		return AnyEnvironment, nil
	}
	return 0, attest.Errorf(CodeEnvironment, "environment %q is not production, development or any", s)
}

// AppleRootName is Verdict.Root for chains that end in Apple's root.
const AppleRootName = "Apple App Attestation Root CA"

// rootName names a trust anchor in a verdict.
func rootName(c *x509.Certificate, apple bool) string {
	if apple {
		return AppleRootName
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}
