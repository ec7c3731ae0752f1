package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"

	"github.com/keybind/keybind/attest/webauthn"
)

// Decisions the phone can send.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
	DecisionFraud   = "fraud"
)

// AnswerFields are the values an answer signs.
type AnswerFields struct {
	Attempt    string
	Tenant     string
	User       string
	Credential string
	Nonce      []byte
	Decision   string
	// Number is the number the person typed or chose (0 unless approving).
	Number int
}

// answerDomain separates answer signatures from every other use of the key.
const answerDomain = "keybind/signin-answer/v1\x00"

// AnswerMessage returns the canonical bytes an answer signs:
//
//	"keybind/signin-answer/v1" 0x00
//	attempt id, tenant id, user id, credential id, nonce, decision
//	                         each as a 2-byte big-endian length and the bytes
//	number                   2 bytes big-endian (0 unless approving)
//
// Every field has its length, so two different answers never share a
// message. The phone or PC signs it with the credential key: ECDSA keys
// with the hash of their curve (SHA-256 on P-256, SHA-384 on P-384, SHA-512
// on P-521) and an ASN.1 signature, RSA keys with SHA-256 and PKCS #1 v1.5
// or PSS, Ed25519 keys directly. An App Attest key instead makes an
// assertion whose client data is this message; a WebAuthn credential makes
// a WebAuthn assertion whose challenge is SHA-256 of it (AnswerChallenge).
func AnswerMessage(f AnswerFields) []byte {
	b := make([]byte, 0, len(answerDomain)+64+len(f.Attempt)+len(f.Tenant)+len(f.User)+len(f.Credential)+len(f.Nonce))
	b = append(b, answerDomain...)
	for _, v := range [][]byte{[]byte(f.Attempt), []byte(f.Tenant), []byte(f.User), []byte(f.Credential), f.Nonce, []byte(f.Decision)} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return binary.BigEndian.AppendUint16(b, uint16(f.Number))
}

// Proof is what an answer carries to prove the credential key made it:
// a signature over AnswerMessage (an App Attest assertion for App Attest
// keys), or for a WebAuthn credential the assertion
// navigator.credentials.get returned (AuthenticatorData, ClientDataJSON
// and its Signature).
type Proof struct {
	Signature         []byte
	AuthenticatorData []byte
	ClientDataJSON    []byte
}

// SignatureVerifier checks the proof of an answer with a credential's key.
// When the credential keeps a signature counter (App Attest, WebAuthn) it
// returns the counter of the proof, which the engine compares with
// cred.Counter; otherwise 0. A refusal is an error with a code (assert.…,
// webauthn.… or policy.… from an assertion, or CodeSignInSignature).
type SignatureVerifier interface {
	VerifyAnswer(cred *Credential, message []byte, proof Proof) (counter uint32, err error)
}

// AssertionVerifier verifies App Attest assertions for the default
// SignatureVerifier: appIDs are the allowed apps, previous the stored
// counter; it returns the assertion's counter.
type AssertionVerifier interface {
	VerifyAssertion(publicKey crypto.PublicKey, assertion, clientData []byte, appIDs []string, previous uint32) (uint32, error)
}

// signatures is the default SignatureVerifier: ECDSA, RSA and Ed25519 keys
// with the standard library, App Attest assertions with an
// AssertionVerifier when one is configured, WebAuthn assertions with
// package webauthn under the tenant's current WebAuthn policy.
type signatures struct {
	assertions AssertionVerifier
	appIDs     func(cred *Credential) []string
	webauthn   func(cred *Credential) *WebAuthnPolicy
	plain      func(key crypto.PublicKey, message, signature []byte) (handled, valid bool)
}

// MaxSignature bounds a signature or assertion.
const MaxSignature = 4096

