package verify

import (
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
)

// AppAttestItem prepares an Apple App Attest assertion for the pipeline.
// It parses the assertion and makes every check but the signature — the
// App ID, the counter against opts.PreviousCounter, the challenge
// (appattest.Assertion.Check) — and returns the item that checks the
// signature: ECDSA P-256 over the digest the assertion commits to, stored in
// *digest (which must outlive the item). It also returns the assertion's
// counter, for the caller to store once the item verifies.
//
// The codes are those of appattest.VerifyAssertion, in the same order:
// cbor.…, assert.malformed, assert.auth_data, input.app_ids,
// assert.app_id_mismatch, assert.counter, assert.challenge, then (from the
// pipeline) assert.signature.
func AppAttestItem(key *PublicKey, assertion, clientData []byte, opts appattest.AssertionOptions, digest *[32]byte) (Item, uint32, error) {
	if key == nil || key.typ != KeyP256 {
		return Item{}, 0, attest.Errorf(CodeKeyAlgorithm, "an App Attest key is ECDSA P-256")
	}
	a, err := appattest.ParseAssertion(assertion)
	if err != nil {
		return Item{}, 0, err
	}
	counter, err := a.Check(clientData, opts)
	if err != nil {
		return Item{}, 0, err
	}
	*digest = a.SignedDigest(clientData)
	return Item{Algorithm: AppAttest, Key: key, Digest: digest[:], Signature: a.Signature}, counter, nil
}
