package device

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/engine"
)

// syncBuffer is an output written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until out holds want after offset from, and returns the
// offset after it.
func waitFor(t *testing.T, out *syncBuffer, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := out.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after offset %d:\n%s", want, from, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInteract drives the terminal mode through a pipe: a line while
// nothing waits is ignored, a sign-in is shown with its context and
// numbers, the right number approves, a wrong one is refused, d denies, f
// reports fraud, a cancelled sign-in disappears, q quits.
func TestInteract(t *testing.T) {
	env := newTestEnv(t, engine.ModeChoose)
	ph, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, Kind: KindApple, APIKey: env.contosoKey, User: "alice", State: filepath.Join(env.dir, "phone.json")})
	if err != nil {
		t.Fatal(err)
	}
	in, typed := io.Pipe()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- ph.Interact(bg, in, out, InteractOptions{Poll: 50 * time.Millisecond}) }()
	typeLine := func(s string) {
		if _, err := io.WriteString(typed, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	at := waitFor(t, out, 0, "waiting for sign-ins")
	typeLine("42")
	at = waitFor(t, out, at, `no sign-in is waiting: "42" ignored`)

	show := func() (start string, number int, choices string) {
		t.Helper()
		s := startSignIn(t, env.contoso, "alice@contoso.com")
		at = waitFor(t, out, at, "sign-in "+s.Attempt)
		prompt := waitFor(t, out, at, "answer (number, d, f, q)> ")
		shown := out.String()[at:prompt]
		for _, want := range []string{"alice@contoso.com", "app:      Contoso Mail", "IP:       203.0.113.7", "location: Lisbon, Portugal", strconv.Itoa(s.Number)} {
			if !strings.Contains(shown, want) {
				t.Errorf("sign-in shown without %q:\n%s", want, shown)
			}
		}
		at = prompt
		return s.Attempt, s.Number, shown
	}

	attempt, number, _ := show()
	typeLine("yes")
	at = waitFor(t, out, at, `"yes": answer with the number, d, f or q`)
	typeLine(strconv.Itoa(number))
	at = waitFor(t, out, at, "sign-in "+attempt+": approved")
	if o := outcome(t, env.contoso, attempt); o.State != engine.StateApproved {
		t.Errorf("after the right number: %+v", o)
	}

	attempt, number, _ = show()
	wrong := (number+1)%90 + 10
	typeLine(strconv.Itoa(wrong))
	at = waitFor(t, out, at, "sign-in "+attempt+": refused: signin.wrong_number")
	if o := outcome(t, env.contoso, attempt); o.State != engine.StateDenied {
		t.Errorf("after a wrong number: %+v", o)
	}

	for line, want := range map[string]string{"d": engine.StateDenied, "f": engine.StateFraud} {
		attempt, _, _ = show()
		typeLine(line)
		at = waitFor(t, out, at, fmt.Sprintf("sign-in %s: %s", attempt, want))
		if o := outcome(t, env.contoso, attempt); o.State != want {
			t.Errorf("after %q: %+v", line, o)
		}
	}

	attempt, _, _ = show()
	if _, err := env.contoso.CancelSignIn(bg, attempt); err != nil {
		t.Fatal(err)
	}
	at = waitFor(t, out, at, "sign-in "+attempt+" is no longer waiting")

	typeLine("q")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after q: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("q did not end the terminal mode")
	}

	// The counter used by all of this is on disk.
	again, err := Open(ph.Path())
	if err != nil {
		t.Fatal(err)
	}
	if again.State().Counter != ph.State().Counter || again.State().Counter < 10 {
		t.Errorf("counter on disk %d, in memory %d", again.State().Counter, ph.State().Counter)
	}
}

// TestInteractPipe: all of the input at once, as `echo 42 | keybind
// device interactive` gives it, answers the sign-in already waiting, and
// the end of the input ends the terminal mode; ending ctx ends it too.
func TestInteractPipe(t *testing.T) {
	env := newTestEnv(t, engine.ModeType)
	ph, err := Enroll(bg, env.root, EnrollOptions{Server: env.url, APIKey: env.contosoKey, User: "bob@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	start := startSignIn(t, env.contoso, "bob@contoso.com")
	var out syncBuffer
	if err := ph.Interact(bg, strings.NewReader(strconv.Itoa(start.Number)+"\n"), &out, InteractOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "type the number the sign-in page shows") || !strings.Contains(out.String(), start.Attempt+": approved") {
		t.Errorf("output:\n%s", out.String())
	}
	if o := outcome(t, env.contoso, start.Attempt); o.State != engine.StateApproved {
		t.Errorf("outcome: %+v", o)
	}

	in, typed := io.Pipe()
	defer typed.Close()
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	if err := ph.Interact(ctx, in, io.Discard, InteractOptions{Poll: 20 * time.Millisecond}); err != context.DeadlineExceeded {
		t.Errorf("Interact after its context ended: %v", err)
	}
}
