package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/bench"
)

// TestBenchHelp checks that --help describes every mode and flag.
func TestBenchHelp(t *testing.T) {
	st, out, _ := keybind(t, "bench", "--help")
	if st != 0 {
		t.Fatalf("status %d", st)
	}
	for _, m := range bench.Modes {
		if !strings.Contains(out, "\n  "+m+" ") {
			t.Errorf("--help does not describe mode %s", m)
		}
	}
	for _, f := range []string{"duration", "warmup", "rounds", "connections", "rate", "mix", "server", "key", "tenant", "alg", "items",
		"formats", "generator-cpus", "json", "html", "quiet"} {
		i := strings.Index(out, "\n  -"+f+" ")
		if i < 0 {
			i = strings.Index(out, "\n  -"+f+"\n")
		}
		if i < 0 {
			t.Errorf("--help does not list -%s", f)
			continue
		}
		if rest := out[i+3+len(f):]; len(strings.TrimSpace(strings.SplitN(rest, "\n  -", 2)[0])) < 10 {
			t.Errorf("-%s has no description", f)
		}
	}
	for _, col := range []string{"ops/s", "ops/CPU-s", "ratio", "p50", "allocs/op", "--json", "--html", "keybind-bench/1"} {
		if !strings.Contains(out, col) {
			t.Errorf("--help does not explain %s", col)
		}
	}
}

func TestBenchArguments(t *testing.T) {
	for _, args := range [][]string{
		{"fastest"},
		{"--mix", "verify=x"},
		{"http", "--mix", "login=1"},
		{"--alg", "rsa"},
		{"--formats", "tpm-magic"},
		{"--server", "http://127.0.0.1:1"},
		{"--server", "127.0.0.1:1", "--key", "k"},
		{"--duration", "0s"},
		{"--connections", "0"},
		{"--no-such-flag"},
	} {
		st, _, errOut := keybind(t, append([]string{"bench", "--quiet"}, args...)...)
		if st != 2 || !strings.Contains(errOut, "keybind:") {
			t.Errorf("keybind bench %v: status %d, stderr %q; want 2 and a message", args, st, errOut)
		}
	}
}

// TestBenchRun runs the in-process modes briefly (modes and flags in any
// order) and checks the JSON on stdout and the HTML file.
func TestBenchRun(t *testing.T) {
	html := filepath.Join(t.TempDir(), "report.html")
	st, out, errOut := keybind(t, "bench", "crypto", "--duration", "200ms", "attest", "--warmup", "50ms", "--formats", "android-key", "--json", "--html", html)
	if st != 0 {
		t.Fatalf("status %d: %s", st, errOut)
	}
	var rep struct {
		Schema   string
		Ceilings []struct{ Mode, Name string }
		Results  []struct{ Mode, Name string }
		Bar      *struct{}
		Pass     bool
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Schema != bench.Schema || len(rep.Ceilings) != 2 || len(rep.Results) != 1 || rep.Results[0].Name != "android-key" || rep.Bar != nil || !rep.Pass {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(errOut, "crypto: P-256") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.HasPrefix(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), "<svg") {
		t.Errorf("HTML report: %v %.100q", err, page)
	}
	// The table form.
	st, out, _ = keybind(t, "bench", "--quiet", "crypto", "--duration", "100ms", "--warmup", "10ms")
	if st != 0 || !strings.Contains(out, "ops/CPU-s") || !strings.Contains(out, "Ed25519 (crypto/ed25519)") {
		t.Errorf("status %d, table %q", st, out)
	}
}
