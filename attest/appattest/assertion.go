package appattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"

	"github.com/keybind/keybind/attest"
)

// AssertionOptions are the parameters of an assertion check. AppIDs must be
// given; the zero value of the rest is the safe default.
type AssertionOptions struct {
	// AppIDs are the accepted App IDs, "TEAMID.bundle.id".
	AppIDs []string
	// PreviousCounter is the counter stored for the key (0 after the
	// attestation); the assertion's counter must be greater.
	PreviousCounter uint32
	// Challenge, when not empty, must appear in the client data.
	Challenge []byte
}

// Assertion is a parsed assertion. Its byte slices are views of the input:
// they stay valid only as long as the caller keeps the input unchanged.
type Assertion struct {
	// Signature is the DER-encoded ECDSA signature.
	Signature []byte
	// AuthenticatorData is the signed authenticator data.
	AuthenticatorData []byte
	// RPIDHash is SHA-256 of the app's App ID.
	RPIDHash [32]byte
	// Flags is the flags byte of the authenticator data.
	Flags byte
	// Counter is the key's use counter.
	Counter uint32
	// Extensions are the iOS 27 values of the authenticator data.
	Extensions Extensions
}

// AssertionResult is an accepted assertion.
type AssertionResult struct {
	// Counter is the assertion's counter: store it, the next assertion must
	// carry a greater one.
	Counter uint32
	// Extensions are the iOS 27 values of the authenticator data (views of
	// the assertion's bytes).
	Extensions Extensions
}

// Facts returns the result as verdict facts ("counter", and the iOS 27
// values when present).
func (r *AssertionResult) Facts() map[string]any {
	f := map[string]any{"counter": r.Counter}
	r.Extensions.facts(f)
	return f
}

const (
	keySignature = "signature"
	keyAuthData  = "authenticatorData"
)

// ParseAssertion decodes an assertion: the CBOR map {signature,
// authenticatorData} (both byte strings, nothing else) under the strict
// profile, then the authenticator data: RP ID hash, flags and counter, and
// after them nothing or the iOS 27 extension map. It neither copies nor
// allocates on success; on failure it returns the zero Assertion.
func ParseAssertion(b []byte) (Assertion, error) {
	const what = "assertion"
	major, n, off, err := cborHead(what, b, 0)
	if err != nil {
		return Assertion{}, err
	}
	if major != majorMap {
		return Assertion{}, cborError(attest.CodeCBORType, what, "%s where a map was expected", majorName(major))
	}
	// The whole item must be well-formed and within the profile before
	// anything is read from it, so that the reasons match the profile's.
	end, err := cborSkip(what, b, 0, 1)
	if err != nil {
		return Assertion{}, err
	}
	if end != len(b) {
		return Assertion{}, cborError(attest.CodeCBORTrailingBytes, what, "%d bytes after the assertion", len(b)-end)
	}
	var a Assertion
	var haveSig, haveAuth bool
	for i := uint64(0); i < n; i++ {
		key, next, err := cborString(what, b, off, majorText)
		if err != nil {
			return Assertion{}, attest.Errorf(CodeAssertionMalformed, "map key %d is not a text string", i)
		}
		off = next
		var dst *[]byte
		switch string(key) {
		case keySignature:
			dst, haveSig = &a.Signature, true
		case keyAuthData:
			dst, haveAuth = &a.AuthenticatorData, true
		default:
			return Assertion{}, attest.Errorf(CodeAssertionMalformed, "unknown key %q", key)
		}
		v, next, err := cborString(what, b, off, majorBytes)
		if err != nil {
			return Assertion{}, err
		}
		*dst, off = v, next
	}
	switch {
	case !haveSig:
		return Assertion{}, attest.Errorf(CodeAssertionMalformed, "no %q", keySignature)
	case !haveAuth:
		return Assertion{}, attest.Errorf(CodeAssertionMalformed, "no %q", keyAuthData)
	case len(a.Signature) == 0:
		return Assertion{}, attest.Errorf(CodeAssertionMalformed, "the signature is empty")
	}
	ad := a.AuthenticatorData
	if len(ad) < authHeaderLen {
		return Assertion{}, attest.Errorf(CodeAssertionAuthData, "authenticatorData is %d bytes, shorter than %d", len(ad), authHeaderLen)
	}
	copy(a.RPIDHash[:], ad[:rpIDHashLen])
	a.Flags = ad[rpIDHashLen]
	a.Counter = binary.BigEndian.Uint32(ad[rpIDHashLen+1:])
	if a.Extensions, err = parseExtensions(ad[authHeaderLen:], a.Flags&flagED != 0); err != nil {
		return Assertion{}, attest.Errorf(CodeAssertionAuthData, "after the counter: %w", err)
	}
	return a, nil
}

