package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
)

var testContext = engine.SignInContext{App: "Contoso Mail", IP: "203.0.113.7", Location: "Lisbon, Portugal"}

// startSignIn starts a phone sign-in of upn with the auth server client.
func startSignIn(t *testing.T, auth *client.Client, upn string) *client.SignInStart {
	t.Helper()
	start, err := auth.StartSignIn(bg, client.SignInRequest{Username: upn, Context: testContext})
	if err != nil {
		t.Fatal(err)
	}
	if start.Method != "phone" {
		t.Fatalf("sign-in of %s: method %q (%s), want phone", upn, start.Method, start.Reason)
	}
	return start
}

// outcome reads an attempt's state with the auth server client.
func outcome(t *testing.T, auth *client.Client, attempt string) *client.Outcome {
	t.Helper()
	o, err := auth.SignInOutcome(bg, attempt, 0)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func problemCode(err error) string {
	var p *client.Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ""
}

// TestEnrollAndAnswer enrolls an Android and an Apple phone into a tenant
// that trusts the development root, and answers sign-ins with each: the
// right number signs in, a wrong one denies, deny and fraud give their
// outcomes, in choose and in type mode.
func TestEnrollAndAnswer(t *testing.T) {
	for _, mode := range []string{engine.ModeChoose, engine.ModeType} {
		env := newTestEnv(t, mode)
		for _, kind := range []string{KindAndroid, KindApple} {
			t.Run(mode+"/"+kind, func(t *testing.T) {
				user := map[string]string{KindAndroid: "alice", KindApple: "bob"}[kind]
				upn := user + "@contoso.com"
				path := filepath.Join(env.dir, kind+".json")
				ph, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, Kind: kind, APIKey: env.contosoKey, User: upn, State: path})
				if err != nil {
					t.Fatal(err)
				}
				st := ph.State()
				if st.Tenant != "contoso" || st.User != user || st.Credential == "" || st.Kind != kind || st.Root.SHA256 != env.root.Fingerprint() {
					t.Fatalf("state after enrollment: %+v", st)
				}
				creds, err := env.contosoAdmin.ListCredentials(bg, "contoso", user)
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(creds, func(c client.Credential) bool { return c.ID == st.Credential })
				wantFormat := map[string]string{KindAndroid: engine.FormatAndroidKey, KindApple: engine.FormatAppAttest}[kind]
				if i < 0 || creds[i].Format != wantFormat || !strings.Contains(creds[i].Root, RootName) {
					t.Fatalf("credentials of %s: %+v", user, creds)
				}

				if _, err := ph.Attempt(bg, ""); !errors.Is(err, ErrNothingPending) {
					t.Errorf("attempt with nothing pending: %v", err)
				}

				// The right number.
				start := startSignIn(t, env.contoso, upn)
				list, err := ph.Pending(bg)
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 || list[0].Attempt != start.Attempt || list[0].Context != testContext || list[0].Mode != mode {
					t.Fatalf("pending: %+v", list)
				}
				if mode == engine.ModeChoose && (len(list[0].Choices) != 3 || !slices.Contains(list[0].Choices, start.Number)) {
					t.Fatalf("choices %v do not hold the number %d", list[0].Choices, start.Number)
				}
				var shown bytes.Buffer
				WritePending(&shown, list, list[0].ExpiresAt.Add(-90*time.Second))
				for _, want := range []string{start.Attempt, upn, "Contoso Mail", "203.0.113.7", "Lisbon, Portugal", "in 1m30s"} {
					if !strings.Contains(shown.String(), want) {
						t.Errorf("pending as shown lacks %q:\n%s", want, shown.String())
					}
				}
				out, err := ph.Approve(bg, list[0], start.Number)
				if err != nil || out.State != engine.StateApproved || out.Credential != st.Credential {
					t.Fatalf("approve with the right number: %+v, %v", out, err)
				}
				if o := outcome(t, env.contoso, start.Attempt); o.State != engine.StateApproved {
					t.Errorf("outcome after approve: %+v", o)
				}

				// A wrong number.
				start = startSignIn(t, env.contoso, upn)
				s, err := ph.Attempt(bg, start.Attempt)
				if err != nil {
					t.Fatal(err)
				}
				wrong := (start.Number+1)%90 + 10
				if mode == engine.ModeChoose {
					wrong = s.Choices[slices.IndexFunc(s.Choices, func(n int) bool { return n != start.Number })]
				}
				if _, err := ph.Approve(bg, s, wrong); problemCode(err) != "signin.wrong_number" {
					t.Errorf("approve with a wrong number: %v", err)
				}
				if o := outcome(t, env.contoso, start.Attempt); o.State != engine.StateDenied {
					t.Errorf("outcome after a wrong number: %+v", o)
				}
				if _, err := ph.Attempt(bg, start.Attempt); err == nil || !strings.Contains(err.Error(), "not waiting") {
					t.Errorf("attempt after it was answered: %v", err)
				}

				// Deny and fraud.
				for decision, want := range map[string]string{"deny": engine.StateDenied, "fraud": engine.StateFraud} {
					start = startSignIn(t, env.contoso, upn)
					s, err := ph.Attempt(bg, "")
					if err != nil {
						t.Fatal(err)
					}
					answer := ph.Deny
					if decision == "fraud" {
						answer = ph.Fraud
					}
					if out, err := answer(bg, s); err != nil || out.State != want {
						t.Errorf("%s: %+v, %v", decision, out, err)
					}
					if o := outcome(t, env.contoso, start.Attempt); o.State != want {
						t.Errorf("outcome after %s: %+v", decision, o)
					}
				}

				// The state file is private and loads back to the same phone.
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("state file: %v, %v", fi, err)
				}
				again, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if again.State() != ph.State() {
					t.Errorf("state reloaded:\n%+v\nwant\n%+v", again.State(), ph.State())
				}
			})
		}
	}
}

