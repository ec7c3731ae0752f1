package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/verify"
)

// The engine's routes are tested over a real listener: the server with a
// real engine on a real Pebble directory, attestations made by
// testvectors/forge (and the TPM simulator), answers and requests signed
// with the attested keys, driven by net/http through package client.

var bg = context.Background()

const (
	testAppID   = "TEAMID1234.com.keybind.test"
	operatorKey = "operator-key-of-the-tests-0001"
	rootAndroid = "forge-android"
	rootApple   = "forge-apple"
)

// testClock is the engine's clock in these tests: real time until a test
// moves it forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	timers []clockTimer
}

type clockTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	at := time.Now().Add(c.offset + d)
	c.timers = append(c.timers, clockTimer{at: at, ch: ch})
	time.AfterFunc(d, c.fire) // real time also fires it
	return ch
}

func (c *testClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Add(c.offset)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(now) {
			select {
			case t.ch <- now:
			default:
			}
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// Advance moves the clock forward and fires the timers due.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
	c.fire()
}

// forgeCAs are the test attestation CAs, made once.
var forgeCAs = sync.OnceValues(func() (*forge.AndroidCA, *forge.AppAttestCA) {
	now := time.Now()
	a, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: now})
	if err != nil {
		panic(err)
	}
	b, err := forge.NewAppAttestCA(now)
	if err != nil {
		panic(err)
	}
	return a, b
})

// engineEnv is a server with the engine on a Pebble directory that
// survives restarts.
type engineEnv struct {
	t       *testing.T
	dir     string
	clock   *testClock
	srv     Config
	ecfg    EngineConfig
	edit    func(*engine.Config)
	ts      *testServer
	e       *engine.Engine
	st      *store.Store
	keys    *EngineKeys
	op      *client.Client
	anon    *client.Client
	android *forge.AndroidCA
	apple   *forge.AppAttestCA
}

func newEngineEnv(t *testing.T, srv Config, ecfg EngineConfig, edit ...func(*engine.Config)) *engineEnv {
	t.Helper()
	android, apple := forgeCAs()
	env := &engineEnv{t: t, dir: t.TempDir(), clock: &testClock{}, srv: srv, ecfg: ecfg, android: android, apple: apple}
	if len(edit) > 0 {
		env.edit = edit[0]
	}
	env.start()
	return env
}

func (env *engineEnv) start() {
	env.t.Helper()
	var setupErr error
	env.ts = startServer(env.t, env.srv, func(s *Server) {
		st, err := store.Open(env.dir, store.Options{Observe: s.StoreObserver()})
		if err != nil {
			setupErr = err
			return
		}
		s.OnShutdown(st.Close)
		p := verify.New(verify.Options{})
		cfg := engine.Config{
			Store: st, Clock: env.clock, Verifiers: engine.Verifiers(nil), PlainSignatures: PipelineSignatures(p, 0),
			Roots: map[string][]*x509.Certificate{rootAndroid: {env.android.Root.Cert}, rootApple: {env.apple.Root}},
		}
		if env.edit != nil {
			env.edit(&cfg)
		}
		e, err := engine.New(cfg)
		if err != nil {
			setupErr = err
			return
		}
		keys := NewEngineKeys(e, 0)
		op, err := ParseOperatorKey(operatorKey)
		if err != nil {
			setupErr = err
			return
		}
		s.SetAuthenticator(Authenticators{op, keys})
		s.EnableVerify(VerifyConfig{Pipeline: p, Keys: EngineKeyResolver(e)})
		ec := env.ecfg
		ec.Engine, ec.Store, ec.Keys = e, st, keys
		s.EnableEngine(ec)
		env.e, env.st, env.keys = e, st, keys
	})
	if setupErr != nil {
		env.t.Fatal(setupErr)
	}
	// A restart listens on the same address, so clients keep working.
	env.srv.Addr = strings.TrimPrefix(env.ts.url, "http://")
	env.op = client.New(env.ts.url, operatorKey)
	env.anon = client.New(env.ts.url, "")
}

// restart stops the server (which closes the store) and starts it again
// on the same directory.
func (env *engineEnv) restart() {
	env.t.Helper()
	if err := env.ts.stop(); err != nil {
		env.t.Fatal(err)
	}
	env.start()
}

// testPolicy: phone sign-in on for everyone, Android and App Attest from
// the forge roots.
func testPolicy() engine.Policy {
	return engine.Policy{
		Enabled: true,
		Target:  engine.Target{AllUsers: true},
		Attestation: engine.AttestationPolicy{
			Android:   &engine.AndroidPolicy{Packages: []string{forge.AndroidDefaultPackage}, ExtraRoots: []string{rootAndroid}},
			AppAttest: &engine.AppAttestPolicy{AppIDs: []string{testAppID}, ExtraRoots: []string{rootApple}},
		},
		Backoff: engine.Backoff{Free: 100},
	}
}

// tenantEnv is a tenant with an admin key and an auth server key.
type tenantEnv struct {
	id                string
	adminKey, authKey string
	admin, auth       *client.Client
}

func (env *engineEnv) tenant(id string, p engine.Policy) *tenantEnv {
	env.t.Helper()
	if _, err := env.op.CreateTenant(bg, id, "Tenant "+id, p); err != nil {
		env.t.Fatal(err)
	}
	admin, err := env.op.CreateKey(bg, id, engine.RoleAdmin, "admin of "+id)
	if err != nil {
		env.t.Fatal(err)
	}
	auth, err := client.New(env.ts.url, admin.Key).CreateKey(bg, id, engine.RoleAuthServer, "login page")
	if err != nil {
		env.t.Fatal(err)
	}
	return &tenantEnv{id: id, adminKey: admin.Key, authKey: auth.Key, admin: client.New(env.ts.url, admin.Key), auth: client.New(env.ts.url, auth.Key)}
}