// Check makes every check of the assertion except the signature: the RP ID
// hash is SHA-256 of one of opts.AppIDs, the counter is greater than
// opts.PreviousCounter, and clientData contains opts.Challenge when it is
// given. It returns the assertion's counter. Signatures are checked with
// SignedDigest (or by VerifyAssertion); replays are stopped by the counter
// and the challenge, never by remembering signature bytes (ECDSA signatures
// are not unique).
func (a *Assertion) Check(clientData []byte, opts AssertionOptions) (uint32, error) {
	if len(opts.AppIDs) == 0 {
		return 0, attest.Errorf(CodeAppIDs, "no App ID given")
	}
	if !rpIDMatches(&a.RPIDHash, opts.AppIDs) {
		return 0, attest.Errorf(CodeAssertionAppID, "the RP ID hash is not SHA-256 of any of the %d configured App IDs", len(opts.AppIDs))
	}
	if a.Counter <= opts.PreviousCounter {
		return 0, attest.Errorf(CodeAssertionCounter, "the counter is %d, not greater than the stored %d", a.Counter, opts.PreviousCounter)
	}
	if len(opts.Challenge) > 0 && !bytes.Contains(clientData, opts.Challenge) {
		return 0, attest.Errorf(CodeAssertionChallenge, "the client data does not contain the challenge")
	}
	return a.Counter, nil
}

// rpIDMatches reports whether h is SHA-256 of one of the App IDs, without
// allocating.
func rpIDMatches(h *[32]byte, appIDs []string) bool {
	var buf [256]byte
	for _, id := range appIDs {
		var sum [sha256.Size]byte
		if len(id) <= len(buf) {
			n := copy(buf[:], id)
			sum = sha256.Sum256(buf[:n])
		} else {
			sum = sha256.Sum256([]byte(id))
		}
		if sum == *h {
			return true
		}
	}
	return false
}

// SignedDigest returns the digest that the assertion's ECDSA signature
// covers: SHA-256(nonce), where nonce = SHA-256(authenticatorData ‖
// SHA-256(clientData)). The Secure Enclave signs the nonce with
// ECDSA-SHA256, which hashes it once more; verify the signature against
// this digest with ecdsa.VerifyASN1 (or a batch verifier).
func (a *Assertion) SignedDigest(clientData []byte) [32]byte {
	cdh := sha256.Sum256(clientData)
	var nonce [sha256.Size]byte
	var buf [512]byte
	if n := len(a.AuthenticatorData) + len(cdh); n <= len(buf) {
		copy(buf[copy(buf[:], a.AuthenticatorData):], cdh[:])
		nonce = sha256.Sum256(buf[:n])
	} else {
		h := sha256.New()
		h.Write(a.AuthenticatorData)
		h.Write(cdh[:])
		h.Sum(nonce[:0])
	}
	return sha256.Sum256(nonce[:])
}

// VerifyAssertion verifies an assertion made with pub over clientData (the
// bytes the app hashed): ParseAssertion, Check, then the ECDSA P-256
// signature over SignedDigest. High-S signatures are accepted (the Secure
// Enclave makes them). On success it does not allocate.
func VerifyAssertion(assertion, clientData []byte, pub *ecdsa.PublicKey, opts AssertionOptions) (AssertionResult, error) {
	if pub == nil || pub.Curve != elliptic.P256() || pub.X == nil || pub.Y == nil {
		return AssertionResult{}, attest.Errorf(CodePublicKey, "the public key is not an ECDSA P-256 key")
	}
	a, err := ParseAssertion(assertion)
	if err != nil {
		return AssertionResult{}, err
	}
	counter, err := a.Check(clientData, opts)
	if err != nil {
		return AssertionResult{}, err
	}
	d := a.SignedDigest(clientData)
	if !ecdsa.VerifyASN1(pub, d[:], a.Signature) {
		return AssertionResult{}, attest.Errorf(CodeAssertionSignature, "the signature does not verify with the key over the nonce")
	}
	return AssertionResult{Counter: counter, Extensions: a.Extensions}, nil
}

// ParsePublicKey parses an App Attest public key given as PKIX
// (SubjectPublicKeyInfo) DER or as an uncompressed X9.62 point (65 bytes).
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) == 65 && b[0] == 4 {
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
		if err != nil {
			return nil, attest.Errorf(CodePublicKey, "X9.62 point: %w", err)
		}
		return pub, nil
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, attest.Errorf(CodePublicKey, "neither a PKIX public key nor an uncompressed P-256 point: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, attest.Errorf(CodePublicKey, "the public key is %T, not ECDSA P-256", k)
	}
	return pub, nil
}
