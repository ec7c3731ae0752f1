package webauthn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/keybind/keybind/attest"
)

// Codes of an assertion (what navigator.credentials.get returns), besides
// the client data and authenticator data codes it shares with a
// registration.
const (
	CodeAssertionChallenge attest.Code = "assert.challenge"     // the client data challenge is not the server's
	CodeAssertionAuthData  attest.Code = "assert.auth_data"     // the authenticator data carries attested credential data (AT), which an assertion never does
	CodeAssertionSignature attest.Code = "assert.signature"     // the signature does not verify with the credential key
	CodeInputKey           attest.Code = "input.credential_key" // no credential key, or one its algorithm cannot use
)

// AssertionOptions configures VerifyAssertion. Challenge, Origins and RPID
// must be given.
type AssertionOptions struct {
	// Challenge is the challenge the server asked the credential to sign
	// (compared in constant time).
	Challenge []byte
	// Origins are the accepted origins, compared exactly.
	Origins []string
	// RPID is the relying party ID the credential is scoped to.
	RPID string
	// RequireUserVerification refuses an assertion without the UV flag.
	RequireUserVerification bool
}

// Assertion is a verified assertion.
type Assertion struct {
	// Counter is the authenticator's signature counter. VerifyAssertion does
	// not judge it: the caller compares it with the counter it stored, under
	// its own lock (a counter that does not rise, when either is not zero,
	// betrays a cloned authenticator).
	Counter uint32
	// Flags are the authenticator data flags (FlagUP, FlagUV, FlagBE, FlagBS).
	Flags byte
	// Extensions are the identifiers of the extension outputs.
	Extensions []string
}

// VerifyAssertion verifies an assertion of a registered credential: key and
// alg are the credential key and its COSE algorithm as the registration
// gave them (COSEKey). The checks, in order, one code each:
//
//  1. the options name a challenge, origins and an RP ID (input.*), and
//     the key is one alg signs with (input.key);
//  2. clientDataJSON parses strictly (webauthn.client_data_malformed), is
//     of type webauthn.get (webauthn.client_data_type), carries the
//     server's challenge (assert.challenge) and an accepted origin
//     (webauthn.origin), not cross-origin (webauthn.cross_origin), without
//     token binding (webauthn.token_binding);
//  3. the authenticator data parses strictly (ParseAuthenticatorData's
//     codes), carries no attested credential data (assert.auth_data), its
//     RP ID hash is SHA-256 of the RP ID (webauthn.rp_id), user presence is
//     set (webauthn.user_present) and user verification when required
//     (policy.user_verification);
//  4. the signature over authenticatorData‖SHA-256(clientDataJSON) verifies
//     with the key under alg (assert.signature).
func VerifyAssertion(key crypto.PublicKey, alg int64, authenticatorData, clientDataJSON, signature []byte, opts *AssertionOptions) (*Assertion, error) {
	if opts == nil {
		opts = &AssertionOptions{}
	}
	switch {
	case len(opts.Challenge) == 0:
		return nil, attest.Errorf(CodeInputChallenge, "no server challenge")
	case len(opts.Origins) == 0:
		return nil, attest.Errorf(CodeInputOrigin, "no accepted origin")
	case opts.RPID == "":
		return nil, attest.Errorf(CodeInputRPID, "no relying party ID")
	}
	if !keyFitsAlg(key, alg) {
		return nil, attest.Errorf(CodeInputKey, "a %T key cannot sign with COSE algorithm %d", key, alg)
	}
	cd, err := ParseClientData(clientDataJSON)
	if err != nil {
		return nil, err
	}
	if cd.Type != "webauthn.get" {
		return nil, attest.Errorf(CodeClientDataType, "type is %q, not webauthn.get", cd.Type)
	}
	if subtle.ConstantTimeCompare(cd.Challenge, opts.Challenge) != 1 {
		return nil, attest.Errorf(CodeAssertionChallenge, "the challenge is not the server's")
	}
	if err := cd.checkOrigin(opts.Origins); err != nil {
		return nil, err
	}
	ad, err := ParseAuthenticatorData(authenticatorData)
	if err != nil {
		return nil, err
	}
	if ad.Flags&FlagAT != 0 {
		return nil, attest.Errorf(CodeAssertionAuthData, "an assertion with attested credential data (AT set)")
	}
	rpHash := sha256.Sum256([]byte(opts.RPID))
	if subtle.ConstantTimeCompare(ad.RPIDHash[:], rpHash[:]) != 1 {
		return nil, attest.Errorf(CodeRPID, "the RP ID hash is not SHA-256 of %q", opts.RPID)
	}
	if ad.Flags&FlagUP == 0 {
		return nil, attest.Errorf(CodeUserPresent, "the user-present flag is clear")
	}
	if opts.RequireUserVerification && ad.Flags&FlagUV == 0 {
		return nil, attest.Errorf(CodeUserVerified, "user verification is required and the user-verified flag is clear")
	}
	cdh := sha256.Sum256(clientDataJSON)
	msg := make([]byte, 0, len(authenticatorData)+len(cdh))
	msg = append(append(msg, authenticatorData...), cdh[:]...)
	if err := verifySignature(alg, key, msg, signature); err != nil {
		return nil, attest.Errorf(CodeAssertionSignature, "the assertion signature does not verify: %v", err)
	}
	return &Assertion{Counter: ad.Counter, Flags: ad.Flags, Extensions: ad.Extensions}, nil
}

// keyFitsAlg reports whether key is of the type and curve alg signs with
// (RSA keys of any accepted size).
func keyFitsAlg(key crypto.PublicKey, alg int64) bool {
	a, ok := credentialAlgs[alg]
	if !ok {
		return false
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		curves := map[int64]elliptic.Curve{crvP256: elliptic.P256(), crvP384: elliptic.P384(), crvP521: elliptic.P521()}
		return a.kty == ktyEC2 && k.Curve == curves[a.crv]
	case *rsa.PublicKey:
		return a.kty == ktyRSA && k.N.BitLen() >= MinRSABits
	case ed25519.PublicKey:
		return a.kty == ktyOKP && len(k) == ed25519.PublicKeySize
	}
	return false
}
