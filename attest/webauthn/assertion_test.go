package webauthn_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
)

var assertChallenge = []byte("keybind sign-in answer digest 0123")

func assertOptions() *webauthn.AssertionOptions {
	return &webauthn.AssertionOptions{Challenge: assertChallenge, Origins: []string{origin}, RPID: rpID, RequireUserVerification: true}
}

// TestAssertionAlgorithms verifies an assertion of each credential
// algorithm, and refuses it over another challenge.
func TestAssertionAlgorithms(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		name string
		key  crypto.Signer
		alg  int64
	}{
		{"ES256", p256, webauthn.AlgES256},
		{"ES384", p384, webauthn.AlgES384},
		{"ES512", p521, webauthn.AlgES512},
		{"EdDSA", ed, webauthn.AlgEdDSA},
		{"RS256", rsaKey, webauthn.AlgRS256},
		{"RS384", rsaKey, webauthn.AlgRS384},
		{"PS256", rsaKey, webauthn.AlgPS256},
		{"PS512", rsaKey, webauthn.AlgPS512},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := forge.WebAuthnAssert(c.key, forge.WebAuthnAssertOptions{RPID: rpID, Origin: origin, Challenge: assertChallenge, Alg: c.alg, Counter: 7})
			if err != nil {
				t.Fatal(err)
			}
			got, err := webauthn.VerifyAssertion(c.key.Public(), c.alg, a.AuthenticatorData, a.ClientDataJSON, a.Signature, assertOptions())
			if err != nil {
				t.Fatal(err)
			}
			if got.Counter != 7 || got.Flags != webauthn.FlagUP|webauthn.FlagUV {
				t.Errorf("assertion %+v", got)
			}
			o := assertOptions()
			o.Challenge = []byte("another challenge")
			_, err = webauthn.VerifyAssertion(c.key.Public(), c.alg, a.AuthenticatorData, a.ClientDataJSON, a.Signature, o)
			wantAssertCode(t, err, webauthn.CodeAssertionChallenge)
		})
	}
}

