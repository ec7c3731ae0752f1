package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keybind runs the command in-process and returns its exit status and output.
func keybind(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	st := run(&env{stdout: &out, stderr: &errOut}, args)
	return st, out.String(), errOut.String()
}

// TestHelp checks that every command and sub-command answers --help with its
// usage on stdout and exit status 0.
func TestHelp(t *testing.T) {
	if st, out, _ := keybind(t, "help"); st != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("keybind help: %d %q", st, out)
	}
	if st, _, _ := keybind(t); st != 2 {
		t.Errorf("keybind with no command: status %d, want 2", st)
	}
	if st, _, errOut := keybind(t, "frobnicate"); st != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %q", st, errOut)
	}
	for _, c := range commands() {
		st, out, errOut := keybind(t, c.name, "--help")
		if st != 0 || !strings.Contains(out, "Usage: keybind "+c.name) {
			t.Errorf("keybind %s --help: status %d, stdout %q, stderr %q", c.name, st, out, errOut)
		}
	}
	for _, sub := range [][]string{{"vectors", "run"}, {"admin", "export"}, {"admin", "import"}} {
		st, out, errOut := keybind(t, append(sub, "--help")...)
		if st != 0 || !strings.Contains(out, "Usage: keybind "+strings.Join(sub, " ")) {
			t.Errorf("keybind %v --help: status %d, stdout %q, stderr %q", sub, st, out, errOut)
		}
	}
	for _, c := range attestCommands() {
		st, out, errOut := keybind(t, "attest", c.name, "--help")
		if st != 0 || !strings.Contains(out, "Usage: keybind attest "+c.name) {
			t.Errorf("keybind attest %s --help: status %d, stdout %q, stderr %q", c.name, st, out, errOut)
		}
	}
	// Every command of the tree, found by walking the "Commands:" lists
	// of the helps, so that a new sub-command is checked too.
	n := 0
	var walk func(path []string)
	walk = func(path []string) {
		st, out, errOut := keybind(t, append(path, "--help")...)
		n++
		if st != 0 || !strings.Contains(out, "Usage: keybind "+strings.Join(path, " ")) {
			t.Errorf("keybind %s --help: status %d, stdout %q, stderr %q", strings.Join(path, " "), st, out, errOut)
			return
		}
		_, list, ok := strings.Cut(out, "\nCommands:\n\n")
		if !ok {
			// A leaf: an unknown flag is a usage error that names the
			// command's own help.
			st, _, errOut := keybind(t, append(path, "--no-such-flag")...)
			want := "Run 'keybind " + strings.Join(path, " ") + " --help' for usage."
			if st != 2 || !strings.Contains(errOut, want) {
				t.Errorf("keybind %s --no-such-flag: status %d, stderr %q, want 2 and %q", strings.Join(path, " "), st, errOut, want)
			}
			return
		}
		list, _, _ = strings.Cut(list, "\n\n")
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				walk(append(append([]string{}, path...), f[0]))
			}
		}
	}
	for _, c := range commands() {
		walk([]string{c.name})
	}
	if n < 40 {
		t.Errorf("the walk checked %d helps", n)
	}
}

func TestVectorsRunExitStatus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name, "manifest.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknownKind := write("unknown", `{"version": 1, "vectors": [{"id": "x", "kind": "no-such-kind", "expect": {"verdict": "accept"}}]}`)
	st, out, _ := keybind(t, "vectors", "run", unknownKind)
	if st != 1 || !strings.Contains(out, "FAIL x: unknown kind") || !strings.HasSuffix(out, "vectors: 0 passed, 1 failed\n") {
		t.Errorf("unknown kind: status %d, output %q", st, out)
	}
	bad := write("bad", `{"version": 7, "vectors": []}`)
	st, out, errOut := keybind(t, "vectors", "run", bad)
	if st != 2 || !strings.Contains(errOut, "version") || !strings.HasSuffix(out, "vectors: 0 passed, 0 failed\n") {
		t.Errorf("unusable manifest: status %d, stdout %q, stderr %q", st, out, errOut)
	}
	if st, _, _ := keybind(t, "vectors", "run"); st != 2 {
		t.Errorf("no path: status %d, want 2", st)
	}
}
