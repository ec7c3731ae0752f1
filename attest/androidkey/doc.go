// Package androidkey verifies Android Key Attestation: the certificate chain
// an Android app gets from KeyStore for a key it generated, whose leaf
// carries the KeyDescription extension in which the device's secure
// hardware (a TEE or a StrongBox) describes the key.
//
// Create one Verifier and share it; it caches what millions of devices
// have in common (the certificates above the leaf and their verified
// signatures), so that a chain whose upper part was seen before costs the
// leaf's parse and one signature check:
//
//	v := androidkey.NewVerifier()
//	res, err := v.Verify(chain, androidkey.Options{
//		Challenge: challenge,             // what the server gave the app
//		Policy:    androidkey.Policy{RequireUserAuth: true},
//	})
//	if err != nil {
//		// err is an *attest.Error: attest.CodeOf(err) names the check
//		// ("chain.untrusted_root", "android.challenge_mismatch",
//		// "policy.user_auth", …).
//	}
//	key := res.Verdict.PublicKey        // the attested key
//	level := res.Verdict.Facts["security_level"]
//
// Trust comes only from the roots given in Options.Roots, by default
// Google's hardware attestation root keys (embedded, pinned by the SHA-256
// of their SubjectPublicKeyInfo). Chains ending in Android's software
// attestation root, or in any other root, are rejected.
//
// The chain is validated as an attestation chain, not as a TLS chain:
// signatures are checked link by link from the anchor down, issuers need
// not carry CA basic constraints (real factory batch certificates do not),
// only the leaf may carry the KeyDescription extension, and the length is
// bounded. Validity periods follow Policy.Expiry; revocation follows
// Google's status list (StatusList, kept fresh by a StatusSource).
//
// Policy's zero value is the safe default: at least a TEE, verified boot
// and a locked bootloader, any app, expiry policy "google". Its JSON form
// (ParsePolicy) is shared by the test vectors, `keybind attest android
// --policy` and tenant policies.
//
// Verify lists the checks in order; each has its own error code (the Code
// constants of this package).
package androidkey
