package webauthn

import (
	"encoding/binary"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
)

// verifyAppAttest verifies format apple-appattest with the App Attest
// verifier (package appattest), which makes every check of Apple's
// documentation on the object and its authenticator data: the chain to the
// Apple App Attestation Root CA, the nonce SHA-256(authData‖clientDataHash)
// in the credential certificate, the key id (here the credential id), the
// App ID (here the RP ID), the counter and the environment. WebAuthn adds
// the client data checks made before, and the policy: App Attest does not
// attest user verification, so a policy that requires it refuses the
// format (policy.user_verification).
func (r *registration) verifyAppAttest() (*attest.Verdict, error) {
	if r.opts.Policy.RequireUserVerification {
		return nil, attest.Errorf(CodeUserVerified, "the policy requires user verification, which App Attest does not attest")
	}
	// The key id App Attest reports is the credential id. When the
	// authenticator data is too short to hold one, the App Attest verifier
	// names what is wrong with it.
	keyID := make([]byte, 32)
	const idAt = 32 + 1 + 4 + 16
	ad := r.obj.authData
	if len(ad) >= idAt+2 {
		n := int(binary.BigEndian.Uint16(ad[idAt:]))
		if len(ad) >= idAt+2+n {
			if n != len(keyID) {
				return nil, attest.Errorf(appattest.CodeCredentialID, "a credential id of %d bytes is no App Attest key id (32 bytes)", n)
			}
			copy(keyID, ad[idAt+2:])
		}
	}
	r.v.appAttestOnce.Do(func() { r.v.appAttest = appattest.NewVerifier() })
	a, err := r.v.appAttest.VerifyAttestation(r.obj.raw, keyID, appattest.AttestationOptions{
		ClientDataHash: r.clientDataHash,
		AppIDs:         r.appIDs(),
		Environment:    r.opts.AppAttestEnvironment,
		Time:           r.opts.Time,
		Roots:          r.opts.AppAttestRoots,
	})
	if err != nil {
		return nil, err
	}
	// The verifier accepted the authenticator data: its fixed fields are
	// there.
	auth := &AuthenticatorData{
		Flags:         ad[32],
		Counter:       a.Counter,
		CredentialID:  a.KeyID,
		CredentialKey: &COSEKey{Alg: AlgES256, Key: a.PublicKey},
	}
	copy(auth.RPIDHash[:], ad[:32])
	copy(auth.AAGUID[:], ad[37:53])
	r.auth = auth
	return a.Verdict, nil
}

// appIDs are the App IDs an apple-appattest registration may be made for.
func (r *registration) appIDs() []string {
	if r.opts.AppAttestAppIDs != nil {
		return r.opts.AppAttestAppIDs
	}
	return []string{r.opts.RPID}
}
