package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
)

// The engine's tests run the real rules against a real Pebble store, with
// attestations made by testvectors/forge and verified by the real
// verifiers (attest/androidkey, attest/appattest) under roots the test
// tenant opts into, and answers signed by the attested keys.

var ctx = context.Background()

// t0 is the tests' start time.
var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a Clock the test moves.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []clockTimer
}

type clockTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, clockTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

const (
	testAppID   = "TEAMID1234.com.keybind.test"
	rootAndroid = "forge-android"
	rootApple   = "forge-apple"
)

// testEnv is an engine over a fresh store, with forge CAs its tenants can
// trust.
type testEnv struct {
	t       testing.TB
	e       *Engine
	st      *store.Store
	clock   *fakeClock
	android *forge.AndroidCA
	apple   *forge.AppAttestCA
}

// testCAs are made once: building them costs key generation.
var testCAs = sync.OnceValues(func() (*forge.AndroidCA, *forge.AppAttestCA) {
	a, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: t0})
	if err != nil {
		panic(err)
	}
	b, err := forge.NewAppAttestCA(t0)
	if err != nil {
		panic(err)
	}
	return a, b
})

func newEnv(t testing.TB, edit ...func(*Config)) *testEnv {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	android, apple := testCAs()
	env := &testEnv{t: t, st: st, clock: &fakeClock{now: t0}, android: android, apple: apple}
	cfg := Config{
		Store:     st,
		Clock:     env.clock,
		Verifiers: Verifiers(nil),
		Roots: map[string][]*x509.Certificate{
			rootAndroid: {android.Root.Cert},
			rootApple:   {apple.Root},
		},
	}
	for _, f := range edit {
		f(&cfg)
	}
	env.e, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// testPolicy is phone sign-in on for everyone, Android and App Attest from
// the forge roots.
func testPolicy() Policy {
	return Policy{
		Enabled: true,
		Target:  Target{AllUsers: true},
		Attestation: AttestationPolicy{
			Android:   &AndroidPolicy{Packages: []string{forge.AndroidDefaultPackage}, ExtraRoots: []string{rootAndroid}},
			AppAttest: &AppAttestPolicy{AppIDs: []string{testAppID}, ExtraRoots: []string{rootApple}},
		},
	}
}

func (env *testEnv) tenant(id string, p Policy) {
	env.t.Helper()
	if _, err := env.e.CreateTenant(ctx, Tenant{ID: id, Name: id, Policy: p}); err != nil {
		env.t.Fatal(err)
	}
}

func (env *testEnv) user(tenant, id, upn string, groups ...string) {
	env.t.Helper()
	if _, err := env.e.CreateUser(ctx, tenant, User{ID: id, UPN: upn, Groups: groups, MFAPush: true}); err != nil {
		env.t.Fatal(err)
	}
}

// phone is an enrolled phone (or PC): its credential and the key that
// signs.
type phone struct {
	cred    *Credential
	key     crypto.Signer
	apple   *ecdsa.PrivateKey // App Attest key (key is nil then)
	counter uint32
	// webauthn, when set, answers with WebAuthn assertions made with key.
	webauthn *webauthnAuthenticator
}

// webauthnAuthenticator is how a WebAuthn credential's authenticator makes
// assertions: its COSE algorithm, RP ID, origin and flags.
type webauthnAuthenticator struct {
	alg          int64
	rpID, origin string
	flags        byte // zero: user present and verified
	noCounter    bool // an authenticator that keeps no counter (sends 0)
}

// androidEvidence attests a new key over challenge.
func (env *testEnv) androidEvidence(challenge []byte, k forge.AndroidKey) (Evidence, crypto.Signer) {
	env.t.Helper()
	ev, key, err := makeAndroidEvidence(env.android, challenge, k)
	if err != nil {
		env.t.Fatal(err)
	}
	return ev, key
}

func makeAndroidEvidence(ca *forge.AndroidCA, challenge []byte, k forge.AndroidKey) (Evidence, crypto.Signer, error) {
	k.Challenge = challenge
	att, err := ca.Attest(k)
	if err != nil {
		return nil, nil, err
	}
	return Evidence{"chain": JoinDER(att.Chain)}, att.Key, nil
}

func (env *testEnv) appleEvidence(challenge []byte, key *ecdsa.PrivateKey) Evidence {
	env.t.Helper()
	ev, err := makeAppleEvidence(env.apple, challenge, key)
	if err != nil {
		env.t.Fatal(err)
	}
	return ev
}

// makeAppleEvidence attests key as an App Attest app does: the client data
// hash is SHA-256 of the challenge.
func makeAppleEvidence(ca *forge.AppAttestCA, challenge []byte, key *ecdsa.PrivateKey) (Evidence, error) {
	h := sha256.Sum256(challenge)
	att, err := ca.Attest(key, forge.AppAttestOptions{AppID: testAppID, ClientDataHash: h[:]})
	if err != nil {
		return nil, err
	}
	return Evidence{"attestation": att.Object, "key_id": att.KeyID}, nil
}

// enrollAndroid enrolls a new Android key (user authentication required,
// as the default policy demands) for user, on device ("" for a new one).
func (env *testEnv) enrollAndroid(tenant, user, device string) (*phone, error) {
	env.t.Helper()
	enr, err := env.e.StartEnrollment(ctx, tenant, user)
	if err != nil {
		return nil, err
	}
	ev, key := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev, Device: device})
	if err != nil {
		return nil, err
	}
	return &phone{cred: cred, key: key}, nil
}

