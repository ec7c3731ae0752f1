package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
)

// adminData makes a data directory with a tenant, users and audit records.
func adminData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.CreateTenant(ctx, engine.Tenant{ID: "contoso", Policy: engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := e.CreateUser(ctx, "contoso", engine.User{ID: u, UPN: u + "@contoso.com", MFAPush: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.StartEnrollment(ctx, "contoso", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// adminSummary reads a data directory's users and audit log.
func adminSummary(t *testing.T, dir string) string {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, _ := engine.New(engine.Config{Store: s})
	users, err := e.ListUsers(context.Background(), "contoso")
	if engine.CodeOf(err) == engine.CodeTenantNotFound {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	page, err := e.Audit(context.Background(), engine.AuditQuery{Tenant: "contoso"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, u := range users {
		b.WriteString(u.UPN + " ")
	}
	for _, r := range page.Records {
		b.WriteString(r.Event + " ")
	}
	return b.String()
}

func TestAdminExportImport(t *testing.T) {
	src := adminData(t)
	want := adminSummary(t, src)
	if !strings.Contains(want, "bob@contoso.com") || !strings.Contains(want, "enroll.started") {
		t.Fatalf("source summary %q", want)
	}
	// To a file and back.
	file := filepath.Join(t.TempDir(), "backup.kbx")
	st, _, errOut := keybind(t, "admin", "export", "--data", src, "--out", file)
	if st != 0 || !strings.Contains(errOut, "exported") {
		t.Fatalf("export: %d %s", st, errOut)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	st, _, errOut = keybind(t, "admin", "import", "--data", dst, "--in", file)
	if st != 0 || !strings.Contains(errOut, "imported") {
		t.Fatalf("import: %d %s", st, errOut)
	}
	if got := adminSummary(t, dst); got != want {
		t.Errorf("restored %q, want %q", got, want)
	}
	// Through standard output and standard input.
	st, stream, errOut := keybind(t, "admin", "export", "--data", src)
	if st != 0 || len(stream) == 0 {
		t.Fatalf("export to stdout: %d %s", st, errOut)
	}
	dst2 := filepath.Join(t.TempDir(), "restored2")
	var out, eout bytes.Buffer
	if st := run(&env{stdout: &out, stderr: &eout, stdin: strings.NewReader(stream)}, []string{"admin", "import", "--data", dst2}); st != 0 {
		t.Fatalf("import from stdin: %d %s", st, eout.String())
	}
	if got := adminSummary(t, dst2); got != want {
		t.Errorf("restored from stdin %q", got)
	}
	// Import into a directory that holds data is refused.
	st, _, errOut = keybind(t, "admin", "import", "--data", dst, "--in", file)
	if st != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("import into a full store: %d %s", st, errOut)
	}
	// A damaged stream is refused and leaves the directory empty.
	raw, _ := os.ReadFile(file)
	raw[len(raw)/2] ^= 0x40
	bad := filepath.Join(t.TempDir(), "bad.kbx")
	os.WriteFile(bad, raw, 0o600)
	dst3 := filepath.Join(t.TempDir(), "restored3")
	st, _, errOut = keybind(t, "admin", "import", "--data", dst3, "--in", bad)
	if st != 1 || !strings.Contains(errOut, "corrupt") {
		t.Errorf("damaged stream: %d %s", st, errOut)
	}
	if got := adminSummary(t, dst3); got != "" {
		t.Errorf("the failed import left %q", got)
	}
	// Empty standard input is not an export.
	st, _, _ = keybind(t, "admin", "import", "--data", filepath.Join(t.TempDir(), "x"))
	if st != 1 {
		t.Errorf("empty stdin: status %d", st)
	}
}

func TestAdminArguments(t *testing.T) {
	for _, args := range [][]string{
		{"admin", "export"},
		{"admin", "import"},
		{"admin", "export", "--data", "x", "extra"},
		{"admin", "export", "--nope"},
	} {
		if st, _, _ := keybind(t, args...); st != 2 {
			t.Errorf("%v: status %d, want 2", args, st)
		}
	}
	if st, _, errOut := keybind(t, "admin", "export", "--data", t.TempDir()); st != 1 || !strings.Contains(errOut, "not a keybind data directory") {
		t.Errorf("export of an empty directory: %d %s", st, errOut)
	}
	nonEmpty := t.TempDir()
	os.WriteFile(filepath.Join(nonEmpty, "notes.txt"), []byte("x"), 0o600)
	if st, _, errOut := keybind(t, "admin", "import", "--data", nonEmpty, "--in", "/dev/null"); st != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("import into a foreign directory: %d %s", st, errOut)
	}
	if st, _, _ := keybind(t, "admin", "import", "--data", t.TempDir(), "--in", "/no/such/file"); st != 1 {
		t.Errorf("missing input file: status %d", st)
	}
	if st, _, _ := keybind(t, "admin", "frobnicate"); st != 2 {
		t.Errorf("unknown admin command: status %d", st)
	}
}
