package engine

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

// The WebAuthn tests enroll registrations made by testvectors/forge (and,
// for format tpm, by the simulated TPM) through the real verifiers, and
// answer sign-ins with assertions signed by the credentials' private keys.

const (
	waRPID   = "login.keybind.test"
	waOrigin = "https://login.keybind.test"
	rootAIK  = "forge-tpm-aik"
)

// waEnv is an engine whose tenant "web" accepts WebAuthn registrations of
// every statement format from the forge roots, and a simulated TPM for
// format tpm.
type waEnv struct {
	*testEnv
	sim *tpmsim.TPM
	w   *tpmsim.WebAuthnTPM
}

func newWebAuthnEnv(t *testing.T) *waEnv {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	aikCA, err := forge.NewTPMCA("Test AIK", t0.AddDate(-2, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.NewWebAuthnTPM(aikCA, tpmsim.AKTemplate(), forge.AIKProfile{Device: forge.SimulatorDevice, NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(5, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, func(c *Config) { c.Roots[rootAIK] = []*x509.Certificate{aikCA.Root} })
	env.tenant("web", webAuthnTestPolicy(nil))
	env.user("web", "u1", "alice@web.example")
	return &waEnv{testEnv: env, sim: sim, w: w}
}

// webAuthnTestPolicy is phone sign-in with WebAuthn only, every statement
// format from the forge roots; edit changes the WebAuthn section.
func webAuthnTestPolicy(edit func(*WebAuthnPolicy)) Policy {
	w := &WebAuthnPolicy{
		RPID: waRPID, Origins: []string{waOrigin, "https://other.keybind.test"},
		Android:       &AndroidPolicy{Packages: []string{forge.AndroidDefaultPackage}, ExtraRoots: []string{rootAndroid}},
		TPMExtraRoots: []string{rootAIK},
	}
	if edit != nil {
		edit(w)
	}
	return Policy{Enabled: true, Target: Target{AllUsers: true}, Backoff: Backoff{Free: 100}, Attestation: AttestationPolicy{WebAuthn: w}}
}

func (env *waEnv) policy(edit func(*WebAuthnPolicy)) {
	env.t.Helper()
	if _, err := env.e.UpdateTenant(ctx, Tenant{ID: "web", Policy: webAuthnTestPolicy(edit)}); err != nil {
		env.t.Fatal(err)
	}
}

// registration is a WebAuthn registration made for a challenge, the key
// that signs the credential's assertions, and how.
type registration struct {
	evidence  Evidence
	key       crypto.Signer
	alg       int64
	apple     *ecdsa.PrivateKey
	statement string
}

func build(t testing.TB, r forge.WebAuthnRegistration) Evidence {
	t.Helper()
	obj, cd, err := r.Build()
	if err != nil {
		t.Fatal(err)
	}
	return Evidence{"attestation_object": obj, "client_data_json": cd}
}

func credentialID() []byte {
	id := make([]byte, 32)
	rand.Read(id)
	return id
}

// tpmRegistration is a Windows Hello-style registration: a credential key
// created in the simulated TPM, certified by its AIK.
func (env *waEnv) tpmRegistration(challenge []byte, edit func(*forge.WebAuthnRegistration)) registration {
	env.t.Helper()
	cred, err := env.sim.CreateKey(tpmsim.KeyTemplate())
	if err != nil {
		env.t.Fatal(err)
	}
	r, err := env.w.Registration(cred, waRPID, waOrigin, challenge, tpmsim.StatementOptions{})
	if err != nil {
		env.t.Fatal(err)
	}
	if edit != nil {
		edit(&r)
	}
	key, err := env.sim.Signer(cred)
	if err != nil {
		env.t.Fatal(err)
	}
	return registration{evidence: build(env.t, r), key: key, alg: webauthn.AlgES256, statement: "tpm"}
}

// androidRegistration is a registration of format android-key: the
// attested key is the credential key, its challenge the client data hash.
func (env *waEnv) androidRegistration(challenge []byte, k forge.AndroidKey, alg int64) registration {
	env.t.Helper()
	r := forge.WebAuthnRegistration{RPID: waRPID, Origin: waOrigin, Challenge: challenge, Flags: forge.WebAuthnFlags, Format: "android-key", CredentialID: credentialID()}
	cdh := sha256.Sum256(r.ClientData())
	k.Challenge = cdh[:]
	a, err := env.android.Attest(k)
	if err != nil {
		env.t.Fatal(err)
	}
	if r.CredentialKey, err = forge.COSEKey(a.Leaf.PublicKey, alg); err != nil {
		env.t.Fatal(err)
	}
	r.Statement = func(authData, clientDataHash []byte) (any, error) {
		sig, err := forge.WebAuthnSign(a.Key, alg, append(slices.Clone(authData), clientDataHash...))
		return map[string]any{"alg": alg, "sig": sig, "x5c": a.Chain}, err
	}
	return registration{evidence: build(env.t, r), key: a.Key, alg: alg, statement: "android-key"}
}

// appleRegistration is an App Attest object over the hash of a WebAuthn
// clientDataJSON, the App ID as the RP ID.
func (env *waEnv) appleRegistration(challenge []byte) registration {
	env.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cd := (&forge.WebAuthnRegistration{Origin: waOrigin, Challenge: challenge}).ClientData()
	h := sha256.Sum256(cd)
	a, err := env.apple.Attest(key, forge.AppAttestOptions{AppID: testAppID, ClientDataHash: h[:]})
	if err != nil {
		env.t.Fatal(err)
	}
	return registration{evidence: Evidence{"attestation_object": a.Object, "client_data_json": cd}, apple: key, statement: "apple-appattest"}
}

// noneRegistration is a registration of format none with a software key.
func noneRegistration(t testing.TB, challenge []byte, key crypto.Signer, alg int64) registration {
	cose, err := forge.COSEKey(key.Public(), alg)
	if err != nil {
		t.Fatal(err)
	}
	r := forge.WebAuthnRegistration{RPID: waRPID, Origin: waOrigin, Challenge: challenge, Flags: forge.WebAuthnFlags, Format: "none", CredentialID: credentialID(), CredentialKey: cose}
	return registration{evidence: build(t, r), key: key, alg: alg, statement: "none"}
}

func (env *waEnv) enroll(make func(challenge []byte) registration) (*phone, error) {
	env.t.Helper()
	enr, err := env.e.StartEnrollment(ctx, "web", "u1")
	if err != nil {
		env.t.Fatal(err)
	}
	r := make(enr.Challenge)
	cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatWebAuthn, Evidence: r.evidence})
	if err != nil {
		return nil, err
	}
	ph := &phone{cred: cred, key: r.key, apple: r.apple}
	if r.apple == nil {
		ph.webauthn = &webauthnAuthenticator{alg: r.alg, rpID: waRPID, origin: waOrigin}
	}
	return ph, nil
}

// signIn starts a sign-in for u1 and approves it from ph.
func (env *waEnv) signIn(ph *phone) (*Outcome, error) {
	env.t.Helper()
	s := env.start("web", "alice@web.example")
	return env.answer(ph, DecisionApprove, s.Number)
}

// TestWebAuthnFormats enrolls a registration of each statement format
// keybind verifies, checks the credential, re-verifies its evidence, and
// approves sign-ins with assertions by the credential key.
func TestWebAuthnFormats(t *testing.T) {
	env := newWebAuthnEnv(t)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		name      string
		make      func([]byte) registration
		edit      func(*WebAuthnPolicy)
		trust     string
		root      string
		platform  string
		statement string
		alg       int64
	}{
		{"tpm", func(ch []byte) registration { return env.tpmRegistration(ch, nil) }, nil,
			"hardware", "Test AIK Root CA", PlatformWindows, "tpm", webauthn.AlgES256},
		{"android-key ES256", func(ch []byte) registration {
			return env.androidRegistration(ch, forge.AndroidKey{UserAuth: true}, webauthn.AlgES256)
		}, nil, "hardware", "", PlatformAndroid, "android-key", webauthn.AlgES256},
		{"android-key RS256", func(ch []byte) registration {
			return env.androidRegistration(ch, forge.AndroidKey{UserAuth: true, Algorithm: "rsa-2048"}, webauthn.AlgRS256)
		}, nil, "hardware", "", PlatformAndroid, "android-key", webauthn.AlgRS256},
		{"apple-appattest", func(ch []byte) registration { return env.appleRegistration(ch) }, func(w *WebAuthnPolicy) {
			no := false
			w.RequireUserVerification = &no
			w.AppAttest = &AppAttestPolicy{AppIDs: []string{testAppID}, ExtraRoots: []string{rootApple}}
		}, "hardware", "", PlatformIOS, "apple-appattest", webauthn.AlgES256},
		{"none EdDSA", func(ch []byte) registration { return noneRegistration(t, ch, ed, webauthn.AlgEdDSA) },
			func(w *WebAuthnPolicy) { w.AllowSoftwareKeys = true }, "none", "", PlatformUnknown, "none", webauthn.AlgEdDSA},
		{"none PS256", func(ch []byte) registration { return noneRegistration(t, ch, rsaKey, webauthn.AlgPS256) },
			func(w *WebAuthnPolicy) { w.AllowSoftwareKeys = true }, "none", "", PlatformUnknown, "none", webauthn.AlgPS256},
	} {
		t.Run(c.name, func(t *testing.T) {
			env.t = t
			env.policy(c.edit)
			ph, err := env.enroll(c.make)
			if err != nil {
				t.Fatal(err)
			}
			cred := ph.cred
			if cred.Format != FormatWebAuthn || cred.Statement != c.statement || cred.Trust != c.trust || cred.COSEAlgorithm != c.alg || len(cred.WebAuthnID) == 0 {
				t.Fatalf("credential %+v", cred)
			}
			if (c.root != "" && cred.Root != c.root) || (c.trust == "hardware" && cred.Root == "") || (c.trust == "none" && cred.Root != "") {
				t.Errorf("root %q", cred.Root)
			}
			var facts map[string]any
			json.Unmarshal(cred.Facts, &facts)
			if facts["format"] != c.statement || facts["origin"] != waOrigin {
				t.Errorf("facts %s", cred.Facts)
			}
			dev, err := env.e.GetDevice(ctx, "web", cred.Device)
			if err != nil || dev.Platform != c.platform {
				t.Fatalf("device %+v %v", dev, err)
			}
			if v, err := env.e.ReverifyCredential(ctx, "web", cred.ID); err != nil || v.Format != c.statement {
				t.Errorf("ReverifyCredential: %+v %v", v, err)
			}
			for range 2 {
				out, err := env.signIn(ph)
				if err != nil || out.State != StateApproved {
					t.Fatalf("sign-in: %+v %v", out, err)
				}
			}
			got, _ := env.e.GetCredential(ctx, "web", cred.ID)
			if got.Counter != ph.counter {
				t.Errorf("stored counter %d, the authenticator's %d", got.Counter, ph.counter)
			}
			env.e.DeleteCredential(ctx, "web", cred.ID)
		})
	}
}

// TestWebAuthnRegistrationRefusals: one refusal per code the engine adds or
// passes through for a registration.
func TestWebAuthnRegistrationRefusals(t *testing.T) {
	env := newWebAuthnEnv(t)
	try := func(make func(challenge []byte) registration) error {
		_, err := env.enroll(make)
		return err
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other := []byte("another enrollment's challenge..")

	// Format none: refused unless the tenant allows software keys.
	wantCode(t, try(func(ch []byte) registration { return noneRegistration(t, ch, p256, webauthn.AlgES256) }), Code(webauthn.CodeSoftwareKey))
	// A software Android keystore: the Android policy refuses it, and
	// when that policy allows it, the tenant must allow software keys.
	wantCode(t, try(func(ch []byte) registration {
		return env.androidRegistration(ch, forge.AndroidKey{UserAuth: true, Level: "software"}, webauthn.AlgES256)
	}), Code(androidkey.CodeSecurityLevel))
	env.policy(func(w *WebAuthnPolicy) { w.Android.MinSecurityLevel = "software" })
	wantCode(t, try(func(ch []byte) registration {
		return env.androidRegistration(ch, forge.AndroidKey{UserAuth: true, Level: "software"}, webauthn.AlgES256)
	}), CodeEnrollUntrusted)
	env.policy(func(w *WebAuthnPolicy) { w.Android.MinSecurityLevel = "software"; w.AllowSoftwareKeys = true })
	if ph, err := env.enroll(func(ch []byte) registration {
		return env.androidRegistration(ch, forge.AndroidKey{UserAuth: true, Level: "software"}, webauthn.AlgES256)
	}); err != nil || ph.cred.Trust != "none" {
		t.Fatalf("software android-key under a policy that allows it: %v", err)
	} else {
		env.e.DeleteCredential(ctx, "web", ph.cred.ID)
	}
	env.policy(nil)
	// The registration answers another challenge.
	wantCode(t, try(func([]byte) registration { return env.tpmRegistration(other, nil) }), Code(webauthn.CodeChallenge))
	// Another origin, another RP ID.
	wantCode(t, try(func(ch []byte) registration {
		return env.tpmRegistration(ch, func(r *forge.WebAuthnRegistration) { r.Origin = "https://evil.example" })
	}), Code(webauthn.CodeOrigin))
	wantCode(t, try(func(ch []byte) registration {
		return env.tpmRegistration(ch, func(r *forge.WebAuthnRegistration) { r.RPID = "evil.example" })
	}), Code(webauthn.CodeRPID))
	// User verification required (the default) and not done.
	wantCode(t, try(func(ch []byte) registration {
		return env.tpmRegistration(ch, func(r *forge.WebAuthnRegistration) { r.Flags &^= 0x04 })
	}), Code(webauthn.CodeUserVerified))
	// The AIK's root is not one the policy names.
	env.policy(func(w *WebAuthnPolicy) { w.TPMExtraRoots = nil })
	wantCode(t, try(func(ch []byte) registration { return env.tpmRegistration(ch, nil) }), Code(androidkey.CodeUntrustedRoot))
	env.policy(nil)
	// apple-appattest: refused without an apple_appattest section, and
	// while user verification is required.
	wantCode(t, try(func(ch []byte) registration { return env.appleRegistration(ch) }), CodeEnrollFormat)
	env.policy(func(w *WebAuthnPolicy) {
		w.AppAttest = &AppAttestPolicy{AppIDs: []string{testAppID}, ExtraRoots: []string{rootApple}}
	})
	wantCode(t, try(func(ch []byte) registration { return env.appleRegistration(ch) }), Code(webauthn.CodeUserVerified))
	env.policy(func(w *WebAuthnPolicy) {
		no := false
		w.RequireUserVerification = &no
		w.AppAttest = &AppAttestPolicy{AppIDs: []string{"TEAMID9999.com.other.app"}, ExtraRoots: []string{rootApple}}
	})
	wantCode(t, try(func(ch []byte) registration { return env.appleRegistration(ch) }), Code(appattest.CodeAppIDMismatch))
	env.policy(nil)
	// Evidence parts.
	wantCode(t, try(func(ch []byte) registration {
		r := env.tpmRegistration(ch, nil)
		delete(r.evidence, "client_data_json")
		return r
	}), Code(CodeEvidence))
	wantCode(t, try(func(ch []byte) registration {
		r := env.tpmRegistration(ch, nil)
		r.evidence["chain"] = []byte{1}
		return r
	}), Code(CodeEvidence))
	// A tenant without a webauthn section.
	p := testPolicy()
	env.e.UpdateTenant(ctx, Tenant{ID: "web", Policy: p})
	wantCode(t, try(func(ch []byte) registration { return env.tpmRegistration(ch, nil) }), CodeEnrollFormat)
	env.policy(nil)
	// The same credential key twice.
	env.policy(func(w *WebAuthnPolicy) { w.AllowSoftwareKeys = true })
	if _, err := env.enroll(func(ch []byte) registration { return noneRegistration(t, ch, p256, webauthn.AlgES256) }); err != nil {
		t.Fatal(err)
	}
	wantCode(t, try(func(ch []byte) registration { return noneRegistration(t, ch, p256, webauthn.AlgES256) }), CodeEnrollKeyRegistered)

	creds, _ := env.e.ListCredentials(ctx, "web", "u1")
	if len(creds) != 1 {
		t.Fatalf("%d credentials after the refusals, want 1", len(creds))
	}
}

// TestWebAuthnAnswerRefusals: one refusal per code of a WebAuthn
// credential's answer.
func TestWebAuthnAnswerRefusals(t *testing.T) {
	env := newWebAuthnEnv(t)
	ph, err := env.enroll(func(ch []byte) registration { return env.tpmRegistration(ch, nil) })
	if err != nil {
		t.Fatal(err)
	}
	w := ph.webauthn
	// answer answers the pending attempt with an assertion changed by edit.
	answer := func(decision string, edit func(o *forge.WebAuthnAssertOptions, a *Answer)) error {
		t.Helper()
		s := env.start("web", "alice@web.example")
		p, err := env.e.PendingSignIn(ctx, ph.cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		number := 0
		if decision == DecisionApprove {
			number = s.Number
		}
		a := Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: decision, Number: number}
		msg := AnswerMessage(AnswerFields{Attempt: p.Attempt, Tenant: p.Tenant, User: p.User, Credential: ph.cred.ID, Nonce: p.Nonce, Decision: decision, Number: number})
		ph.counter++
		o := forge.WebAuthnAssertOptions{RPID: w.rpID, Origin: w.origin, Challenge: AnswerChallenge(msg), Alg: w.alg, Counter: ph.counter}
		if edit != nil {
			edit(&o, &a)
		}
		as, err := forge.WebAuthnAssert(ph.key, o)
		if err != nil {
			t.Fatal(err)
		}
		a.AuthenticatorData, a.ClientDataJSON, a.Signature = as.AuthenticatorData, as.ClientDataJSON, as.Signature
		if a.Attempt == "raw" {
			a.Attempt, a.AuthenticatorData, a.ClientDataJSON = p.Attempt, nil, nil
			a.Signature, _ = SignAnswer(ph.key, msg)
		}
		_, err = env.e.AnswerSignIn(ctx, a)
		return err
	}
	for _, c := range []struct {
		name string
		code Code
		edit func(o *forge.WebAuthnAssertOptions, a *Answer)
	}{
		{"a raw signature", CodeInvalid, func(o *forge.WebAuthnAssertOptions, a *Answer) { a.Attempt = "raw" }},
		{"another origin", Code(webauthn.CodeOrigin), func(o *forge.WebAuthnAssertOptions, a *Answer) { o.Origin = "https://evil.example" }},
		{"another RP ID", Code(webauthn.CodeRPID), func(o *forge.WebAuthnAssertOptions, a *Answer) { o.RPID = "evil.example" }},
		{"no user verification", Code(webauthn.CodeUserVerified), func(o *forge.WebAuthnAssertOptions, a *Answer) { o.Flags = webauthn.FlagUP }},
		{"the assertion of a deny sent as an approve", Code(webauthn.CodeAssertionChallenge), func(o *forge.WebAuthnAssertOptions, a *Answer) {
			msg := AnswerMessage(AnswerFields{Attempt: a.Attempt, Tenant: "web", User: "u1", Credential: a.Credential, Decision: DecisionDeny})
			o.Challenge = AnswerChallenge(msg)
		}},
		{"a registration's client data", Code(webauthn.CodeClientDataType), func(o *forge.WebAuthnAssertOptions, a *Answer) { o.Type = "webauthn.create" }},
		{"a counter that did not rise", CodeSignInReplay, func(o *forge.WebAuthnAssertOptions, a *Answer) { o.Counter = 1 }},
		{"signed by another key", Code(webauthn.CodeAssertionSignature), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "signed by another key" {
				key := ph.key
				ph.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				defer func() { ph.key = key }()
			}
			if c.code == CodeSignInReplay {
				// One good answer first, so that the stored counter is above 1.
				if out, err := env.signIn(ph); err != nil || out.State != StateApproved {
					t.Fatalf("%+v %v", out, err)
				}
			}
			wantCode(t, answer(DecisionApprove, c.edit), c.code)
		})
	}
	// An authenticator without a counter (always 0) answers again and again.
	env.t = t
	ph2, err := env.enroll(func(ch []byte) registration { return env.tpmRegistration(ch, nil) })
	if err != nil {
		t.Fatal(err)
	}
	ph2.webauthn.noCounter = true
	for range 3 {
		if out, err := env.signIn(ph2); err != nil || out.State != StateApproved {
			t.Fatalf("counterless authenticator: %+v %v", out, err)
		}
	}
	// ... but once it sent a counter, 0 is a replay.
	ph2.webauthn.noCounter = false
	if out, err := env.signIn(ph2); err != nil || out.State != StateApproved {
		t.Fatalf("%+v %v", out, err)
	}
	ph2.counter = 0
	ph2.webauthn.noCounter = true
	s := env.start("web", "alice@web.example")
	p, _ := env.e.PendingSignIn(ctx, ph2.cred.ID)
	_, err = env.e.AnswerSignIn(ctx, ph2.answerFor(t, p, DecisionApprove, s.Number))
	wantCode(t, err, CodeSignInReplay)

	// A WebAuthn credential's answer without its assertion.
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: p.Attempt, Credential: ph2.cred.ID, Decision: DecisionDeny, Signature: []byte{1}})
	wantCode(t, err, CodeInvalid)

	// The tenant drops its WebAuthn section: the credential can no longer
	// answer.
	pol := webAuthnTestPolicy(nil)
	pol.Attestation.WebAuthn = nil
	pol.Attestation.Android = &AndroidPolicy{ExtraRoots: []string{rootAndroid}}
	env.e.UpdateTenant(ctx, Tenant{ID: "web", Policy: pol})
	s = env.start("web", "alice@web.example")
	p, _ = env.e.PendingSignIn(ctx, ph.cred.ID)
	_, err = env.e.AnswerSignIn(ctx, ph.answerFor(t, p, DecisionApprove, s.Number))
	wantCode(t, err, CodeSignInFormat)
}

