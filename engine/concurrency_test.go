package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/store"
)

// TestConcurrentSignIns drives one user from many sides at once: auth
// servers starting, cancelling and waiting on sign-ins, and three phones
// (two Android, one App Attest) answering them — approve with the right or a
// wrong number, deny, fraud — and checks the state machine: an attempt is
// answered at most once, its final state is the one its single successful
// answer set, an approval always carried the right number, one attempt at
// most is pending, the App Attest counter only rose, and every waiter saw
// the final state. Run it with -race.
func TestConcurrentSignIns(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.Backoff.Free = 100 // the most allowed; back-off has its own test
	env.tenant("contoso", p)
	env.user("contoso", "alice", "alice@contoso.com")
	phones := []*phone{env.mustEnroll("contoso", "alice"), env.mustEnroll("contoso", "alice")}
	apple, err := env.enrollApple("contoso", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	phones = append(phones, apple)

	starts, answersPerPhone := 60, 60
	if testing.Short() {
		starts, answersPerPhone = 20, 20
	}
	type answered struct {
		phone    int
		decision string
		right    bool
		state    string
	}
	var mu sync.Mutex
	numbers := map[string]int{}          // attempt -> number shown
	successes := map[string][]answered{} // attempt -> answers that changed it
	cancelled := map[string]bool{}       // attempts a cancel succeeded on
	waited := map[string]string{}        // attempt -> final state a waiter saw
	unexpected := func(who string, err error) {
		t.Errorf("%s: unexpected error %v", who, err)
	}

	var wg sync.WaitGroup
	stopPhones := make(chan struct{})
	// Auth servers.
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(s), 1))
			for range starts / 4 {
				st, err := env.e.StartSignIn(ctx, SignInRequest{Tenant: "contoso", Username: "alice@contoso.com"})
				if err != nil {
					unexpected("start", err)
					continue
				}
				if st.Method != MethodPhone {
					t.Errorf("start: method %s", st.Method)
					continue
				}
				mu.Lock()
				numbers[st.Attempt] = st.Number
				mu.Unlock()
				switch r.IntN(4) {
				case 0:
					out, err := env.e.CancelSignIn(ctx, "contoso", st.Attempt)
					switch CodeOf(err) {
					case "":
						if out.State == StateCancelled && out.Reason == ReasonCancelled {
							mu.Lock()
							cancelled[st.Attempt] = true
							mu.Unlock()
						}
					case CodeSignInNotPending:
					default:
						unexpected("cancel", err)
					}
				case 1:
					wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
					out, err := env.e.WaitSignIn(wctx, "contoso", st.Attempt)
					cancel()
					if err == nil {
						mu.Lock()
						waited[st.Attempt] = out.State
						mu.Unlock()
					} else if err != context.DeadlineExceeded {
						unexpected("wait", err)
					}
				}
				time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
			}
		}()
	}
	// Phones.
	var phoneWG sync.WaitGroup
	for i, ph := range phones {
		phoneWG.Add(1)
		go func() {
			defer phoneWG.Done()
			r := rand.New(rand.NewPCG(uint64(i), 2))
			for n := 0; n < answersPerPhone; {
				select {
				case <-stopPhones:
					return
				default:
				}
				pend, err := env.e.PendingSignIn(ctx, ph.cred.ID)
				if CodeOf(err) == CodeSignInNone {
					time.Sleep(time.Millisecond)
					continue
				} else if err != nil {
					unexpected("fetch", err)
					return
				}
				n++
				mu.Lock()
				right := numbers[pend.Attempt]
				mu.Unlock()
				decision, number, isRight := DecisionApprove, right, true
				switch r.IntN(6) {
				case 0:
					decision, number, isRight = DecisionDeny, 0, false
				case 1:
					decision, number, isRight = DecisionFraud, 0, false
				case 2:
					number, isRight = right%90+11, false
				}
				if right == 0 && decision == DecisionApprove { // the start has not recorded it yet: guess
					number, isRight = 42, false
				}
				sig := ph.sign(t, pend, decision, number)
				out, err := env.e.AnswerSignIn(ctx, Answer{Attempt: pend.Attempt, Credential: ph.cred.ID, Decision: decision, Number: number, Signature: sig})
				switch CodeOf(err) {
				case "", CodeSignInWrongNum:
					mu.Lock()
					successes[pend.Attempt] = append(successes[pend.Attempt], answered{phone: i, decision: decision, right: isRight && number == right, state: out.State})
					mu.Unlock()
				case CodeSignInNotPending, CodeSignInExpired:
				default:
					unexpected(fmt.Sprintf("phone %d answer", i), err)
				}
			}
		}()
	}
	wg.Wait()
	close(stopPhones)
	phoneWG.Wait()

	pending := 0
	for id, number := range numbers {
		o, err := env.e.SignInOutcome(ctx, "contoso", id)
		if err != nil {
			t.Fatalf("outcome of %s: %v", id, err)
		}
		wins := successes[id]
		switch {
		case len(wins) > 1:
			t.Errorf("attempt %s answered %d times: %+v", id, len(wins), wins)
		case len(wins) == 1:
			w := wins[0]
			if o.State != w.state || cancelled[id] {
				t.Errorf("attempt %s: final %s, the answer set %s (cancelled %v)", id, o.State, w.state, cancelled[id])
			}
			if o.State == StateApproved && (w.decision != DecisionApprove || !w.right) {
				t.Errorf("attempt %s approved by %+v (number %d)", id, w, number)
			}
			if w.decision == DecisionApprove && !w.right && o.State != StateDenied {
				t.Errorf("attempt %s: wrong number ended %s", id, o.State)
			}
		case cancelled[id]:
			if o.State != StateCancelled || o.Reason != ReasonCancelled {
				t.Errorf("attempt %s cancelled, final %+v", id, o)
			}
		default:
			if o.State == StateApproved || o.State == StateDenied || o.State == StateFraud {
				t.Errorf("attempt %s is %s with no answer recorded", id, o.State)
			}
		}
		if o.State == StatePending {
			pending++
		}
		if w, ok := waited[id]; ok && w != o.State {
			t.Errorf("attempt %s: a waiter saw %s, final %s", id, w, o.State)
		}
	}
	if pending > 1 {
		t.Errorf("%d attempts pending for one user", pending)
	}
	var st signInState
	if err := env.st.Get(store.SignInStateKey("contoso", "alice"), &st); err != nil {
		t.Fatal(err)
	}
	if o, _ := env.e.SignInOutcome(ctx, "contoso", st.Pending); pending == 1 && o.State != StatePending {
		t.Errorf("the pending attempt is not the user's current one")
	}
	c, _ := env.e.GetCredential(ctx, "contoso", apple.cred.ID)
	accepted := 0
	for _, ws := range successes {
		for _, w := range ws {
			if w.phone == 2 {
				accepted++
			}
		}
	}
	if c.Counter < uint32(accepted) || c.Counter > apple.counter {
		t.Errorf("App Attest counter %d: %d answers accepted, %d signed", c.Counter, accepted, apple.counter)
	}
	total := 0
	for _, ws := range successes {
		total += len(ws)
	}
	t.Logf("%d attempts, %d answered, %d cancelled, %d waited on", len(numbers), total, len(cancelled), len(waited))
	if total == 0 {
		t.Error("no answer succeeded: nothing was tested")
	}
}
