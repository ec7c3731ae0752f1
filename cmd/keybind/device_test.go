package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/device"
	"github.com/keybind/keybind/engine"
)

// keybindIn runs the command in-process with stdin.
func keybindIn(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	st := run(&env{stdout: &out, stderr: &errOut, stdin: stdin}, args)
	return st, out.String(), errOut.String()
}

// TestDeviceCommands runs `keybind serve` as a process, trusting the
// development root that `keybind device init-root` made, and drives
// simulated phones with the `keybind device` commands: enrollment of an
// Android and an Apple phone in a tenant that names the root, refusal in
// one that does not, pending sign-ins, approve with the right and a wrong
// number, deny, fraud, the terminal mode through a pipe, and the errors of
// bad arguments and damaged state files.
func TestDeviceCommands(t *testing.T) {
	for _, v := range []string{"KEYBIND_KEY", "KEYBIND_SERVER", "KEYBIND_DEVICE_STATE"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	rootDir := filepath.Join(dir, "devroot")
	st, out, errOut := keybind(t, "device", "init-root", "--root-dir", rootDir)
	rootPEM := filepath.Join(rootDir, "root.pem")
	if st != 0 || !strings.Contains(out, "keybind serve --root dev="+rootPEM) {
		t.Fatalf("init-root: %d\n%s\n%s", st, out, errOut)
	}
	if _, err := os.Stat(rootPEM); err != nil {
		t.Fatal(err)
	}
	// Run again, it shows the same root.
	if st, again, _ := keybind(t, "device", "init-root", "--root-dir", rootDir); st != 0 || again != out {
		t.Errorf("init-root again: %d\n%s\nwant\n%s", st, again, out)
	}

	const operator = "operator-key-of-the-device-test"
	p := startServe(t, nil, "--operator-key", operator, "--root", "dev="+rootPEM)
	ctx := context.Background()
	op := client.New(p.url, operator)
	authKeys := map[string]string{}
	for id, attestation := range map[string]engine.AttestationPolicy{
		"contoso": device.AttestationPolicy("dev"),
		// Production: the same apps, no extra root.
		"fabrikam": {Android: &engine.AndroidPolicy{Packages: []string{device.DefaultPackage}}, AppAttest: &engine.AppAttestPolicy{AppIDs: []string{device.DefaultAppID}}},
	} {
		pol := engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}, NumberMatching: engine.ModeChoose, Attestation: attestation, Backoff: engine.Backoff{Free: 100}}
		if _, err := op.CreateTenant(ctx, id, id, pol); err != nil {
			t.Fatal(err)
		}
		on := true
		for _, u := range []string{"alice", "bob"} {
			upn := u + "@" + id + ".com"
			if _, err := op.CreateUser(ctx, id, client.UserRequest{ID: u, UPN: &upn, MFAPush: &on}); err != nil {
				t.Fatal(err)
			}
		}
		k, err := op.CreateKey(ctx, id, engine.RoleAuthServer, "login page")
		if err != nil {
			t.Fatal(err)
		}
		authKeys[id] = k.Key
	}
	auth := client.New(p.url, authKeys["contoso"])

	androidState, appleState := filepath.Join(dir, "alice.json"), filepath.Join(dir, "bob.json")
	enroll := func(want int, args ...string) string {
		t.Helper()
		st, out, errOut := keybind(t, append([]string{"device", "enroll", "--server", p.url, "--root-dir", rootDir}, args...)...)
		if st != want {
			t.Fatalf("enroll %v: status %d, want %d\n%s\n%s", args, st, want, out, errOut)
		}
		return out + errOut
	}
	if out := enroll(0, "--key", authKeys["contoso"], "--user", "alice@contoso.com", "--state", androidState); !strings.Contains(out, "enrolled android phone") {
		t.Errorf("enroll android: %s", out)
	}
	t.Setenv("KEYBIND_KEY", authKeys["contoso"]) // the key from the environment
	if out := enroll(0, "--kind", "apple", "--user", "bob", "--state", appleState); !strings.Contains(out, "enrolled apple phone") {
		t.Errorf("enroll apple: %s", out)
	}
	t.Setenv("KEYBIND_KEY", "")
	if out := enroll(1, "--key", authKeys["contoso"], "--user", "alice", "--state", androidState); !strings.Contains(out, "already holds a phone") {
		t.Errorf("enroll over a state file: %s", out)
	}
	for _, kind := range []string{"android", "apple"} {
		state := filepath.Join(dir, "fabrikam-"+kind+".json")
		if out := enroll(1, "--key", authKeys["fabrikam"], "--user", "alice@fabrikam.com", "--kind", kind, "--state", state); !strings.Contains(out, "chain.untrusted_root") {
			t.Errorf("enroll %s in a tenant without the root: %s", kind, out)
		}
		if _, err := os.Stat(state); err == nil {
			t.Errorf("state of a refused %s enrollment written", kind)
		}
	}
	// An enrollment opened by an administrator.
	adminKey, err := op.CreateKey(ctx, "contoso", engine.RoleAdmin, "helpdesk")
	if err != nil {
		t.Fatal(err)
	}
	enr, err := client.New(p.url, adminKey.Key).StartEnrollment(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	adminState := filepath.Join(dir, "bob-android.json")
	if out := enroll(0, "--enrollment", enr.ID, "--challenge", base64.StdEncoding.EncodeToString(enr.Challenge), "--state", adminState); !strings.Contains(out, "user bob of tenant contoso") {
		t.Errorf("enroll with an administrator's enrollment: %s", out)
	}

	devCmd := func(want int, state string, args ...string) string {
		t.Helper()
		st, out, errOut := keybind(t, append(append([]string{"device"}, args...), "--state", state)...)
		if st != want {
			t.Fatalf("device %v: status %d, want %d\n%s\n%s", args, st, want, out, errOut)
		}
		return out + errOut
	}
	signIn := func(upn string) *client.SignInStart {
		t.Helper()
		s, err := auth.StartSignIn(ctx, client.SignInRequest{Username: upn, Context: engine.SignInContext{App: "Contoso Mail", IP: "198.51.100.4", Location: "Porto, Portugal"}})
		if err != nil || s.Method != "phone" {
			t.Fatalf("sign-in of %s: %+v, %v", upn, s, err)
		}
		return s
	}
	outcomeOf := func(attempt string) string {
		t.Helper()
		o, err := auth.SignInOutcome(ctx, attempt, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o.State
	}

	for _, c := range []struct{ upn, state string }{{"alice@contoso.com", androidState}, {"bob@contoso.com", appleState}} {
		if out := devCmd(0, c.state, "pending"); !strings.Contains(out, "no sign-in is waiting") {
			t.Errorf("pending with none: %s", out)
		}
		if out := devCmd(1, c.state, "approve", "--number", "42"); !strings.Contains(out, "no sign-in is waiting for this phone") {
			t.Errorf("approve with none: %s", out)
		}

		s := signIn(c.upn)
		out := devCmd(0, c.state, "pending")
		for _, want := range []string{s.Attempt, c.upn, "Contoso Mail", "198.51.100.4", "Porto, Portugal", strconv.Itoa(s.Number), "expires:"} {
			if !strings.Contains(out, want) {
				t.Errorf("pending lacks %q:\n%s", want, out)
			}
		}
		var list struct{ Attempts []client.PendingSignIn }
		if err := json.Unmarshal([]byte(devCmd(0, c.state, "pending", "--json")), &list); err != nil || len(list.Attempts) != 1 || !slices.Contains(list.Attempts[0].Choices, s.Number) {
			t.Fatalf("pending --json: %+v, %v", list, err)
		}
		if out := devCmd(0, c.state, "approve", "--number", strconv.Itoa(s.Number)); !strings.Contains(out, "sign-in "+s.Attempt+": approved") || outcomeOf(s.Attempt) != engine.StateApproved {
			t.Errorf("approve with the right number: %s", out)
		}

		s = signIn(c.upn)
		wrong := list.Attempts[0].Choices[0]
		for _, n := range list.Attempts[0].Choices {
			if n != s.Number {
				wrong = n
			}
		}
		if wrong == s.Number {
			wrong = (s.Number+1)%90 + 10
		}
		if out := devCmd(1, c.state, "approve", "--attempt", s.Attempt, "--number", strconv.Itoa(wrong)); !strings.Contains(out, "403 signin.wrong_number") || outcomeOf(s.Attempt) != engine.StateDenied {
			t.Errorf("approve with a wrong number: %s", out)
		}
		if out := devCmd(1, c.state, "deny", "--attempt", s.Attempt); !strings.Contains(out, "is not waiting for this phone") {
			t.Errorf("deny after the answer: %s", out)
		}

		for _, decision := range []string{"deny", "fraud"} {
			s = signIn(c.upn)
			want := map[string]string{"deny": engine.StateDenied, "fraud": engine.StateFraud}[decision]
			if out := devCmd(0, c.state, decision); !strings.Contains(out, "sign-in "+s.Attempt+": "+want) || outcomeOf(s.Attempt) != want {
				t.Errorf("%s: %s", decision, out)
			}
		}

		// The terminal mode, its input piped.
		s = signIn(c.upn)
		st, out, errOut := keybindIn(t, strings.NewReader("hello\n"+strconv.Itoa(s.Number)+"\nq\n"), "device", "interactive", "--state", c.state, "--poll", "50ms")
		if st != 0 || !strings.Contains(out, `"hello": answer with the number`) || !strings.Contains(out, "sign-in "+s.Attempt+": approved") || outcomeOf(s.Attempt) != engine.StateApproved {
			t.Errorf("interactive: %d\n%s\n%s", st, out, errOut)
		}
	}

	// The Apple phone's counter went up with every request, on disk.
	var state device.State
	b, err := os.ReadFile(appleState)
	if err != nil || json.Unmarshal(b, &state) != nil || state.Counter < 15 || state.Kind != "apple" || state.Version != 1 {
		t.Errorf("apple state: %+v, %v", state, err)
	}

	// Bad arguments (2) and unusable state files (1).
	for _, c := range []struct {
		want     int
		args     []string
		contains string
	}{
		{2, []string{"enroll", "--server", p.url, "--user", "alice", "--state", filepath.Join(dir, "x.json")}, "give an auth server key"},
		{2, []string{"enroll", "--server", p.url, "--key", "k", "--state", filepath.Join(dir, "x.json")}, "--user is required"},
		{2, []string{"enroll", "--server", p.url, "--key", "k", "--user", "a", "--kind", "windows"}, `--kind "windows"`},
		{2, []string{"enroll", "--server", "ftp://x", "--key", "k", "--user", "a"}, "want http(s)"},
		{2, []string{"enroll", "--server", p.url, "--enrollment", "e"}, "needs its --challenge"},
		{2, []string{"enroll", "--server", p.url, "--enrollment", "e", "--challenge", "%%%"}, "--challenge"},
		{2, []string{"approve", "--state", androidState}, "--number is required"},
		{2, []string{"approve", "--number", "-3", "--state", androidState}, "--number"},
		{2, []string{"pending", "extra"}, "unexpected argument"},
		{2, []string{"interactive", "--poll", "1ns"}, "--poll"},
		{1, []string{"pending", "--state", filepath.Join(dir, "none.json")}, "does not exist: enroll the phone first"},
		{2, []string{"pending", "--state", androidState, "--server", "ftp://x"}, "want http(s)"},
		// --server points the phone elsewhere: nothing listens there.
		{1, []string{"pending", "--state", androidState, "--server", "http://127.0.0.1:1"}, "connection refused"},
		{0, []string{"pending", "--state", androidState, "--server", p.url + "/"}, "no sign-in is waiting"},
	} {
		st, out, errOut := keybind(t, append([]string{"device"}, c.args...)...)
		if st != c.want || !strings.Contains(out+errOut, c.contains) {
			t.Errorf("device %v: status %d (want %d), output %q (want %q)", c.args, st, c.want, out+errOut, c.contains)
		}
	}
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, b[:len(b)/3], 0o600)
	if out := devCmd(1, corrupt, "pending"); !strings.Contains(out, "corrupt.json: corrupt: not a state file's JSON") {
		t.Errorf("corrupt state: %s", out)
	}
}
