package webauthn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
)

// COSE algorithm identifiers (IANA COSE Algorithms registry).
const (
	AlgES256 int64 = -7
	AlgEdDSA int64 = -8
	AlgES384 int64 = -35
	AlgES512 int64 = -36
	AlgPS256 int64 = -37
	AlgPS384 int64 = -38
	AlgPS512 int64 = -39
	AlgRS256 int64 = -257
	AlgRS384 int64 = -258
	AlgRS512 int64 = -259
	// AlgRS1 (RSASSA-PKCS1-v1_5 with SHA-1) is accepted only as the
	// signature algorithm of a tpm statement, where TPMs without SHA-256
	// use it; never for a credential key.
	AlgRS1 int64 = -65535
)

// COSE key types and curves.
const (
	ktyOKP = 1
	ktyEC2 = 2
	ktyRSA = 3

	crvP256    = 1
	crvP384    = 2
	crvP521    = 3
	crvEd25519 = 6
)

// COSE key parameter labels.
const (
	labelKty = 1
	labelKid = 2
	labelAlg = 3
	labelCrv = -1 // EC2, OKP
	labelX   = -2 // EC2, OKP
	labelY   = -3 // EC2
	labelN   = -1 // RSA
	labelE   = -2 // RSA
)

// coseAlg describes an accepted algorithm: its key type, curve (EC2, OKP)
// and hash.
type coseAlg struct {
	kty  int64
	crv  int64
	hash crypto.Hash
	pss  bool
	name string
}

// credentialAlgs are the algorithms accepted for credential keys.
var credentialAlgs = map[int64]coseAlg{
	AlgES256: {ktyEC2, crvP256, crypto.SHA256, false, "ES256"},
	AlgES384: {ktyEC2, crvP384, crypto.SHA384, false, "ES384"},
	AlgES512: {ktyEC2, crvP521, crypto.SHA512, false, "ES512"},
	AlgEdDSA: {ktyOKP, crvEd25519, 0, false, "EdDSA"},
	AlgRS256: {ktyRSA, 0, crypto.SHA256, false, "RS256"},
	AlgRS384: {ktyRSA, 0, crypto.SHA384, false, "RS384"},
	AlgRS512: {ktyRSA, 0, crypto.SHA512, false, "RS512"},
	AlgPS256: {ktyRSA, 0, crypto.SHA256, true, "PS256"},
	AlgPS384: {ktyRSA, 0, crypto.SHA384, true, "PS384"},
	AlgPS512: {ktyRSA, 0, crypto.SHA512, true, "PS512"},
}

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// COSEKey is a credential public key.
type COSEKey struct {
	// Alg is the COSE algorithm the key is used with.
	Alg int64
	// Key is *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
}

// Algorithm names the key as verdicts report it: "ecdsa-p256",
// "ecdsa-p384", "ecdsa-p521", "ed25519" or "rsa-2048" (with its size).
func (k *COSEKey) Algorithm() string {
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			return "ecdsa-p256"
		case elliptic.P384():
			return "ecdsa-p384"
		case elliptic.P521():
			return "ecdsa-p521"
		}
	case ed25519.PublicKey:
		return "ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", key.N.BitLen())
	}
	return "unknown"
}

