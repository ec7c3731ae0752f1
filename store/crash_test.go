package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The crash tests run a workload shaped like keybind's — enrollments that
// create a device, a credential, its key-id registration, its index entry,
// its evidence and an audit record in one update; sign-ins whose attempt is
// created pending, then moved once to approved while the credential's
// counter rises — and crash it: by SIGKILL of a child process on a real
// directory (TestCrashKill), and by dropping unsynced data with Pebble's
// crash-clone file system (TestCrashClone). After every crash, each write
// that was acknowledged is there, no counter went backwards and no update
// is visible in part.

type crashCredential struct {
	Device  string `cbor:"1,keyasint"`
	User    string `cbor:"2,keyasint"`
	KeyID   []byte `cbor:"3,keyasint"`
	Counter uint64 `cbor:"4,keyasint"`
}

type crashAttempt struct {
	Credential string `cbor:"1,keyasint"`
	State      string `cbor:"2,keyasint"` // pending, approved
	Counter    uint64 `cbor:"3,keyasint"`
}

func crashEvidence(cred string) []byte {
	return bytes.Repeat([]byte("evidence of "+cred+";"), 40)
}

// crashWorkload runs writers until stop closes. ack is called after each
// acknowledged write with a line "enroll CRED" or "signin ATTEMPT CRED
// COUNTER".
// pause, when positive, is slept between writes (the in-memory file system
// is fast enough to make the checked state needlessly large otherwise).
func crashWorkload(s *Store, prefix string, writers int, pause time.Duration, stop <-chan struct{}, ack func(string)) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var creds []string
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if pause > 0 {
					time.Sleep(pause)
				}
				if len(creds) == 0 || r.IntN(3) == 0 {
					cred := fmt.Sprintf("%s-w%d-c%d", prefix, w, i)
					if crashEnroll(s, cred, fmt.Sprintf("user%d", w), i) == nil {
						creds = append(creds, cred)
						ack("enroll " + cred)
					}
					continue
				}
				cred := creds[r.IntN(len(creds))]
				attempt := fmt.Sprintf("%s-w%d-a%d", prefix, w, i)
				if counter, err := crashSignIn(s, attempt, cred); err == nil {
					ack(fmt.Sprintf("signin %s %s %d", attempt, cred, counter))
				}
			}
		}()
	}
	wg.Wait()
}

func crashEnroll(s *Store, cred, user string, i int) error {
	keyID := []byte("kid-" + cred)
	device := "dev-" + cred
	keys := []Key{KeyIDKey(keyID), CredentialKey(cred), DeviceKey(device)}
	return s.Update(keys, func(tx *Tx) error {
		if err := tx.Create(KeyIDKey(keyID), cred); err != nil {
			return err
		}
		if err := tx.Create(CredentialKey(cred), crashCredential{Device: device, User: user, KeyID: keyID}); err != nil {
			return err
		}
		if err := tx.Create(DeviceKey(device), "t"); err != nil {
			return err
		}
		if err := tx.Put(UserCredentialKey("t", user, cred), nil); err != nil {
			return err
		}
		if err := tx.PutEvidence(EvidenceKey(cred), crashEvidence(cred)); err != nil {
			return err
		}
		return tx.Audit(AuditRecord{Time: time.Now(), Tenant: "t", User: user, Event: "enroll.completed", Details: map[string]string{"credential": cred}})
	})
}

func crashSignIn(s *Store, attempt, cred string) (uint64, error) {
	ak := AttemptKey(attempt)
	err := s.Update([]Key{ak}, func(tx *Tx) error {
		return tx.Create(ak, crashAttempt{Credential: cred, State: "pending"})
	})
	if err != nil {
		return 0, err
	}
	var counter uint64
	ck := CredentialKey(cred)
	err = s.Update([]Key{ak, ck}, func(tx *Tx) error {
		var c crashCredential
		if err := tx.Get(ck, &c); err != nil {
			return err
		}
		pending := crashAttempt{Credential: cred, State: "pending"}
		counter = c.Counter + 1
		if err := tx.CompareAndSwap(ak, pending, crashAttempt{Credential: cred, State: "approved", Counter: counter}); err != nil {
			return err
		}
		c.Counter = counter
		if err := tx.Put(ck, c); err != nil {
			return err
		}
		return tx.Audit(AuditRecord{Time: time.Now(), Tenant: "t", User: c.User, Event: "signin.approved", Details: map[string]string{"attempt": attempt}})
	})
	return counter, err
}

