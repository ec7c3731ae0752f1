// Package verify checks the signatures of keybind's hot path — the signed
// approvals of phone sign-in and the items of the stateless verify endpoint —
// for many callers at once, at the speed of the underlying crypto.
//
// It knows nothing of tenants or HTTP: an Item is a parsed public key, an
// algorithm, a message (or its SHA-256 digest) and a signature, and its
// Result is valid or the stable code of the check that failed:
//
//	p := verify.New(verify.Options{}) // one worker per core
//	defer p.Close()
//	key, err := verify.ParsePublicKey(spki) // once per key; see KeyCache
//	items := []verify.Item{{Algorithm: verify.ECDSAP256, Key: key, Message: msg, Signature: sig}}
//	results := make([]verify.Result, len(items))
//	if err := p.Verify(items, results); err != nil { … } // ErrOverloaded, ErrClosed
//	if !results[0].Valid() { log.Print(results[0].Code) } // "assert.signature", "input.signature", …
//
// Algorithms: ECDSA P-256 with SHA-256 (ASN.1 DER or raw r‖s signatures,
// over a message or a 32-byte digest); Ed25519 (RFC 8032 with the cofactored
// equation, which batch verification requires — batches and single checks
// give the same answers; it differs from crypto/ed25519 only on signatures
// crafted by a key's owner with small-order components, and keys of small
// order and non-canonical key encodings are refused when parsed); and App
// Attest assertions (AppAttestItem makes the assertion's own checks, then
// the pipeline verifies its P-256 signature over the digest the assertion
// commits to).
//
// One Pipeline serves every connection: its workers take queued items in
// batches, and Ed25519 batches are checked with one multi-scalar equation
// (github.com/oasisprotocol/curve25519-voi), falling back to single checks
// to find the bad signatures when a batch fails. See Pipeline for how
// batches adapt to the load.
//
// Parsed keys are kept in a KeyCache by credential id. The steady path —
// cached key, pooled request, reused batch state — allocates nothing of its
// own; the tests compare its allocations with those of the bare crypto
// calls it makes.
package verify