// TestAnswerFieldsByFormat: an Android credential's answer carries no
// assertion fields.
func TestAnswerFieldsByFormat(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "u1", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "u1")
	s := env.start("contoso", "alice@contoso.com")
	p, _ := env.e.PendingSignIn(ctx, ph.cred.ID)
	a := ph.answerFor(t, p, DecisionApprove, s.Number)
	a.ClientDataJSON = []byte(`{}`)
	_, err := env.e.AnswerSignIn(ctx, a)
	wantCode(t, err, CodeInvalid)
	a.ClientDataJSON = make([]byte, webauthn.MaxClientData+1)
	_, err = env.e.AnswerSignIn(ctx, a)
	wantCode(t, err, CodeInvalid)
}

// TestAttestationPolicyValidation: the TPM and WebAuthn sections refuse
// values out of range with policy.invalid, and their zero values are the
// safe defaults.
func TestAttestationPolicyValidation(t *testing.T) {
	env := newEnv(t)
	hash := fmt.Sprintf("%064x", 1)
	for name, a := range map[string]AttestationPolicy{
		"ek_trust":                 {TPM: &TPMPolicy{EKTrust: "anything"}},
		"allow-list without trust": {TPM: &TPMPolicy{EKAllowList: []string{hash}}},
		"empty allow-list":         {TPM: &TPMPolicy{EKTrust: EKTrustAllowList}},
		"short hash":               {TPM: &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: []string{"abcd"}}},
		"upper-case hash":          {TPM: &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: []string{fmt.Sprintf("%064X", 0xab)}}},
		"long allow-list":          {TPM: &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: slices.Repeat([]string{hash}, MaxEKAllowList+1)}},
		"tpm root":                 {TPM: &TPMPolicy{ExtraRoots: []string{"no such root"}}},
		"no rp_id":                 {WebAuthn: &WebAuthnPolicy{Origins: []string{waOrigin}}},
		"rp_id with scheme":        {WebAuthn: &WebAuthnPolicy{RPID: "https://x.test", Origins: []string{waOrigin}}},
		"rp_id upper case":         {WebAuthn: &WebAuthnPolicy{RPID: "Login.test", Origins: []string{waOrigin}}},
		"no origin":                {WebAuthn: &WebAuthnPolicy{RPID: waRPID}},
		"http origin":              {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{"http://login.keybind.test"}}},
		"origin with path":         {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin + "/login"}}},
		"origin upper case":        {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{"https://Login.keybind.test"}}},
		"apk origin without hash":  {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{"android:apk-key-hash:"}}},
		"app attest without apps":  {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin}, AppAttest: &AppAttestPolicy{}}},
		"android policy":           {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin}, Android: &AndroidPolicy{MinSecurityLevel: "titanium"}}},
		"webauthn root":            {WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin}, TPMExtraRoots: []string{"no such root"}}},
	} {
		_, err := env.e.CreateTenant(ctx, Tenant{ID: "bad", Policy: Policy{Attestation: a}})
		if CodeOf(err) != CodePolicyInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := AttestationPolicy{
		TPM:      &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: []string{hash}},
		WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin, "http://localhost:8080", "android:apk-key-hash:abc"}},
	}
	if _, err := env.e.CreateTenant(ctx, Tenant{ID: "good", Policy: Policy{Attestation: ok}}); err != nil {
		t.Fatal(err)
	}
	eff := Policy{Attestation: AttestationPolicy{TPM: &TPMPolicy{}, WebAuthn: &WebAuthnPolicy{RPID: waRPID, Origins: []string{waOrigin}}}}.Effective()
	w := eff.Attestation.WebAuthn
	if eff.Attestation.TPM.EKTrust != EKTrustCertificate || w.AllowSoftwareKeys || !w.userVerification() || w.AppAttest != nil ||
		w.Android == nil || !*w.Android.RequireUserAuth || w.Android.MinSecurityLevel != "tee" {
		t.Errorf("defaults %+v %+v", eff.Attestation.TPM, w)
	}
	// The JSON form round-trips.
	b, _ := json.Marshal(ok)
	var back AttestationPolicy
	if err := json.Unmarshal(b, &back); err != nil || !bytes.Contains(b, []byte(`"ek_allow_list"`)) || back.WebAuthn.RPID != waRPID {
		t.Errorf("%s %v", b, err)
	}
}

// TestWebAuthnDeviceRules: WebAuthn credentials follow the rules of every
// format: the install limit, and a device in one tenant holding one
// account.
func TestWebAuthnDeviceRules(t *testing.T) {
	env := newWebAuthnEnv(t)
	soft := func(w *WebAuthnPolicy) { w.AllowSoftwareKeys = true }
	pol := webAuthnTestPolicy(soft)
	pol.MaxInstalls = 1
	env.e.UpdateTenant(ctx, Tenant{ID: "web", Policy: pol})
	ph, err := env.enroll(func(ch []byte) registration { return env.tpmRegistration(ch, nil) })
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.e.StartEnrollment(ctx, "web", "u1")
	wantCode(t, err, CodeEnrollInstallLimit)

	env.tenant("other", webAuthnTestPolicy(soft))
	env.user("other", "u2", "bob@other.example")
	enr, err := env.e.StartEnrollment(ctx, "other", "u2")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r := noneRegistration(t, enr.Challenge, key, webauthn.AlgES256)
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatWebAuthn, Evidence: r.evidence, Device: ph.cred.Device})
	wantCode(t, err, CodeEnrollDeviceTenant)
}