// crashState is what the checker has learned across crashes.
type crashState struct {
	enrolled map[string]bool   // acknowledged enrollments
	signins  map[string]string // acknowledged attempt -> credential
	acked    map[string]uint64 // credential -> highest acknowledged counter
	seen     map[string]uint64 // credential -> counter read after the last crash
}

func newCrashState() *crashState {
	return &crashState{enrolled: map[string]bool{}, signins: map[string]string{}, acked: map[string]uint64{}, seen: map[string]uint64{}}
}

func (st *crashState) record(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "enroll":
		st.enrolled[f[1]] = true
	case len(f) == 4 && f[0] == "signin":
		n, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return err
		}
		st.signins[f[1]] = f[2]
		st.acked[f[2]] = max(st.acked[f[2]], n)
	default:
		return fmt.Errorf("bad ack line %q", line)
	}
	return nil
}

// check verifies s against everything acknowledged so far and against the
// whole-update invariants.
func (st *crashState) check(s *Store) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	creds := map[string]crashCredential{}
	err := s.Scan(Prefix(KindCredential), func(k Key, v []byte) error {
		var c crashCredential
		if err := Unmarshal(v, &c); err != nil {
			return err
		}
		creds[LastComponent(k)] = c
		return nil
	})
	if err != nil {
		return err
	}
	// Every credential is whole: key id registered to it, device, index
	// entry and evidence all there (they were written in one update).
	for id, c := range creds {
		var owner string
		if err := s.Get(KeyIDKey(c.KeyID), &owner); err != nil || owner != id {
			fail("credential %s: key id registration %q, %v", id, owner, err)
		}
		if ok, _ := (dbReader{s}).Has(DeviceKey(c.Device)); !ok {
			fail("credential %s: device missing", id)
		}
		if ok, _ := (dbReader{s}).Has(UserCredentialKey("t", c.User, id)); !ok {
			fail("credential %s: index entry missing", id)
		}
		if ev, err := s.Evidence(EvidenceKey(id)); err != nil || !bytes.Equal(ev, crashEvidence(id)) {
			fail("credential %s: evidence %d bytes, %v", id, len(ev), err)
		}
		if c.Counter < st.seen[id] {
			fail("credential %s: counter went back from %d to %d", id, st.seen[id], c.Counter)
		}
		st.seen[id] = c.Counter
	}
	// And no part of an enrollment exists without its credential.
	s.Scan(Prefix(KindKeyID), func(k Key, v []byte) error {
		var owner string
		if Unmarshal(v, &owner) != nil {
			fail("key id %x: undecodable", k)
		} else if _, ok := creds[owner]; !ok {
			fail("key id %x registered to missing credential %s", k, owner)
		}
		return nil
	})
	s.Scan(Prefix(KindEvidence), func(k Key, _ []byte) error {
		if _, ok := creds[LastComponent(k)]; !ok {
			fail("evidence without credential %s", LastComponent(k))
		}
		return nil
	})
	for id := range st.enrolled {
		if _, ok := creds[id]; !ok {
			fail("acknowledged enrollment %s lost", id)
		}
	}
	for id, n := range st.acked {
		if creds[id].Counter < n {
			fail("credential %s: counter %d below the acknowledged %d", id, creds[id].Counter, n)
		}
	}
	for attempt, cred := range st.signins {
		var a crashAttempt
		if err := s.Get(AttemptKey(attempt), &a); err != nil || a.State != "approved" || a.Credential != cred {
			fail("acknowledged sign-in %s lost: %+v %v", attempt, a, err)
		}
	}
	// Approved attempts and counters agree: an approval raised the counter
	// in the same update.
	s.Scan(Prefix(KindAttempt), func(k Key, v []byte) error {
		var a crashAttempt
		if err := Unmarshal(v, &a); err != nil {
			fail("attempt %s undecodable", LastComponent(k))
		} else if a.State == "approved" && creds[a.Credential].Counter < a.Counter {
			fail("attempt %s approved with counter %d, credential at %d", LastComponent(k), a.Counter, creds[a.Credential].Counter)
		}
		return nil
	})
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("… and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

// crashChildEnv names the directory a crash child writes to.
const crashChildEnv = "KEYBIND_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashChild opens the store, prints "ready", runs the workload printing one
// line per acknowledged write, and is killed by its parent.
func crashChild(dir string) int {
	mode := GroupCommit
	if os.Getenv("KEYBIND_STORE_CRASH_MODE") == SyncEachWrite.String() {
		mode = SyncEachWrite
	}
	s, err := Open(dir, Options{Durability: mode})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var mu sync.Mutex
	out := os.Stdout // unbuffered: a printed line has been written to the pipe
	fmt.Fprintln(out, "ready")
	crashWorkload(s, os.Getenv("KEYBIND_STORE_CRASH_PREFIX"), 4, 0, make(chan struct{}), func(line string) {
		mu.Lock()
		fmt.Fprintln(out, line)
		mu.Unlock()
	})
	return 0
}

// TestCrashKill SIGKILLs a child writing to a real Pebble directory at
// random points, hundreds of times, and checks the directory after each.
func TestCrashKill(t *testing.T) {
	// Under the race detector every cycle is several times slower; the
	// full count runs in the plain test run.
	cycles := 300
	if testing.Short() || raceEnabled {
		cycles = 40
	}
	if v := os.Getenv("KEYBIND_CRASH_CYCLES"); v != "" {
		cycles, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	st := newCrashState()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acks := 0
	for cycle := range cycles {
		mode := []Durability{GroupCommit, SyncEachWrite}[cycle%2]
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir,
			"KEYBIND_STORE_CRASH_MODE="+mode.String(),
			fmt.Sprintf("KEYBIND_STORE_CRASH_PREFIX=k%d", cycle))
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
			t.Fatalf("cycle %d: child did not start: %q %s", cycle, lines.Text(), stderr.String())
		}
		// Kill at a random point: sometimes at once, mostly mid-workload.
		time.Sleep(time.Duration(r.IntN(40_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for lines.Scan() {
			if err := st.record(lines.Text()); err != nil {
				t.Fatal(err)
			}
			acks++
		}
		io.Copy(io.Discard, stdout)
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended with %v, not by SIGKILL: %s", cycle, err, stderr.String())
		}
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cycle %d: reopening after SIGKILL: %v", cycle, err)
		}
		err = st.check(s)
		s.Close()
		if err != nil {
			t.Fatalf("cycle %d (%s): %v", cycle, mode, err)
		}
	}
	t.Logf("%d kill-restart cycles, %d acknowledged writes (%d enrollments, %d sign-ins), all present", cycles, acks, len(st.enrolled), len(st.signins))
	if len(st.enrolled) == 0 || len(st.signins) == 0 {
		t.Error("the children acknowledged no enrollment or no sign-in: nothing was tested")
	}
}

// TestCrashClone simulates power loss: while the workload runs on Pebble's
// crashable in-memory file system, it takes crash clones that keep only part
// of what was not synced, and checks a store opened on each clone.
func TestCrashClone(t *testing.T) {
	for _, mode := range []Durability{GroupCommit, SyncEachWrite} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s, err := Open("db", Options{FS: fs, Durability: mode})
			if err != nil {
				t.Fatal(err)
			}
			st := newCrashState()
			var mu sync.Mutex
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				crashWorkload(s, "c", 4, time.Millisecond, stop, func(line string) {
					mu.Lock()
					defer mu.Unlock()
					if err := st.record(line); err != nil {
						t.Error(err)
					}
				})
				close(done)
			}()
			r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
			clones := 30
			if testing.Short() || raceEnabled {
				clones = 8
			}
			for i := range clones {
				time.Sleep(time.Duration(r.IntN(20_000)) * time.Microsecond)
				// What was acknowledged before the clone must survive it.
				mu.Lock()
				snapshot := st.copy()
				mu.Unlock()
				crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: r.IntN(100), RNG: rand.New(rand.NewPCG(uint64(i), 9))})
				c, err := Open("db", Options{FS: crashed})
				if err != nil {
					t.Fatalf("clone %d: %v", i, err)
				}
				err = snapshot.check(c)
				c.Close()
				if err != nil {
					t.Fatalf("clone %d: %v", i, err)
				}
			}
			close(stop)
			<-done
			s.Close()
			t.Logf("%d crash clones, %d enrollments and %d sign-ins acknowledged", clones, len(st.enrolled), len(st.signins))
			if len(st.enrolled) == 0 || len(st.signins) == 0 {
				t.Error("no enrollment or no sign-in acknowledged: nothing was tested")
			}
		})
	}
}

func (st *crashState) copy() *crashState {
	c := newCrashState()
	for k, v := range st.enrolled {
		c.enrolled[k] = v
	}
	for k, v := range st.signins {
		c.signins[k] = v
	}
	for k, v := range st.acked {
		c.acked[k] = v
	}
	return c
}