func wantAssertCode(t *testing.T, err error, code attest.Code) {
	t.Helper()
	if attest.CodeOf(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// TestAssertionRefusals: one refusal per check.
func TestAssertionRefusals(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	base := forge.WebAuthnAssertOptions{RPID: rpID, Origin: origin, Challenge: assertChallenge, Alg: webauthn.AlgES256, Counter: 1}
	type edit struct {
		name string
		code attest.Code
		make func(o *forge.WebAuthnAssertOptions)
		sig  func(a *forge.WebAuthnAssertion)
		opts func(o *webauthn.AssertionOptions)
		key  crypto.PublicKey
		alg  int64
	}
	for _, c := range []edit{
		{name: "no challenge", code: webauthn.CodeInputChallenge, opts: func(o *webauthn.AssertionOptions) { o.Challenge = nil }},
		{name: "no origin", code: webauthn.CodeInputOrigin, opts: func(o *webauthn.AssertionOptions) { o.Origins = nil }},
		{name: "no RP ID", code: webauthn.CodeInputRPID, opts: func(o *webauthn.AssertionOptions) { o.RPID = "" }},
		{name: "key of another type than its algorithm", code: webauthn.CodeInputKey, key: ed.Public()},
		{name: "unknown algorithm", code: webauthn.CodeInputKey, alg: -999},
		{name: "client data not JSON", code: webauthn.CodeClientData, make: func(o *forge.WebAuthnAssertOptions) { o.ClientDataJSON = []byte("{") }},
		{name: "registration client data", code: webauthn.CodeClientDataType, make: func(o *forge.WebAuthnAssertOptions) { o.Type = "webauthn.create" }},
		{name: "another challenge", code: webauthn.CodeAssertionChallenge, make: func(o *forge.WebAuthnAssertOptions) { o.Challenge = []byte("old challenge") }},
		{name: "another origin", code: webauthn.CodeOrigin, make: func(o *forge.WebAuthnAssertOptions) { o.Origin = "https://evil.example" }},
		{name: "cross origin", code: webauthn.CodeCrossOrigin, make: func(o *forge.WebAuthnAssertOptions) {
			o.ClientDataJSON = []byte(`{"type":"webauthn.get","challenge":"` + b64url(assertChallenge) + `","origin":"` + origin + `","crossOrigin":true}`)
		}},
		{name: "token binding", code: webauthn.CodeTokenBinding, make: func(o *forge.WebAuthnAssertOptions) {
			o.ClientDataJSON = []byte(`{"type":"webauthn.get","challenge":"` + b64url(assertChallenge) + `","origin":"` + origin + `","tokenBinding":{"status":"present","id":"x"}}`)
		}},
		{name: "short authenticator data", code: webauthn.CodeAuthDataShort, make: func(o *forge.WebAuthnAssertOptions) {
			o.AuthData = func(b []byte) []byte { return b[:36] }
		}},
		{name: "trailing authenticator data", code: webauthn.CodeAuthDataTrail, make: func(o *forge.WebAuthnAssertOptions) {
			o.AuthData = func(b []byte) []byte { return append(b, 0) }
		}},
		{name: "attested credential data", code: webauthn.CodeAssertionAuthData, make: func(o *forge.WebAuthnAssertOptions) {
			o.Flags = webauthn.FlagUP | webauthn.FlagUV | webauthn.FlagAT
			cose, _ := forge.COSEKey(&key.PublicKey, forge.COSEES256)
			o.AuthData = func(b []byte) []byte {
				b = append(b, make([]byte, 16)...)
				b = append(b, 0, 1, 9)
				return append(b, cose...)
			}
		}},
		{name: "another RP ID", code: webauthn.CodeRPID, make: func(o *forge.WebAuthnAssertOptions) { o.RPID = "evil.example" }},
		{name: "user not present", code: webauthn.CodeUserPresent, make: func(o *forge.WebAuthnAssertOptions) { o.Flags = webauthn.FlagUV }},
		{name: "user not verified", code: webauthn.CodeUserVerified, make: func(o *forge.WebAuthnAssertOptions) { o.Flags = webauthn.FlagUP }},
		{name: "signature by another key", code: webauthn.CodeAssertionSignature, key: &other.PublicKey},
		{name: "signature truncated", code: webauthn.CodeAssertionSignature, sig: func(a *forge.WebAuthnAssertion) { a.Signature = a.Signature[:len(a.Signature)-1] }},
		{name: "authenticator data changed after signing", code: webauthn.CodeAssertionSignature, sig: func(a *forge.WebAuthnAssertion) { a.AuthenticatorData[36]++ }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			if c.make != nil {
				c.make(&o)
			}
			a, err := forge.WebAuthnAssert(key, o)
			if err != nil {
				t.Fatal(err)
			}
			if c.sig != nil {
				c.sig(&a)
			}
			opts := assertOptions()
			if c.opts != nil {
				c.opts(opts)
			}
			var pub crypto.PublicKey = &key.PublicKey
			if c.key != nil {
				pub = c.key
			}
			alg := webauthn.AlgES256
			if c.alg != 0 {
				alg = c.alg
			}
			_, err = webauthn.VerifyAssertion(pub, alg, a.AuthenticatorData, a.ClientDataJSON, a.Signature, opts)
			wantAssertCode(t, err, c.code)
		})
	}
	// Without the requirement, an assertion without UV verifies.
	a, _ := forge.WebAuthnAssert(key, forge.WebAuthnAssertOptions{RPID: rpID, Origin: origin, Challenge: assertChallenge, Alg: webauthn.AlgES256, Flags: webauthn.FlagUP})
	o := assertOptions()
	o.RequireUserVerification = false
	if _, err := webauthn.VerifyAssertion(&key.PublicKey, webauthn.AlgES256, a.AuthenticatorData, a.ClientDataJSON, a.Signature, o); err != nil {
		t.Fatal(err)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FuzzAssertion feeds arbitrary assertions to VerifyAssertion: never a
// panic, always a coded refusal, and nothing but a real assertion accepted
// under a key the fuzzer cannot sign with.
func FuzzAssertion(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, _ := forge.WebAuthnAssert(key, forge.WebAuthnAssertOptions{RPID: rpID, Origin: origin, Challenge: assertChallenge, Alg: webauthn.AlgES256})
	f.Add(a.AuthenticatorData, a.ClientDataJSON, a.Signature)
	f.Add(a.AuthenticatorData[:10], []byte("{}"), []byte{0x30})
	f.Fuzz(func(t *testing.T, authData, clientData, sig []byte) {
		_, err := webauthn.VerifyAssertion(&key.PublicKey, webauthn.AlgES256, authData, clientData, sig, assertOptions())
		if err == nil {
			return
		}
		if attest.CodeOf(err) == "" {
			t.Fatalf("refusal without a code: %v", err)
		}
	})
}

// TestAppAttestAppIDs: an apple-appattest registration verifies for any of
// Options.AppAttestAppIDs (the RP ID then being the domain of the other
// formats), and is refused when its App ID is not among them.
func TestAppAttestAppIDs(t *testing.T) {
	ca, err := forge.NewAppAttestCA(t0)
	if err != nil {
		t.Fatal(err)
	}
	const appID = "TEAMID1234.test.keybind.app"
	cases, err := forge.WebAuthnAppAttestCases(ca, "appattest/", appID, origin, challenge)
	if err != nil {
		t.Fatal(err)
	}
	c := cases[0]
	o := options(t, c)
	o.RPID = rpID
	o.AppAttestAppIDs = []string{"TEAMID1234.test.keybind.other", appID}
	v, err := webauthn.Verify(c.Object, c.ClientData, o)
	if err != nil || v.Facts["app_id"] != appID {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	o.AppAttestAppIDs = []string{"TEAMID1234.test.keybind.other"}
	_, err = webauthn.Verify(c.Object, c.ClientData, o)
	wantAssertCode(t, err, "appattest.app_id_mismatch")
}