func (env *testEnv) enrollApple(tenant, user, device string) (*phone, error) {
	env.t.Helper()
	enr, err := env.e.StartEnrollment(ctx, tenant, user)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		env.t.Fatal(err)
	}
	cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: env.appleEvidence(enr.Challenge, key), Device: device})
	if err != nil {
		return nil, err
	}
	return &phone{cred: cred, apple: key}, nil
}

func (env *testEnv) mustEnroll(tenant, user string) *phone {
	env.t.Helper()
	p, err := env.enrollAndroid(tenant, user, "")
	if err != nil {
		env.t.Fatal(err)
	}
	return p
}

// sign signs an answer to attempt p as the phone does.
func (ph *phone) sign(t testing.TB, p *PendingSignIn, decision string, number int) []byte {
	t.Helper()
	sig, err := ph.signAnswer(p, decision, number)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// signAnswer signs with the credential key, or makes an App Attest
// assertion with the next counter.
func (ph *phone) signAnswer(p *PendingSignIn, decision string, number int) ([]byte, error) {
	msg := AnswerMessage(AnswerFields{Attempt: p.Attempt, Tenant: p.Tenant, User: p.User, Credential: ph.cred.ID, Nonce: p.Nonce, Decision: decision, Number: number})
	if ph.apple != nil {
		ph.counter++
		a, err := forge.AppAssert(ph.apple, forge.AppAssertOptions{AppID: testAppID, ClientData: msg, Counter: ph.counter})
		if err != nil {
			return nil, err
		}
		return a.Marshal(), nil
	}
	return SignAnswer(ph.key, msg)
}

// answerFor makes the phone's answer to attempt p: a signature, an App
// Attest assertion, or a WebAuthn assertion.
func (ph *phone) answerFor(t testing.TB, p *PendingSignIn, decision string, number int) Answer {
	t.Helper()
	a := Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: decision, Number: number}
	if w := ph.webauthn; w != nil {
		msg := AnswerMessage(AnswerFields{Attempt: p.Attempt, Tenant: p.Tenant, User: p.User, Credential: ph.cred.ID, Nonce: p.Nonce, Decision: decision, Number: number})
		if !w.noCounter {
			ph.counter++
		}
		as, err := forge.WebAuthnAssert(ph.key, forge.WebAuthnAssertOptions{RPID: w.rpID, Origin: w.origin, Challenge: AnswerChallenge(msg), Alg: w.alg, Flags: w.flags, Counter: ph.counter})
		if err != nil {
			t.Fatal(err)
		}
		a.AuthenticatorData, a.ClientDataJSON, a.Signature = as.AuthenticatorData, as.ClientDataJSON, as.Signature
		return a
	}
	a.Signature = ph.sign(t, p, decision, number)
	return a
}

// answer fetches the phone's pending attempt and answers it.
func (env *testEnv) answer(ph *phone, decision string, number int) (*Outcome, error) {
	env.t.Helper()
	p, err := env.e.PendingSignIn(ctx, ph.cred.ID)
	if err != nil {
		return nil, err
	}
	return env.e.AnswerSignIn(ctx, ph.answerFor(env.t, p, decision, number))
}

func (env *testEnv) start(tenant, upn string) *SignInStart {
	env.t.Helper()
	s, err := env.e.StartSignIn(ctx, SignInRequest{Tenant: tenant, Username: upn, Context: SignInContext{App: "Mail", IP: "192.0.2.7", Location: "Lyon"}})
	if err != nil {
		env.t.Fatal(err)
	}
	return s
}

// wantCode fails unless err carries code.
func wantCode(t testing.TB, err error, code Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if CodeOf(err) != code {
		t.Fatalf("error %v (code %q), want %s", err, CodeOf(err), code)
	}
	if !errors.Is(err, code.Err()) {
		t.Fatalf("errors.Is(%v, %s) is false", err, code)
	}
}

// auditEvents returns the events (event or event:code) of a tenant's log.
func (env *testEnv) auditEvents(tenant, user string) []string {
	env.t.Helper()
	page, err := env.e.Audit(ctx, AuditQuery{Tenant: tenant, User: user})
	if err != nil {
		env.t.Fatal(err)
	}
	var out []string
	for _, r := range page.Records {
		s := r.Event
		if r.Code != "" {
			s += ":" + r.Code
		}
		out = append(out, s)
	}
	return out
}
