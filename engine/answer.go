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
// message. The phone signs it with the credential key: ECDSA keys with
// SHA-256 (P-256) or SHA-384 (P-384) and an ASN.1 signature, RSA keys with
// PKCS #1 v1.5 and SHA-256, Ed25519 keys directly. An App Attest key
// instead makes an assertion whose client data is this message.
func AnswerMessage(f AnswerFields) []byte {
	b := make([]byte, 0, len(answerDomain)+64+len(f.Attempt)+len(f.Tenant)+len(f.User)+len(f.Credential)+len(f.Nonce))
	b = append(b, answerDomain...)
	for _, v := range [][]byte{[]byte(f.Attempt), []byte(f.Tenant), []byte(f.User), []byte(f.Credential), f.Nonce, []byte(f.Decision)} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return binary.BigEndian.AppendUint16(b, uint16(f.Number))
}

// SignatureVerifier checks the signature of an answer with a credential's
// key. For an App Attest credential the signature is an assertion whose
// counter it returns (the engine requires it to exceed cred.Counter); for
// other formats it returns 0. A refusal is an error with a code
// (assert.… from an assertion verifier, or CodeSignInSignature).
type SignatureVerifier interface {
	VerifyAnswer(cred *Credential, message, signature []byte) (counter uint32, err error)
}

// AssertionVerifier verifies App Attest assertions for the default
// SignatureVerifier: appIDs are the allowed apps, previous the stored
// counter; it returns the assertion's counter.
type AssertionVerifier interface {
	VerifyAssertion(publicKey crypto.PublicKey, assertion, clientData []byte, appIDs []string, previous uint32) (uint32, error)
}

// signatures is the default SignatureVerifier: ECDSA, RSA and Ed25519 keys
// with the standard library, App Attest assertions with an
// AssertionVerifier when one is configured.
type signatures struct {
	assertions AssertionVerifier
	appIDs     func(cred *Credential) []string
}

// MaxSignature bounds a signature or assertion.
const MaxSignature = 4096

func (s signatures) VerifyAnswer(cred *Credential, message, sig []byte) (uint32, error) {
	key, err := x509.ParsePKIXPublicKey(cred.PublicKey)
	if err != nil {
		return 0, errorf(CodeInternal, KindInternal, "credential %s: stored key does not parse: %v", cred.ID, err)
	}
	if cred.Format == FormatAppAttest {
		if s.assertions == nil {
			return 0, errorf(CodeSignInSignature, KindForbidden, "this server verifies no App Attest assertions")
		}
		var apps []string
		if s.appIDs != nil {
			apps = s.appIDs(cred)
		}
		n, err := s.assertions.VerifyAssertion(key, sig, message, apps, cred.Counter)
		if err != nil {
			return 0, attestationError(err)
		}
		return n, nil
	}
	if !verifySignature(key, message, sig) {
		return 0, errorf(CodeSignInSignature, KindForbidden, "the answer's signature does not verify with the credential key")
	}
	return 0, nil
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
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(message)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
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
		if k.Curve == elliptic.P256() || (k.Curve == elliptic.P384() && format != FormatAppAttest) {
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
// AnswerMessage. Phone simulators and tests use it.
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
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(message)
		return key.Sign(rand.Reader, h[:], crypto.SHA256)
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, message, crypto.Hash(0))
	}
	return nil, fmt.Errorf("engine: cannot sign with a %T key", key.Public())
}
