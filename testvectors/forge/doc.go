// Package forge makes attestations the way real devices do, but signed by
// test and development roots that no production trust store holds: Android
// Key Attestation chains (factory and remotely provisioned shapes) with any
// KeyDescription, App Attest attestation objects and assertions, WebAuthn
// attestation objects. The vector generator (testvectors/generate) builds the
// project's test vectors with it, and the phone simulator (`keybind device`)
// builds its enrollments with it.
//
// Nothing made here verifies under keybind's built-in roots: a verifier
// accepts it only when the caller explicitly trusts the forge's root, as
// tests and the demo tenant do.
package forge