// TestEnrollUntrusted: a tenant that does not name the development root
// refuses the simulated phones with the stable code, and no state file is
// written.
func TestEnrollUntrusted(t *testing.T) {
	env := newTestEnv(t, "")
	for _, kind := range []string{KindAndroid, KindApple} {
		path := filepath.Join(env.dir, kind+".json")
		_, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, Kind: kind, APIKey: env.fabrikamKey, User: "alice@fabrikam.com", State: path})
		if problemCode(err) != "chain.untrusted_root" {
			t.Errorf("%s phone in a tenant without the root: %v", kind, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: state written after a refusal: %v", kind, err)
		}
	}
	// A root the server does not hold under the name is refused as well,
	// in the tenant that names "dev".
	other, err := OpenRoot(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(bg, other, EnrollOptions{Server: env.url, APIKey: env.contosoKey, User: "alice@contoso.com"}); problemCode(err) != "chain.untrusted_root" {
		t.Errorf("a phone of another development root: %v", err)
	}
}

// TestEnrollWithAdminEnrollment enrolls with an enrollment id and challenge
// given by an administrator, without the auth server's key.
func TestEnrollWithAdminEnrollment(t *testing.T) {
	env := newTestEnv(t, "")
	enr, err := env.contosoAdmin.StartEnrollment(bg, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, Kind: KindApple, Enrollment: enr.ID, Challenge: enr.Challenge})
	if err != nil {
		t.Fatal(err)
	}
	if st := ph.State(); st.User != "alice" || st.Tenant != "contoso" || ph.Path() != "" {
		t.Errorf("state: %+v", st)
	}
	// The challenge is the enrollment's: another one is refused.
	enr, err = env.contosoAdmin.StartEnrollment(bg, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Enroll(bg, env.root, EnrollOptions{Server: env.url, Enrollment: enr.ID, Challenge: []byte("not the challenge of the enrollment")})
	if code := problemCode(err); code == "" || !strings.Contains(code, "challenge") {
		t.Errorf("wrong challenge: %v", err)
	}
	for _, o := range []EnrollOptions{
		{Server: env.url, User: "alice"},
		{Server: env.url, APIKey: env.contosoKey},
		{Server: env.url, APIKey: env.contosoKey, User: "alice", Enrollment: "e"},
		{APIKey: env.contosoKey, User: "alice"},
		{Server: env.url, APIKey: env.contosoKey, User: "alice", Kind: "windows"},
	} {
		if _, err := Enroll(bg, env.root, o); err == nil || problemCode(err) != "" {
			t.Errorf("enroll with %+v: %v", o, err)
		}
	}
}

