package engine

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestCrashKillEngine runs real enrollments (forged Android and App Attest
// attestations through the real verifiers) and sign-ins (start, fetch,
// signed answer) in a child process on a real Pebble directory, SIGKILLs it
// at a random point, and checks after each restart that every acknowledged
// enrollment and sign-in outcome is there, that App Attest counters never
// went backwards, and that no credential is half-written.

const engineCrashEnv = "KEYBIND_ENGINE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(engineCrashEnv); dir != "" {
		os.Exit(engineCrashChild(dir, os.Getenv("KEYBIND_ENGINE_CRASH_PREFIX")))
	}
	os.Exit(m.Run())
}

// engineCrashChild prints "ready", then one line per acknowledged write:
// "enroll CRED", "signin ATTEMPT STATE", "counter CRED N".
func engineCrashChild(dir, prefix string) int {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	android, err := forge.NewAndroidCA(forge.AndroidCAOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	apple, err := forge.NewAppAttestCA(time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	e, err := New(Config{Store: st, Verifiers: Verifiers(nil), Roots: map[string][]*x509.Certificate{
		rootAndroid: {android.Root.Cert}, rootApple: {apple.Root},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	p := testPolicy()
	p.Backoff.Free = 100
	if _, err := e.CreateTenant(ctx, Tenant{ID: "crash", Policy: p}); err != nil && CodeOf(err) != CodeTenantExists {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...) // unbuffered: written when printed
		mu.Unlock()
	}
	fmt.Fprintln(os.Stdout, "ready")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("%s-u%d", prefix, w)
			upn := user + "@crash.example"
			if _, err := e.CreateUser(ctx, "crash", User{ID: user, UPN: upn, MFAPush: true}); err != nil {
				return
			}
			var ph *phone
			for i := 0; ; i++ {
				if ph == nil || i%7 == 0 {
					if next := engineCrashEnroll(e, android, apple, user, w%2 == 1); next != nil {
						ph = next
						ack("enroll %s", ph.cred.ID)
					}
					if ph == nil {
						continue
					}
				}
				s, err := e.StartSignIn(ctx, SignInRequest{Tenant: "crash", Username: upn})
				if err != nil || s.Method != MethodPhone {
					continue
				}
				pend, err := e.PendingSignIn(ctx, ph.cred.ID)
				if err != nil {
					continue
				}
				decision, number := DecisionApprove, s.Number
				if i%3 == 2 {
					decision, number = DecisionDeny, 0
				}
				sig, err := ph.signAnswer(pend, decision, number)
				if err != nil {
					continue
				}
				out, err := e.AnswerSignIn(ctx, Answer{Attempt: pend.Attempt, Credential: ph.cred.ID, Decision: decision, Number: number, Signature: sig})
				if err == nil {
					ack("signin %s %s", out.Attempt, out.State)
					if ph.apple != nil {
						ack("counter %s %d", ph.cred.ID, ph.counter)
					}
				}
			}
		}()
	}
	wg.Wait()
	return 0
}

// engineCrashEnroll enrolls a new Android or App Attest key for user (nil
// when the user is at the install limit or the enrollment fails).
func engineCrashEnroll(e *Engine, android *forge.AndroidCA, apple *forge.AppAttestCA, user string, appleKey bool) *phone {
	enr, err := e.StartEnrollment(ctx, "crash", user)
	if err != nil {
		return nil
	}
	if appleKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil
		}
		ev, err := makeAppleEvidence(apple, enr.Challenge, key)
		if err != nil {
			return nil
		}
		cred, err := e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: ev})
		if err != nil {
			return nil
		}
		return &phone{cred: cred, apple: key}
	}
	ev, key, err := makeAndroidEvidence(android, enr.Challenge, forge.AndroidKey{UserAuth: true})
	if err != nil {
		return nil
	}
	cred, err := e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
	if err != nil {
		return nil
	}
	return &phone{cred: cred, key: key}
}

type engineCrashState struct {
	creds    map[string]bool
	outcomes map[string]string
	counters map[string]uint32 // acknowledged
	seen     map[string]uint32 // read after the previous crash
}