func (s signatures) VerifyAnswer(cred *Credential, message []byte, proof Proof) (uint32, error) {
	key, err := x509.ParsePKIXPublicKey(cred.PublicKey)
	if err != nil {
		return 0, errorf(CodeInternal, KindInternal, "credential %s: stored key does not parse: %v", cred.ID, err)
	}
	webauthnAssertion := cred.Format == FormatWebAuthn && cred.Statement != FormatAppAttest
	if hasAssertion := len(proof.AuthenticatorData) > 0 || len(proof.ClientDataJSON) > 0; hasAssertion != webauthnAssertion {
		if webauthnAssertion {
			return 0, invalid("a WebAuthn credential answers with an assertion: authenticator_data, client_data_json and signature")
		}
		return 0, invalid("authenticator_data and client_data_json belong to the answers of WebAuthn credentials")
	}
	switch {
	case webauthnAssertion:
		var p *WebAuthnPolicy
		if s.webauthn != nil {
			p = s.webauthn(cred)
		}
		if p == nil {
			return 0, errorf(CodeSignInFormat, KindForbidden, "the tenant's policy no longer accepts WebAuthn credentials")
		}
		a, err := webauthn.VerifyAssertion(key, cred.COSEAlgorithm, proof.AuthenticatorData, proof.ClientDataJSON, proof.Signature, &webauthn.AssertionOptions{
			Challenge: AnswerChallenge(message), Origins: p.Origins, RPID: p.RPID, RequireUserVerification: p.userVerification(),
		})
		if err != nil {
			return 0, attestationError(err)
		}
		return a.Counter, nil
	case cred.Format == FormatAppAttest || cred.Format == FormatWebAuthn:
		if s.assertions == nil {
			return 0, errorf(CodeSignInSignature, KindForbidden, "this server verifies no App Attest assertions")
		}
		var apps []string
		if s.appIDs != nil {
			apps = s.appIDs(cred)
		}
		n, err := s.assertions.VerifyAssertion(key, proof.Signature, message, apps, cred.Counter)
		if err != nil {
			return 0, attestationError(err)
		}
		return n, nil
	}
	if s.plain != nil {
		if handled, valid := s.plain(key, message, proof.Signature); handled {
			if !valid {
				return 0, errorf(CodeSignInSignature, KindForbidden, "the answer's signature does not verify with the credential key")
			}
			return 0, nil
		}
	}
	if !verifySignature(key, message, proof.Signature) {
		return 0, errorf(CodeSignInSignature, KindForbidden, "the answer's signature does not verify with the credential key")
	}
	return 0, nil
}

// countsSignatures reports whether a credential's answers carry a
// signature counter, and whether it must rise at every answer (App Attest)
// or only once either side is not zero (a WebAuthn authenticator without a
// counter sends 0).
func countsSignatures(cred *Credential) (counts, always bool) {
	switch {
	case cred.Format == FormatAppAttest, cred.Format == FormatWebAuthn && cred.Statement == FormatAppAttest:
		return true, true
	case cred.Format == FormatWebAuthn:
		return true, false
	}
	return false, false
}

// verifySignature checks sig over message with key by the rules of
// AnswerMessage.
func verifySignature(key crypto.PublicKey, message, sig []byte) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			h := sha256.Sum256(message)
			return ecdsa.VerifyASN1(k, h[:], sig)
		case elliptic.P384():
			h := sha512.Sum384(message)
			return ecdsa.VerifyASN1(k, h[:], sig)
		case elliptic.P521():
			h := sha512.Sum512(message)
			return ecdsa.VerifyASN1(k, h[:], sig)
		}
	case *rsa.PublicKey:
		// PKCS #1 v1.5 or PSS, as the key's holder signs (a TPM key without
		// a fixed scheme does either); both over SHA-256 of the message.
		h := sha256.Sum256(message)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil ||
			rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, message, sig)
	}
	return false
}

// checkSigningKey refuses at enrollment a key the engine could not verify
// answers with.
func checkSigningKey(format string, key crypto.PublicKey) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || ((k.Curve == elliptic.P384() || k.Curve == elliptic.P521()) && format != FormatAppAttest) {
			return nil
		}
	case *rsa.PublicKey:
		if format != FormatAppAttest && k.N.BitLen() >= 2048 {
			return nil
		}
	case ed25519.PublicKey:
		if format != FormatAppAttest {
			return nil
		}
	}
	return errorf(CodeEnrollUnsupportedKey, KindForbidden, "a %T key cannot sign %s answers", key, format)
}

// SignAnswer signs an answer message with a private key by the rules of
// AnswerMessage (RSA keys with PKCS #1 v1.5). Phone simulators and tests
// use it.
func SignAnswer(key crypto.Signer, message []byte) ([]byte, error) {
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			h := sha256.Sum256(message)
			return key.Sign(rand.Reader, h[:], crypto.SHA256)
		case elliptic.P384():
			h := sha512.Sum384(message)
			return key.Sign(rand.Reader, h[:], crypto.SHA384)
		case elliptic.P521():
			h := sha512.Sum512(message)
			return key.Sign(rand.Reader, h[:], crypto.SHA512)
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(message)
		return key.Sign(rand.Reader, h[:], crypto.SHA256)
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, message, crypto.Hash(0))
	}
	return nil, fmt.Errorf("engine: cannot sign with a %T key", key.Public())
}
