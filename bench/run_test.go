package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// keybindBinary builds cmd/keybind once for the tests that run it as a
// server.
func keybindBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs keybind serve")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keybind-bench-test-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "keybind")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/keybind").CombinedOutput(); err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binPath)
	}
	return binPath
}

// short are the durations of the runs of these tests: long enough for
// every operation to happen, far too short to measure anything.
func short(cfg Config) Config {
	cfg.Duration, cfg.Warmup = 300*time.Millisecond, 100*time.Millisecond
	return cfg
}

// checkResults fails unless every result measured something without an
// error (nothing about how fast).
func checkResults(t *testing.T, rep *Report, modes ...string) {
	t.Helper()
	if len(rep.Ceilings) != 2 {
		t.Fatalf("%d ceilings", len(rep.Ceilings))
	}
	seen := map[string]bool{}
	for _, r := range append(append([]Result{}, rep.Ceilings...), rep.Results...) {
		seen[r.Mode] = true
		if r.Ops <= 0 || r.Wall <= 0 || r.Latency.Count <= 0 || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("%s %s: ops %d in %v, latency %+v", r.Mode, r.Name, r.Ops, r.Wall, r.Latency)
		}
		if r.Errors > 0 {
			t.Errorf("%s %s: %d errors, first %s", r.Mode, r.Name, r.Errors, r.FirstError)
		}
		if r.CeilingRate > 0 && (r.CPU <= 0 || r.Ratio() <= 0) {
			t.Errorf("%s %s: CPU %v, ratio %v", r.Mode, r.Name, r.CPU, r.Ratio())
		}
	}
	for _, m := range modes {
		if !seen[m] {
			t.Errorf("no %s result", m)
		}
	}
}

func TestRunInProcess(t *testing.T) {
	rep, err := Run(context.Background(), short(Config{Modes: []string{ModeCrypto, ModePipeline, ModeAttest}}))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, rep, ModeCrypto, ModePipeline, ModeAttest)
	var attest []string
	for _, r := range rep.Results {
		if r.Mode == ModeAttest {
			attest = append(attest, r.Name)
			if r.AllocsPerOp <= 0 {
				t.Errorf("%s: %v allocations per attestation", r.Name, r.AllocsPerOp)
			}
		}
		if r.Mode == ModePipeline && r.Signatures != r.Ops*int64(map[bool]int{true: 1, false: 16}[strings.HasSuffix(r.Name, "×1")]) {
			t.Errorf("%s: %d signatures in %d requests", r.Name, r.Signatures, r.Ops)
		}
	}
	if strings.Join(attest, ",") != strings.Join(AttestFormats, ",") {
		t.Errorf("attest formats %v", attest)
	}
}

// TestRunHTTPMix runs the default mix against a server the run starts:
// the tenant, users, keys and phones are set up through its API, and every
// sign-in is approved by its phone.
func TestRunHTTPMix(t *testing.T) {
	bin := keybindBinary(t)
	rep, err := Run(context.Background(), short(Config{Modes: []string{ModeHTTP}, Binary: bin, Connections: 3}))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, rep, ModeHTTP)
	names := []string{}
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if strings.HasPrefix(r.Name, "mix ") && (r.CPUOf != "server" || r.AllocsPerOp <= 0) {
			t.Errorf("%s: CPU of %s, %v allocations per operation", r.Name, r.CPUOf, r.AllocsPerOp)
		}
	}
	want := "mix verify=90,signin=5,enroll=5|verify ecdsa-p256 ×1 (in the mix)|signin (in the mix)|enroll (in the mix)"
	if strings.Join(names, "|") != want {
		t.Errorf("results %q, want %q", names, want)
	}
}

// TestRunHTTPGivenServer runs the http mode against a running server:
// verify requests with a verify key, then, with an admin key of a tenant,
// Ed25519 verify requests of 4 items and enrollments of users it creates
// there, at a fixed rate.
func TestRunHTTPGivenServer(t *testing.T) {
	bin := keybindBinary(t)
	ctx := context.Background()
	op, vk := NewKey(), NewKey()
	srv, err := StartServer(ctx, ServerOptions{Binary: bin, Args: []string{"--operator-key", op, "--rate-limit", "0", "--phone-rate-limit", "0", "--key", "bench:verify:" + vk}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	rep, err := Run(ctx, short(Config{Modes: []string{ModeHTTP}, Server: srv.URL, Key: vk, Connections: 2}))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, rep, ModeHTTP)
	if len(rep.Results) != 1 || rep.Results[0].Signatures != rep.Results[0].Ops {
		t.Fatalf("results %+v", rep.Results)
	}

	oc := &client.Client{BaseURL: srv.URL, Key: op}
	if _, err := oc.CreateTenant(ctx, "given", "Given", engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}}); err != nil {
		t.Fatal(err)
	}
	admin, err := oc.CreateKey(ctx, "given", engine.RoleAdmin, "bench")
	if err != nil {
		t.Fatal(err)
	}
	mix, _ := ParseMix("verify=3,enroll=1")
	rep, err = Run(ctx, short(Config{Modes: []string{ModeHTTP}, Server: srv.URL, Key: admin.Key, Tenant: "given", Mix: mix,
		Algorithm: "ed25519", Items: 4, Connections: 2, Rate: 200}))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, rep, ModeHTTP)
	if len(rep.Results) != 3 || rep.Results[1].Signatures != 0 && rep.Results[1].Name != "verify ed25519 ×4 (in the mix)" {
		t.Errorf("results %+v", rep.Results)
	}
	// Sign-ins need phones the tenant trusts: refused up front.
	mix, _ = ParseMix("signin")
	if _, err := Run(ctx, short(Config{Modes: []string{ModeHTTP}, Server: srv.URL, Key: admin.Key, Mix: mix})); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Errorf("sign-ins without a tenant: %v", err)
	}
}