// TestAppleCounterPersists: an Apple phone's counter is saved with every
// proof and loaded back; a state rolled back to an older counter is
// refused by the server as a replay.
func TestAppleCounterPersists(t *testing.T) {
	env := newTestEnv(t, engine.ModeChoose)
	path := filepath.Join(env.dir, "phone.json")
	ph, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, Kind: KindApple, APIKey: env.contosoKey, User: "bob", State: path})
	if err != nil {
		t.Fatal(err)
	}
	if ph.State().Counter != 0 {
		t.Fatalf("counter after enrollment: %d", ph.State().Counter)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := ph.Pending(bg); err != nil {
			t.Fatal(err)
		}
		ph, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if c := ph.State().Counter; c != uint32(i+1) {
			t.Fatalf("counter after %d requests, reloaded: %d", i+1, c)
		}
	}
	start := startSignIn(t, env.contoso, "bob@contoso.com")
	s, err := ph.Attempt(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ph.Approve(bg, s, start.Number); err != nil || out.State != engine.StateApproved {
		t.Fatalf("approve after reloads: %+v, %v", out, err)
	}
	// Three requests, the pending one, then the answer: its proof and the
	// signed request that carries it.
	if c := ph.State().Counter; c != 6 {
		t.Errorf("counter after 6 proofs: %d", c)
	}

	// Rolled back: the server has seen higher counters.
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	ph, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ph.Pending(bg); problemCode(err) == "" {
		t.Errorf("a request with a counter the server has seen: %v", err)
	}
}

// TestCorruptState: a state file that is missing, not JSON, of another
// version, with a bad key or readable by others is refused with a clear
// error.
func TestCorruptState(t *testing.T) {
	env := newTestEnv(t, "")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if _, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, APIKey: env.contosoKey, User: "alice", State: good}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(field string, value any) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m[field]; !ok && value != nil {
			m[field] = value
		} else if value == nil {
			delete(m, field)
		} else {
			m[field] = value
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	key := m["key"].(string)
	for _, c := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"missing", nil, 0, "does not exist: enroll the phone first"},
		{"empty", []byte{}, 0o600, "corrupt: not a state file's JSON"},
		{"truncated", b[:len(b)/2], 0o600, "corrupt: not a state file's JSON"},
		{"trailing data", append(append([]byte{}, b...), "{}"...), 0o600, "data after the JSON object"},
		{"unknown field", edit("pin", "1234"), 0o600, `unknown field "pin"`},
		{"future version", edit("version", 2), 0o600, "version 2, this keybind reads version 1"},
		{"no version", edit("version", nil), 0o600, "version 0, this keybind reads version 1"},
		{"bad kind", edit("kind", "windows"), 0o600, `kind "windows"`},
		{"bad server", edit("server", "ftp://keybind.example"), 0o600, "not an http(s) URL"},
		{"no credential", edit("credential", ""), 0o600, "corrupt: no credential"},
		{"counter of an android phone", edit("counter", 3), 0o600, "keeps no counter"},
		{"bad key", edit("key", strings.Replace(key, "\n", "\nAAAA", 1)), 0o600, "corrupt: key:"},
		{"not a key", edit("key", "hello"), 0o600, "want one PEM PRIVATE KEY block"},
		{"negative counter", edit("counter", -1), 0o600, "corrupt: not a state file's JSON"},
		{"readable by others", b, 0o644, "chmod 600"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
		if c.content != nil {
			if err := os.WriteFile(path, c.content, c.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, c.mode)
		}
		_, err := Open(path)
		var se *StateError
		if !errors.As(err, &se) || se.Path != path || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a StateError with %q", c.name, err, c.want)
		}
		if c.name == "missing" && !se.Missing {
			t.Errorf("missing: not marked missing")
		}
	}
}
