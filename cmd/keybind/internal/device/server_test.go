package device

import (
	"context"
	"crypto/x509"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/server"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/verify"
)

// The phone is tested against a real server: keybind's HTTP server with
// the engine on a Pebble directory, listening on a loopback port, trusting
// the development root as "dev" (only for tenants that name it).

var bg = context.Background()

const testOperatorKey = "operator-key-of-the-device-tests"

// testServer is a running server and its operator client.
type testServer struct {
	url string
	op  *client.Client
}

// startServer starts a server whose configured roots are roots.
func startServer(t *testing.T, roots map[string][]*x509.Certificate) *testServer {
	t.Helper()
	s := server.New(server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	st, err := store.Open(t.TempDir(), store.Options{Observe: s.StoreObserver()})
	if err != nil {
		t.Fatal(err)
	}
	s.OnShutdown(st.Close)
	p := verify.New(verify.Options{})
	e, err := engine.New(engine.Config{Store: st, Verifiers: engine.Verifiers(nil), PlainSignatures: server.PipelineSignatures(p, 0), Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	keys := server.NewEngineKeys(e, 0)
	op, err := server.ParseOperatorKey(testOperatorKey)
	if err != nil {
		t.Fatal(err)
	}
	s.SetAuthenticator(server.Authenticators{op, keys})
	s.EnableVerify(server.VerifyConfig{Pipeline: p, Keys: server.EngineKeyResolver(e)})
	s.EnableEngine(server.EngineConfig{Engine: e, Store: st, Keys: keys, PollInterval: time.Second})
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop")
		}
		p.Close()
	})
	url := "http://" + addr.String()
	return &testServer{url: url, op: client.New(url, testOperatorKey)}
}

// testEnv is a server trusting the test root as "dev", with a tenant
// that names it ("contoso") and one that does not ("fabrikam").
type testEnv struct {
	*testServer
	root                    *Root
	dir                     string         // the test's folder (root in dir/devroot)
	contoso, fabrikam       *client.Client // auth server clients
	contosoAdmin            *client.Client
	contosoKey, fabrikamKey string
}

func newTestEnv(t *testing.T, mode string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	root, err := OpenRoot(filepath.Join(dir, "devroot"))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, map[string][]*x509.Certificate{"dev": {root.Cert}})
	env := &testEnv{testServer: ts, root: root, dir: dir}
	trusting := engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}, NumberMatching: mode,
		Attestation: AttestationPolicy("dev"), Backoff: engine.Backoff{Free: 100}}
	// The production policy: the same apps, no extra root.
	production := trusting
	production.Attestation = engine.AttestationPolicy{
		Android:   &engine.AndroidPolicy{Packages: []string{DefaultPackage}},
		AppAttest: &engine.AppAttestPolicy{AppIDs: []string{DefaultAppID}},
	}
	var admin *client.Client
	env.contoso, admin, env.contosoKey = ts.tenant(t, "contoso", trusting)
	env.contosoAdmin = admin
	env.fabrikam, _, env.fabrikamKey = ts.tenant(t, "fabrikam", production)
	return env
}

// tenant creates a tenant with users alice and bob and returns its auth
// server and admin clients, and the auth server's key.
func (ts *testServer) tenant(t *testing.T, id string, p engine.Policy) (auth, admin *client.Client, authKey string) {
	t.Helper()
	if _, err := ts.op.CreateTenant(bg, id, id, p); err != nil {
		t.Fatal(err)
	}
	a, err := ts.op.CreateKey(bg, id, engine.RoleAdmin, "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin = client.New(ts.url, a.Key)
	on := true
	for _, u := range []string{"alice", "bob"} {
		upn := u + "@" + id + ".com"
		if _, err := admin.CreateUser(bg, id, client.UserRequest{ID: u, UPN: &upn, MFAPush: &on}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := admin.CreateKey(bg, id, engine.RoleAuthServer, "login page")
	if err != nil {
		t.Fatal(err)
	}
	return client.New(ts.url, k.Key), admin, k.Key
}