func (s *engineCrashState) record(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "enroll":
		s.creds[f[1]] = true
	case len(f) == 3 && f[0] == "signin":
		s.outcomes[f[1]] = f[2]
	case len(f) == 3 && f[0] == "counter":
		n, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return err
		}
		s.counters[f[1]] = max(s.counters[f[1]], uint32(n))
	default:
		return fmt.Errorf("bad line %q", line)
	}
	return nil
}

func (s *engineCrashState) check(e *Engine, st *store.Store) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for id := range s.creds {
		if _, err := e.GetCredential(ctx, "crash", id); err != nil {
			fail("acknowledged credential %s: %v", id, err)
		}
	}
	for id, state := range s.outcomes {
		if o, err := e.SignInOutcome(ctx, "crash", id); err != nil || o.State != state {
			fail("acknowledged outcome %s %s: %+v %v", id, state, o, err)
		}
	}
	creds, err := e.ListCredentials(ctx, "crash", "")
	if err != nil {
		return err
	}
	for _, c := range creds {
		if c.Counter < s.counters[c.ID] {
			fail("credential %s: counter %d below the acknowledged %d", c.ID, c.Counter, s.counters[c.ID])
		}
		if c.Counter < s.seen[c.ID] {
			fail("credential %s: counter went back from %d to %d", c.ID, s.seen[c.ID], c.Counter)
		}
		s.seen[c.ID] = c.Counter
		// Whole: key id registered to it, evidence, device account.
		var owner string
		if err := st.Get(store.KeyIDKey(c.KeyID), &owner); err != nil || owner != c.ID {
			fail("credential %s: key id %q %v", c.ID, owner, err)
		}
		if _, err := e.CredentialEvidence(ctx, "crash", c.ID); err != nil {
			fail("credential %s: evidence %v", c.ID, err)
		}
		if d, err := e.GetDevice(ctx, "crash", c.Device); err != nil || !strings.Contains(strings.Join(d.Creds, " "), c.ID) {
			fail("credential %s: device %+v %v", c.ID, d, err)
		}
	}
	// No key id without its credential, no device account without it.
	st.Scan(store.Prefix(store.KindKeyID), func(k store.Key, v []byte) error {
		var owner string
		store.Unmarshal(v, &owner)
		if ok, _ := st.Has(store.CredentialKey(owner)); !ok {
			fail("key id registered to missing credential %s", owner)
		}
		return nil
	})
	if len(errs) > 10 {
		errs = errs[:10]
	}
	return errors.Join(errs...)
}

func TestCrashKillEngine(t *testing.T) {
	cycles := 100
	if testing.Short() || raceEnabled {
		cycles = 15
	}
	if v := os.Getenv("KEYBIND_CRASH_CYCLES"); v != "" {
		cycles, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	state := &engineCrashState{creds: map[string]bool{}, outcomes: map[string]string{}, counters: map[string]uint32{}, seen: map[string]uint32{}}
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 3))
	acks := 0
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), engineCrashEnv+"="+dir, fmt.Sprintf("KEYBIND_ENGINE_CRASH_PREFIX=k%d", cycle))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child did not start: %s", cycle, stderr.String())
		}
		delay := time.Duration(r.IntN(80_000)) * time.Microsecond
		if raceEnabled {
			delay = 100*time.Millisecond + 4*delay // the race detector slows the child down
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		for lines.Scan() {
			if err := state.record(lines.Text()); err != nil {
				t.Fatal(err)
			}
			acks++
		}
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: child not killed: %s", cycle, stderr.String())
		}
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatalf("cycle %d: reopening: %v", cycle, err)
		}
		e, err := New(Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		err = state.check(e, st)
		st.Close()
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
	}
	t.Logf("%d kill-restart cycles, %d acknowledged writes: %d credentials, %d sign-in outcomes, all present", cycles, acks, len(state.creds), len(state.outcomes))
	if len(state.creds) == 0 || len(state.outcomes) == 0 {
		t.Error("nothing was acknowledged: nothing was tested")
	}
}