func ptr[T any](v T) *T { return &v }

func (env *engineEnv) user(te *tenantEnv, id, upn string, groups ...string) {
	env.t.Helper()
	if _, err := te.admin.CreateUser(bg, te.id, client.UserRequest{ID: id, UPN: &upn, Groups: &groups, MFAPush: ptr(true)}); err != nil {
		env.t.Fatal(err)
	}
}

// testPhone is an enrolled phone: its credential and a signed-request
// client.
type testPhone struct {
	cred *client.Credential
	*client.Phone
	key crypto.Signer
}

// phone returns a phone client of cred proving with p.
func (env *engineEnv) phone(cred *client.Credential, p client.Prover) *client.Phone {
	return &client.Phone{BaseURL: env.ts.url, Credential: cred.ID, Prover: p, Now: env.clock.Now}
}

// enrollAndroid enrolls a new Android key of user (on device, "" for a new
// one) through the API.
func (env *engineEnv) enrollAndroid(te *tenantEnv, user, device string) (*testPhone, error) {
	env.t.Helper()
	enr, err := te.auth.StartEnrollment(bg, user, false)
	if err != nil {
		return nil, err
	}
	att, err := env.android.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
	if err != nil {
		env.t.Fatal(err)
	}
	cred, err := env.anon.Attest(bg, enr.ID, engine.FormatAndroidKey, engine.Evidence{"chain": engine.JoinDER(att.Chain)}, device)
	if err != nil {
		return nil, err
	}
	return &testPhone{cred: cred, Phone: env.phone(cred, client.SignerProver{Signer: att.Key}), key: att.Key}, nil
}

func (env *engineEnv) mustEnroll(te *tenantEnv, user string) *testPhone {
	env.t.Helper()
	p, err := env.enrollAndroid(te, user, "")
	if err != nil {
		env.t.Fatal(err)
	}
	return p
}

// appAttestProver makes App Attest assertions with a rising counter.
type appAttestProver struct {
	mu      sync.Mutex
	key     *ecdsa.PrivateKey
	counter uint32
}

func (a *appAttestProver) Prove(msg []byte) (engine.Proof, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counter++
	as, err := forge.AppAssert(a.key, forge.AppAssertOptions{AppID: testAppID, ClientData: msg, Counter: a.counter})
	if err != nil {
		return engine.Proof{}, err
	}
	return engine.Proof{Signature: as.Marshal()}, nil
}

// enrollApple enrolls an App Attest key through the API.
func (env *engineEnv) enrollApple(te *tenantEnv, user string) (*testPhone, *appAttestProver) {
	env.t.Helper()
	enr, err := te.auth.StartEnrollment(bg, user, false)
	if err != nil {
		env.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256(enr.Challenge)
	att, err := env.apple.Attest(key, forge.AppAttestOptions{AppID: testAppID, ClientDataHash: h[:]})
	if err != nil {
		env.t.Fatal(err)
	}
	cred, err := env.anon.Attest(bg, enr.ID, engine.FormatAppAttest, engine.Evidence{"attestation": att.Object, "key_id": att.KeyID}, "")
	if err != nil {
		env.t.Fatal(err)
	}
	prover := &appAttestProver{key: key}
	return &testPhone{cred: cred, Phone: env.phone(cred, prover)}, prover
}

// call sends a request with an API key (or none) and a JSON body (bytes
// as they are, anything else marshalled; nil for none).
func (env *engineEnv) call(key, method, path string, body any) response {
	env.t.Helper()
	var b []byte
	ct := ""
	switch v := body.(type) {
	case nil:
	case []byte:
		b, ct = v, "application/json"
	case string:
		b, ct = []byte(v), "application/json"
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			env.t.Fatal(err)
		}
		ct = "application/json"
	}
	return env.ts.do(method, path, key, ct, b)
}

// wantProblem fails unless err is a problem with status and code.
func wantProblem(t *testing.T, err error, status int, code string) *client.Problem {
	t.Helper()
	var p *client.Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v, want the problem %d %s", err, status, code)
	}
	if p.Status != status || p.Code != code {
		t.Fatalf("problem %d %s (%s), want %d %s", p.Status, p.Code, p.Detail, status, code)
	}
	return p
}

// decode unmarshals a response body.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	return v
}

// sameProblem checks that two problems say the same (code, detail, status):
// nothing tells them apart but the path.
func sameProblem(t *testing.T, what string, a, b response) {
	t.Helper()
	pa, pb := a.problem(t), b.problem(t)
	delete(pa, "instance")
	delete(pb, "instance")
	ja, _ := json.Marshal(pa)
	jb, _ := json.Marshal(pb)
	if a.status != b.status || !bytes.Equal(ja, jb) {
		t.Errorf("%s: %d %s and %d %s differ", what, a.status, ja, b.status, jb)
	}
}

// send sends a request and reads its answer.
func (ts *testServer) send(req *http.Request) response {
	ts.t.Helper()
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// forgeAndroidKey is an Android key the default policy accepts (user
// authentication required), attested over challenge.
func forgeAndroidKey(challenge []byte) forge.AndroidKey {
	return forge.AndroidKey{Challenge: challenge, UserAuth: true}
}
