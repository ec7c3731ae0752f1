package verify

import (
	"github.com/keybind/keybind/attest"
)

// Algorithm is a signature algorithm the pipeline verifies.
type Algorithm uint8

const (
	// ECDSAP256 is ECDSA on P-256 with SHA-256, the signature an ASN.1 DER
	// SEQUENCE of two INTEGERs (what Android Keystore, WebAuthn and Apple's
	// Security framework produce). Name "ecdsa-p256".
	ECDSAP256 Algorithm = iota + 1
	// ECDSAP256Raw is the same with the signature as r‖s, two 32-byte
	// big-endian integers (JOSE/COSE ES256, CryptoKit's rawRepresentation).
	// Name "ecdsa-p256-raw".
	ECDSAP256Raw
	// Ed25519 is PureEdDSA on edwards25519 (RFC 8032). Name "ed25519".
	Ed25519
	// AppAttest is an Apple App Attest assertion: a P-256 ECDSA signature
	// (DER) over the digest the assertion commits to (see AppAttestItem).
	// Name "appattest".
	AppAttest

	numAlgorithms = iota + 1
)

var algorithmNames = [numAlgorithms]string{"", "ecdsa-p256", "ecdsa-p256-raw", "ed25519", "appattest"}

// String returns the algorithm's name as the HTTP API spells it.
func (a Algorithm) String() string {
	if a > 0 && int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return "unknown"
}

// ParseAlgorithm returns the algorithm named name ("ecdsa-p256",
// "ecdsa-p256-raw", "ed25519", "appattest"), or false.
func ParseAlgorithm(name []byte) (Algorithm, bool) {
	for a := Algorithm(1); a < numAlgorithms; a++ {
		if string(name) == algorithmNames[a] {
			return a, true
		}
	}
	return 0, false
}

// KeyType returns the type of key the algorithm verifies with.
func (a Algorithm) KeyType() KeyType {
	switch a {
	case ECDSAP256, ECDSAP256Raw, AppAttest:
		return KeyP256
	case Ed25519:
		return KeyEd25519
	}
	return 0
}

// The codes an item can fail with. Codes of the "input." family mean the
// item itself is unusable (the caller sent something malformed); a code of
// the "assert." family means the item is well formed and the signature does
// not verify.
const (
	// CodeAlgorithm: the algorithm is unknown.
	CodeAlgorithm attest.Code = "input.algorithm"
	// CodePublicKey: the public key does not parse, is not on its curve, or
	// is an Ed25519 key of small order or non-canonical encoding.
	CodePublicKey attest.Code = "input.public_key"
	// CodeKeyAlgorithm: the key is of another type than the algorithm
	// verifies with (an Ed25519 key with "ecdsa-p256", …).
	CodeKeyAlgorithm attest.Code = "input.key_algorithm"
	// CodeDigest: a digest is not 32 bytes, or a digest was given for
	// Ed25519 (which signs the message itself, never a digest).
	CodeDigest attest.Code = "input.digest"
	// CodeMessage: neither a message nor a digest was given, or both were.
	CodeMessage attest.Code = "input.message"
	// CodeSignatureEncoding: the signature is not a strict DER ECDSA
	// signature, not 64 bytes of r‖s, or not a 64-byte Ed25519 signature.
	CodeSignatureEncoding attest.Code = "input.signature"
	// CodeSignature: the signature does not verify.
	CodeSignature attest.Code = "assert.signature"
)

// Item is one signature to check. Exactly one of Message and Digest is set:
// Message is the signed message (hashed with SHA-256 for the ECDSA
// algorithms, signed as is by Ed25519), Digest its SHA-256 digest
// (ECDSA and App Attest only).
//
// The pipeline reads an item's slices while it verifies, so they must stay
// unchanged until Verify returns; it never keeps them after.
type Item struct {
	Algorithm Algorithm
	Key       *PublicKey
	Message   []byte
	Digest    []byte
	Signature []byte
}

// Result is the outcome of one item: valid when Code is empty, otherwise
// the code of the check that failed.
type Result struct {
	Code attest.Code
}

// Valid reports whether the signature verified.
func (r Result) Valid() bool { return r.Code == "" }

// Precheck returns the code an item fails with before any signature
// arithmetic (unknown algorithm, key of the wrong type, missing message,
// digest of the wrong length, signature of the wrong shape), or "" when the
// item is well formed. The pipeline runs it on every item; callers may run
// it first to answer malformed items without queueing them.
func Precheck(it *Item) attest.Code {
	if it.Algorithm == 0 || it.Algorithm >= numAlgorithms {
		return CodeAlgorithm
	}
	if it.Key == nil {
		return CodePublicKey
	}
	if it.Key.typ != it.Algorithm.KeyType() {
		return CodeKeyAlgorithm
	}
	if (it.Message == nil) == (it.Digest == nil) {
		return CodeMessage
	}
	if it.Digest != nil && (len(it.Digest) != 32 || it.Algorithm == Ed25519) {
		return CodeDigest
	}
	switch it.Algorithm {
	case ECDSAP256:
		if !validDER(it.Signature) {
			return CodeSignatureEncoding
		}
	case AppAttest:
		// The signature is part of the assertion, the device's evidence:
		// one that is not DER does not verify (as appattest reports it).
		if !validDER(it.Signature) {
			return CodeSignature
		}
	case ECDSAP256Raw, Ed25519:
		if len(it.Signature) != 64 {
			return CodeSignatureEncoding
		}
	}
	return ""
}

// validDER reports whether sig is a strict DER encoding of an ECDSA-Sig-Value
// for P-256: SEQUENCE { r INTEGER, s INTEGER } with definite short-form
// lengths, minimal positive integers of at most 32 significant bytes, and
// nothing after the sequence.
func validDER(sig []byte) bool {
	if len(sig) < 8 || sig[0] != 0x30 || int(sig[1]) != len(sig)-2 || sig[1] >= 0x80 {
		return false
	}
	rest := sig[2:]
	for range 2 {
		if len(rest) < 3 || rest[0] != 0x02 {
			return false
		}
		n := int(rest[1])
		if n == 0 || n > 33 || n > len(rest)-2 {
			return false
		}
		v := rest[2 : 2+n]
		if v[0]&0x80 != 0 { // negative
			return false
		}
		if n > 1 && v[0] == 0 && v[1]&0x80 == 0 { // not minimal
			return false
		}
		if n == 33 && v[0] != 0 { // more than 256 bits
			return false
		}
		rest = rest[2+n:]
	}
	return len(rest) == 0
}

// rawToDER encodes the 64-byte r‖s signature as DER into buf and returns
// the encoding.
func rawToDER(buf *[72]byte, raw []byte) []byte {
	b := buf[:0]
	b = append(b, 0x30, 0)
	for _, v := range [2][]byte{raw[:32], raw[32:64]} {
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		if v[0]&0x80 != 0 {
			b = append(b, 0x02, byte(len(v)+1), 0)
		} else {
			b = append(b, 0x02, byte(len(v)))
		}
		b = append(b, v...)
	}
	b[1] = byte(len(b) - 2)
	return b
}
