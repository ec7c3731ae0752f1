package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"

	"github.com/keybind/keybind/attest"
	"github.com/oasisprotocol/curve25519-voi/curve"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// KeyType is the type of a public key.
type KeyType uint8

const (
	// KeyP256 is an ECDSA key on NIST P-256.
	KeyP256 KeyType = iota + 1
	// KeyEd25519 is an Ed25519 key.
	KeyEd25519
)

func (t KeyType) String() string {
	switch t {
	case KeyP256:
		return "p256"
	case KeyEd25519:
		return "ed25519"
	}
	return "unknown"
}

// PublicKey is a parsed public key, ready to verify with: for P-256 the
// curve point has been decoded and checked, for Ed25519 the point has been
// decompressed and expanded into the tables that make verifying with it
// about twice as fast. A PublicKey is immutable and safe to share; parse a
// key once and keep it (see KeyCache).
type PublicKey struct {
	typ   KeyType
	p256  *ecdsa.PublicKey
	ed    *voi.ExpandedPublicKey
	edRaw [32]byte
}

// Type returns the key's type.
func (k *PublicKey) Type() KeyType { return k.typ }

// ECDSA returns the P-256 key, or nil for another type.
func (k *PublicKey) ECDSA() *ecdsa.PublicKey { return k.p256 }

// Ed25519 returns the Ed25519 key, or nil for another type.
func (k *PublicKey) Ed25519() ed25519.PublicKey {
	if k.typ != KeyEd25519 {
		return nil
	}
	return ed25519.PublicKey(k.edRaw[:])
}

// ParsePublicKey parses a public key in any of the encodings a phone or a
// TPM hands out: a PKIX SubjectPublicKeyInfo (DER) holding a P-256 or an
// Ed25519 key, an uncompressed X9.62 P-256 point (65 bytes, 0x04‖X‖Y), or a
// raw Ed25519 key (32 bytes). It returns an *attest.Error with code
// CodePublicKey for anything else, including points not on the curve and
// Ed25519 keys of small order or in a non-canonical encoding.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	switch {
	case len(b) == 65 && b[0] == 4:
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
		if err != nil {
			return nil, attest.Errorf(CodePublicKey, "P-256 point: %v", err)
		}
		return &PublicKey{typ: KeyP256, p256: pub}, nil
	case len(b) == 32:
		return parseEd25519(b)
	case len(b) > 0 && b[0] == 0x30:
		pub, err := x509.ParsePKIXPublicKey(b)
		if err != nil {
			return nil, attest.Errorf(CodePublicKey, "SubjectPublicKeyInfo: %v", err)
		}
		switch pub := pub.(type) {
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				return nil, attest.Errorf(CodePublicKey, "ECDSA key on %s, want P-256", pub.Curve.Params().Name)
			}
			return &PublicKey{typ: KeyP256, p256: pub}, nil
		case ed25519.PublicKey:
			return parseEd25519(pub)
		default:
			return nil, attest.Errorf(CodePublicKey, "%T key, want P-256 or Ed25519", pub)
		}
	}
	return nil, attest.Errorf(CodePublicKey, "%d bytes are neither a SubjectPublicKeyInfo, a P-256 point nor an Ed25519 key", len(b))
}

func parseEd25519(b []byte) (*PublicKey, error) {
	// The checks the verifier would otherwise make on every signature, made
	// once: the encoding is a point, it is the point's canonical encoding
	// (not a second name for it), and the point is not of small order (such
	// a key "signs" messages nobody signed).
	var y curve.CompressedEdwardsY
	var a curve.EdwardsPoint
	if _, err := y.SetBytes(b); err != nil {
		return nil, attest.Errorf(CodePublicKey, "Ed25519 key: %v", err)
	}
	if _, err := a.SetCompressedY(&y); err != nil {
		return nil, attest.Errorf(CodePublicKey, "Ed25519 key is not a curve point")
	}
	if !y.IsCanonicalVartime() {
		return nil, attest.Errorf(CodePublicKey, "Ed25519 key is not canonically encoded")
	}
	if a.IsSmallOrder() {
		return nil, attest.Errorf(CodePublicKey, "Ed25519 key is of small order")
	}
	exp, err := voi.NewExpandedPublicKey(voi.PublicKey(b))
	if err != nil {
		return nil, attest.Errorf(CodePublicKey, "Ed25519 key: %v", err)
	}
	k := &PublicKey{typ: KeyEd25519, ed: exp}
	copy(k.edRaw[:], b)
	return k, nil
}
