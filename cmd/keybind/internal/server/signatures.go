package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"

	"github.com/keybind/keybind/verify"
)

// PipelineSignatures returns the engine's PlainSignatures hook
// (engine.Config.PlainSignatures) over the verify pipeline: answers and
// device requests signed by ECDSA P-256 keys (SHA-256, ASN.1 DER) and
// Ed25519 keys are verified by the same batched workers as POST
// /v1/verify, parsed keys kept in a cache of max keys. Other keys (P-384,
// P-521, RSA) are left to the standard library. When the pipeline refuses
// the work (overloaded, closed) the standard library verifies instead.
func PipelineSignatures(p *verify.Pipeline, max int) func(key crypto.PublicKey, message, signature []byte) (bool, bool) {
	cache := verify.NewKeyCache(max)
	return func(key crypto.PublicKey, message, signature []byte) (bool, bool) {
		var raw []byte
		var alg verify.Algorithm
		switch k := key.(type) {
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return false, false
			}
			b, err := k.Bytes()
			if err != nil {
				return false, false
			}
			raw, alg = b, verify.ECDSAP256
		case ed25519.PublicKey:
			raw, alg = k, verify.Ed25519
		default:
			return false, false
		}
		pk, err := cache.Get(raw, "", func() (*verify.PublicKey, error) { return verify.ParsePublicKey(raw) })
		if err != nil {
			return true, false // a key of small order or off the curve verifies nothing
		}
		items := []verify.Item{{Algorithm: alg, Key: pk, Message: message, Signature: signature}}
		if items[0].Message == nil {
			items[0].Message = []byte{}
		}
		results := make([]verify.Result, 1)
		if err := p.Verify(items, results); err != nil {
			return false, false
		}
		return true, results[0].Valid()
	}
}