// ParseCOSEKey decodes a credential public key (COSE_Key, RFC 9052/9053)
// strictly, one code per check: one CBOR map in the strict profile
// (cbor.*); kty and alg present as integers, only the parameters of the key
// type, each of its type, coordinates of the curve's size, an RSA modulus
// without leading zeros and a small odd exponent (webauthn.cose_malformed);
// an algorithm keybind accepts (webauthn.cose_algorithm); kty, alg and crv
// that agree (webauthn.cose_mismatch); a point on the curve, an RSA modulus
// of at least 2048 bits (webauthn.cose_key_invalid).
func ParseCOSEKey(b []byte) (*COSEKey, error) {
	var m map[int64]cbor.RawMessage
	if err := attest.UnmarshalCBOR("credential public key", b, &m); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return attest.Errorf(CodeCOSEKey, "credential public key: "+format, args...)
	}
	intParam := func(label int64) (int64, bool, error) {
		raw, ok := m[label]
		if !ok {
			return 0, false, nil
		}
		var v int64
		if err := attest.UnmarshalCBOR("credential public key", raw, &v); err != nil {
			return 0, true, bad("parameter %d is not an integer", label)
		}
		return v, true, nil
	}
	bytesParam := func(label int64) ([]byte, error) {
		raw, ok := m[label]
		if !ok {
			return nil, bad("parameter %d is missing", label)
		}
		var v []byte
		if err := attest.UnmarshalCBOR("credential public key", raw, &v); err != nil {
			return nil, bad("parameter %d is not a byte string", label)
		}
		return v, nil
	}
	kty, ok, err := intParam(labelKty)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, bad("no kty")
	}
	alg, ok, err := intParam(labelAlg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, bad("no alg")
	}
	var allowed []int64
	switch kty {
	case ktyEC2:
		allowed = []int64{labelCrv, labelX, labelY}
	case ktyOKP:
		allowed = []int64{labelCrv, labelX}
	case ktyRSA:
		allowed = []int64{labelN, labelE}
	default:
		return nil, attest.Errorf(CodeCOSEAlgorithm, "credential public key of kty %d (EC2, OKP or RSA)", kty)
	}
	for label := range m {
		ok := label == labelKty || label == labelAlg || label == labelKid
		for _, a := range allowed {
			ok = ok || label == a
		}
		if !ok {
			return nil, bad("parameter %d is not one of a kty %d key", label, kty)
		}
	}
	if raw, ok := m[labelKid]; ok {
		var kid []byte
		if err := attest.UnmarshalCBOR("credential public key", raw, &kid); err != nil {
			return nil, bad("kid is not a byte string")
		}
	}
	a, ok := credentialAlgs[alg]
	if !ok {
		return nil, attest.Errorf(CodeCOSEAlgorithm, "credential public key algorithm %d is not one keybind accepts", alg)
	}
	if a.kty != kty {
		return nil, attest.Errorf(CodeCOSEMismatch, "credential public key of kty %d with algorithm %s", kty, a.name)
	}
	key := &COSEKey{Alg: alg}
	switch kty {
	case ktyEC2, ktyOKP:
		crv, ok, err := intParam(labelCrv)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, bad("no crv")
		}
		x, err := bytesParam(labelX)
		if err != nil {
			return nil, err
		}
		if crv != a.crv {
			return nil, attest.Errorf(CodeCOSEMismatch, "credential public key on curve %d with algorithm %s", crv, a.name)
		}
		if kty == ktyOKP {
			if len(x) != ed25519.PublicKeySize {
				return nil, bad("Ed25519 key of %d bytes", len(x))
			}
			key.Key = ed25519.PublicKey(x)
			return key, nil
		}
		y, err := bytesParam(labelY)
		if err != nil {
			return nil, err
		}
		curve := map[int64]elliptic.Curve{crvP256: elliptic.P256(), crvP384: elliptic.P384(), crvP521: elliptic.P521()}[crv]
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, bad("coordinates of %d and %d bytes on a curve of %d-byte coordinates", len(x), len(y), size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, attest.Errorf(CodeCOSEKeyInvalid, "credential public key: %v", err)
		}
		key.Key = pub
	case ktyRSA:
		n, err := bytesParam(labelN)
		if err != nil {
			return nil, err
		}
		e, err := bytesParam(labelE)
		if err != nil {
			return nil, err
		}
		if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
			return nil, bad("RSA modulus or exponent not minimally encoded")
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Int64() < 3 || exp.Int64()%2 == 0 || exp.Int64() > 1<<31-1 {
			return nil, bad("RSA exponent %v", exp)
		}
		mod := new(big.Int).SetBytes(n)
		if mod.BitLen() < MinRSABits || mod.BitLen() > 16384 || mod.Bit(0) == 0 {
			return nil, attest.Errorf(CodeCOSEKeyInvalid, "credential public key: RSA modulus of %d bits (%d to 16384, odd)", mod.BitLen(), MinRSABits)
		}
		key.Key = &rsa.PublicKey{N: mod, E: int(exp.Int64())}
	}
	return key, nil
}

// verifySignature checks sig over msg with key under the COSE algorithm
// alg: PKCS #1 v1.5 and PSS for RSA, ASN.1 DER for ECDSA, Ed25519; RS1 is
// accepted here (tpm statements) besides the algorithms of credential keys.
func verifySignature(alg int64, key crypto.PublicKey, msg, sig []byte) error {
	a, ok := credentialAlgs[alg]
	if alg == AlgRS1 {
		a, ok = coseAlg{ktyRSA, 0, crypto.SHA1, false, "RS1"}, true
	}
	if !ok {
		return fmt.Errorf("algorithm %d", alg)
	}
	var digest []byte
	if a.hash != 0 {
		h := a.hash.New()
		h.Write(msg)
		digest = h.Sum(nil)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if a.kty != ktyRSA {
			return fmt.Errorf("an RSA key with algorithm %s", a.name)
		}
		if a.pss {
			return rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig)
	case *ecdsa.PublicKey:
		if a.kty != ktyEC2 {
			return fmt.Errorf("an ECDSA key with algorithm %s", a.name)
		}
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return fmt.Errorf("ECDSA signature does not verify")
		}
		return nil
	case ed25519.PublicKey:
		if a.kty != ktyOKP {
			return fmt.Errorf("an Ed25519 key with algorithm %s", a.name)
		}
		if !ed25519.Verify(k, msg, sig) {
			return fmt.Errorf("Ed25519 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("a key of type %T", key)
}

// hashOf returns the hash of a signature algorithm (tpm statements).
func hashOf(alg int64) (crypto.Hash, bool) {
	if alg == AlgRS1 {
		return crypto.SHA1, true
	}
	a, ok := credentialAlgs[alg]
	if !ok || a.hash == 0 {
		return 0, false
	}
	return a.hash, true
}
