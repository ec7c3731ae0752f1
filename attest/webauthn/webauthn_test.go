package webauthn_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rpID      = "login.keybind.test"
	origin    = "https://login.keybind.test"
	challenge = []byte("keybind registration challenge 01")
)

// options returns the options a case is checked under.
func options(t *testing.T, c forge.WebAuthnCase) *webauthn.Options {
	t.Helper()
	o := &webauthn.Options{Challenge: challenge, Origins: []string{origin}, RPID: rpID, Time: c.Time}
	if c.RPID != "" {
		o.RPID = c.RPID
	}
	policy := map[string]any{}
	for k, v := range c.Policy {
		policy[k] = v
	}
	if c.AllowSoftwareKeys {
		policy["min_security_level"] = "software"
	}
	if c.RequireUserVerification {
		policy["require_user_auth"] = true
	}
	b, _ := json.Marshal(policy)
	p, err := webauthn.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	o.Policy = p
	// Each format reads its own roots; a case's roots are its format's.
	var roots []*x509.Certificate
	for _, der := range c.Roots {
		r, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, r)
	}
	if roots != nil {
		o.TPMRoots, o.AppAttestRoots, o.AndroidRoots = roots, roots, androidkey.NewRoots(roots...)
	}
	return o
}

func check(t *testing.T, c forge.WebAuthnCase, verifier *webauthn.Verifier) *attest.Verdict {
	t.Helper()
	o := options(t, c)
	if verifier == nil {
		verifier = new(webauthn.Verifier)
	}
	v, err := verifier.Verify(c.Object, c.ClientData, o)
	if c.Code == "" {
		if err != nil {
			t.Fatalf("want accept, got %v", err)
		}
		for k, want := range c.Facts {
			got, _ := json.Marshal(v.Facts[k])
			w, _ := json.Marshal(want)
			if !bytes.Equal(got, w) {
				t.Errorf("fact %s = %s, want %s", k, got, w)
			}
		}
		return v
	}
	code := attest.Code(c.Code)
	if attest.CodeOf(err) != code || !errors.Is(err, code.Err()) {
		t.Fatalf("want %s, got %v", code, err)
	}
	return nil
}

// TestTPMCases runs every registration of format tpm the simulated TPM
// makes: valid ones, one refusal per check of the statement, and the
// envelope cases.
func TestTPMCases(t *testing.T) {
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cases, err := sim.WebAuthnCases("tpm/", rpID, origin, challenge, t0)
	if err != nil {
		t.Fatal(err)
	}
	verifier := webauthn.NewVerifier()
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			seen[c.Code] = true
			v := check(t, c, verifier)
			if v != nil && (v.Format != "tpm" || v.Trust != attest.TrustHardware || v.Root != "keybind test TPM AIK Root CA" || v.PublicKey == nil) {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
	if len(cases) < 80 {
		t.Errorf("only %d cases", len(cases))
	}
	for _, code := range []attest.Code{
		webauthn.CodeTPMStatement, webauthn.CodeTPMVersion, webauthn.CodeTPMAlgorithm, webauthn.CodeTPMKeyMismatch,
		webauthn.CodeTPMExtraData, webauthn.CodeTPMAIKSubject, webauthn.CodeTPMAAGUID, webauthn.CodeTPMAAGUIDFormat,
		"tpm.name_mismatch", "tpm.bad_magic", "tpm.bad_signature", "tpm.attestation_type", "tpm.not_fixed_tpm",
		"tpm.aik_version", "tpm.aik_eku", "tpm.aik_san", "tpm.aik_basic_constraints", "chain.expired", "chain.untrusted_root",
		webauthn.CodeClientDataType, webauthn.CodeChallenge, webauthn.CodeOrigin, webauthn.CodeCrossOrigin, webauthn.CodeTokenBinding,
		webauthn.CodeClientData, webauthn.CodeRPID, webauthn.CodeUserPresent, webauthn.CodeUserVerified, webauthn.CodeFlagAT,
		webauthn.CodeFlagED, webauthn.CodeFlagBS, webauthn.CodeExtensions, webauthn.CodeAuthDataShort, webauthn.CodeAuthDataTrail,
		webauthn.CodeCredentialID, webauthn.CodeCOSEKey, webauthn.CodeCOSEAlgorithm, webauthn.CodeCOSEMismatch,
		webauthn.CodeCOSEKeyInvalid, webauthn.CodeObject, webauthn.CodeFormat,
	} {
		if !seen[string(code)] {
			t.Errorf("no case refused with %s", code)
		}
	}
}

// TestVerifyConcurrent verifies registrations from many goroutines sharing
// one Options and its certificate cache, as a server does.
func TestVerifyConcurrent(t *testing.T) {
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	cases, err := sim.WebAuthnCases("tpm/", rpID, origin, challenge, t0)
	sim.Close()
	if err != nil {
		t.Fatal(err)
	}
	var accept, reject forge.WebAuthnCase
	for _, c := range cases {
		switch c.Name {
		case "tpm/accept/es256":
			accept = c
		case "tpm/reject/signed-by-other-aik":
			reject = c
		}
	}
	opts := options(t, accept)
	verifier := webauthn.NewVerifierWithCache(attest.NewCertCache(0))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c := accept
				if i%2 == 1 {
					c = reject
				}
				_, err := verifier.Verify(c.Object, c.ClientData, opts)
				if attest.CodeOf(err) != attest.Code(c.Code) {
					t.Errorf("%s: %v", c.Name, err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestAndroidKey checks format android-key, verified by the Android
// verifier.
func TestAndroidKey(t *testing.T) {
	ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	cases, err := forge.WebAuthnAndroidCases(ca, "android/", rpID, origin, challenge)
	if err != nil {
		t.Fatal(err)
	}
	verifier := webauthn.NewVerifier()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			v := check(t, c, verifier)
			if v != nil && (v.Format != "android-key" || v.Root == "" || v.PublicKey == nil) {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
}

// TestAppAttest checks format apple-appattest, verified by the App Attest
// verifier.
func TestAppAttest(t *testing.T) {
	ca, err := forge.NewAppAttestCA(t0)
	if err != nil {
		t.Fatal(err)
	}
	const appID = "TEAMID1234.test.keybind.app"
	cases, err := forge.WebAuthnAppAttestCases(ca, "appattest/", appID, origin, challenge)
	if err != nil {
		t.Fatal(err)
	}
	verifier := webauthn.NewVerifier()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			v, err := verifier.Verify(c.Object, c.ClientData, options(t, c))
			if attest.CodeOf(err) != attest.Code(c.Code) {
				t.Fatalf("want %q, got %v", c.Code, err)
			}
			if err != nil {
				return
			}
			if v.Format != "apple-appattest" || v.Trust != attest.TrustHardware || v.Root == "" || v.PublicKey == nil {
				t.Fatalf("verdict %+v", v)
			}
			for k, want := range c.Facts {
				got, _ := json.Marshal(v.Facts[k])
				w, _ := json.Marshal(want)
				if !bytes.Equal(got, w) {
					t.Errorf("fact %s = %s, want %s", k, got, w)
				}
			}
		})
	}
}

// TestNone checks format none under both policies.
func TestNone(t *testing.T) {
	base, err := forge.WebAuthnNone(rpID, origin, challenge)
	if err != nil {
		t.Fatal(err)
	}
	obj, cd, err := base.Build()
	if err != nil {
		t.Fatal(err)
	}
	v := check(t, forge.WebAuthnCase{Object: obj, ClientData: cd, AllowSoftwareKeys: true,
		Facts: map[string]any{"format": "none", "public_key_algorithm": "ecdsa-p256", "counter": 0, "user_verified": true}}, nil)
	if v.Format != "none" || v.Trust != attest.TrustNone || v.Root != "" {
		t.Fatalf("verdict %+v", v)
	}
	if !bytes.Equal(v.Facts["credential_id"].([]byte), base.CredentialID) {
		t.Error("credential id")
	}
	check(t, forge.WebAuthnCase{Object: obj, ClientData: cd, Code: "policy.software_key"}, nil)
	stmt := base
	stmt.Statement = func(a, c []byte) (any, error) { return map[string]any{"sig": []byte{1}}, nil }
	obj, cd, _ = stmt.Build()
	check(t, forge.WebAuthnCase{Object: obj, ClientData: cd, AllowSoftwareKeys: true, Code: "webauthn.none_statement"}, nil)

	// The envelope checks do not depend on the format.
	cases, err := forge.WebAuthnEnvelopeCases(base, "none/", true, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { check(t, c, nil) })
	}
}

func TestOptions(t *testing.T) {
	base, _ := forge.WebAuthnNone(rpID, origin, challenge)
	obj, cd, _ := base.Build()
	for _, c := range []struct {
		opts *webauthn.Options
		code attest.Code
	}{
		{nil, webauthn.CodeInputChallenge},
		{&webauthn.Options{}, webauthn.CodeInputChallenge},
		{&webauthn.Options{Challenge: challenge}, webauthn.CodeInputOrigin},
		{&webauthn.Options{Challenge: challenge, Origins: []string{origin}}, webauthn.CodeInputRPID},
		{&webauthn.Options{Challenge: challenge, Origins: []string{origin}, RPID: rpID}, webauthn.CodeSoftwareKey},
	} {
		if _, err := webauthn.Verify(obj, cd, c.opts); attest.CodeOf(err) != c.code {
			t.Errorf("%+v: want %s, got %v", c.opts, c.code, err)
		}
	}
}

// TestMicrosoftRootPin checks the built-in root against the pins of
// ../shared/roots/README.md.
func TestMicrosoftRootPin(t *testing.T) {
	r, err := webauthn.MicrosoftTPMRoot()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(r.Raw)
	if hex.EncodeToString(sum[:]) != "870c7a35ceab3d59979f2c6a524042d404cb71518004350925fb2ced79a999da" {
		t.Errorf("certificate SHA-256 %x", sum)
	}
	sum = sha256.Sum256(r.RawSubjectPublicKeyInfo)
	if hex.EncodeToString(sum[:]) != "5eadfa0187a24edb747b98523f89cf92d33eeb20ec81b9d0a31e170b73c2dbb2" {
		t.Errorf("SPKI SHA-256 %x", sum)
	}
	if r.Subject.CommonName != "Microsoft TPM Root Certificate Authority 2014" || !r.IsCA {
		t.Errorf("subject %v", r.Subject)
	}
	if err := r.CheckSignatureFrom(r); err != nil {
		t.Errorf("self-signature: %v", err)
	}
}

// TestCOSEKeys accepts a key of every algorithm keybind takes.
func TestCOSEKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		key  any
		alg  int64
		name string
	}{
		{&p384.PublicKey, webauthn.AlgES384, "ecdsa-p384"},
		{&p521.PublicKey, webauthn.AlgES512, "ecdsa-p521"},
		{ed, webauthn.AlgEdDSA, "ed25519"},
		{&rk.PublicKey, webauthn.AlgRS256, "rsa-2048"},
		{&rk.PublicKey, webauthn.AlgPS256, "rsa-2048"},
	} {
		b, err := forge.COSEKey(c.key, c.alg)
		if err != nil {
			t.Fatal(err)
		}
		k, err := webauthn.ParseCOSEKey(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if k.Algorithm() != c.name || k.Alg != c.alg {
			t.Errorf("%s: %s %d", c.name, k.Algorithm(), k.Alg)
		}
		other := map[int64]int64{webauthn.AlgES384: webauthn.AlgES256, webauthn.AlgES512: webauthn.AlgES384,
			webauthn.AlgEdDSA: webauthn.AlgES256, webauthn.AlgRS256: webauthn.AlgES256, webauthn.AlgPS256: webauthn.AlgEdDSA}[c.alg]
		b, _ = forge.COSEKey(c.key, other)
		if _, err := webauthn.ParseCOSEKey(b); attest.CodeOf(err) != webauthn.CodeCOSEMismatch {
			t.Errorf("%s as %d: %v", c.name, other, err)
		}
	}
}
