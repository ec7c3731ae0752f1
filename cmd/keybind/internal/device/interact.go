package device

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
)

// WritePending writes the pending sign-ins as the phone shows them: the
// attempt, who signs in, the context the server gives (app, IP, location
// and whatever else it holds), the number choices (choose mode) or the
// request to type the login page's number (type mode), and the time left.
func WritePending(w io.Writer, list []client.PendingSignIn, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no sign-in is waiting")
		return
	}
	for i, s := range list {
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeAttempt(w, s, now)
	}
}

func writeAttempt(w io.Writer, s client.PendingSignIn, now time.Time) {
	fmt.Fprintf(w, "sign-in %s\n", s.Attempt)
	fmt.Fprintf(w, "  user:     %s (%s, tenant %s)\n", s.UPN, s.User, s.Tenant)
	for _, kv := range contextFields(s.Context) {
		fmt.Fprintf(w, "  %-9s %s\n", kv[0]+":", kv[1])
	}
	if s.Mode == engine.ModeChoose {
		nums := make([]string, len(s.Choices))
		for i, n := range s.Choices {
			nums[i] = strconv.Itoa(n)
		}
		fmt.Fprintf(w, "  numbers:  %s (pick the one the sign-in page shows)\n", strings.Join(nums, "  "))
	} else {
		fmt.Fprintf(w, "  number:   type the number the sign-in page shows\n")
	}
	left := s.ExpiresAt.Sub(now).Round(time.Second)
	fmt.Fprintf(w, "  expires:  %s (in %s)\n", s.ExpiresAt.UTC().Format(time.RFC3339), max(left, 0))
}

// contextFields returns the context's non-empty fields as name/value
// pairs: app, browser, ip, location first, then any other the server
// gives, by name.
func contextFields(c engine.SignInContext) [][2]string {
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var names []string
	for k, v := range m {
		if s := fmt.Sprint(v); s != "" {
			names = append(names, k)
		}
	}
	rank := func(k string) int {
		if i := slices.Index([]string{"app", "browser", "ip", "location"}, k); i >= 0 {
			return i
		}
		return 100
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	out := make([][2]string, len(names))
	for i, k := range names {
		label := k
		if k == "ip" {
			label = "IP"
		}
		out[i] = [2]string{label, fmt.Sprint(m[k])}
	}
	return out
}

// InteractOptions tune Interact.
type InteractOptions struct {
	// Poll is how often the server is asked for pending sign-ins (default
	// one second).
	Poll time.Duration
	// Now is the clock of the time left; nil means time.Now.
	Now func() time.Time
}

// Interact is the phone's screen on a terminal: it asks the server for
// pending sign-ins, shows each new one on out with its context and
// numbers, and reads the person's answer from in, one line each: a number
// approves with it, "d" denies, "f" reports fraud, "q" quits. A line read
// while nothing waits is refused, never kept for a later sign-in. It
// returns nil on "q" or at the end of in (so a pipe drives it as well as a
// terminal), the context's error when ctx ends, and the error of a
// request the server refused (a *client.Problem) or that failed. Answers
// the server refuses (a wrong number, an attempt no longer pending) are
// shown and the phone goes on.
func (p *Phone) Interact(ctx context.Context, in io.Reader, out io.Writer, opts InteractOptions) error {
	err := p.interact(ctx, in, out, opts)
	if err != nil && ctx.Err() != nil {
		// A request cut short by the end of ctx.
		return ctx.Err()
	}
	return err
}

func (p *Phone) interact(ctx context.Context, in io.Reader, out io.Writer, opts InteractOptions) error {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	lines := make(chan string)
	readDone := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- strings.TrimSpace(sc.Text()):
			case <-stop:
				return
			}
		}
		readDone <- sc.Err()
	}()

	st := p.State()
	fmt.Fprintf(out, "phone %s (%s) of %s in tenant %s, at %s\n", st.Credential, st.Kind, st.User, st.Tenant, st.Server)
	fmt.Fprintf(out, "waiting for sign-ins; answer with the number, d (deny), f (fraud) or q (quit)\n")
	var shown *client.PendingSignIn
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	poll := func() error {
		list, err := p.Pending(ctx)
		if err != nil {
			return err
		}
		var cur *client.PendingSignIn
		if len(list) > 0 {
			cur = &list[0]
		}
		switch {
		case cur == nil && shown != nil:
			fmt.Fprintf(out, "sign-in %s is no longer waiting\n", shown.Attempt)
		case cur != nil && (shown == nil || shown.Attempt != cur.Attempt):
			fmt.Fprintln(out)
			writeAttempt(out, *cur, now())
			fmt.Fprintf(out, "answer (number, d, f, q)> ")
		}
		shown = cur
		return nil
	}
	if err := poll(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readDone:
			if err == nil && shown != nil {
				fmt.Fprintln(out)
			}
			return err
		case <-tick.C:
			if err := poll(); err != nil {
				return err
			}
		case line := <-lines:
			if line == "" {
				continue
			}
			if strings.EqualFold(line, "q") {
				return nil
			}
			if shown == nil {
				fmt.Fprintf(out, "no sign-in is waiting: %q ignored\n", line)
				continue
			}
			var outcome *engine.Outcome
			var err error
			switch strings.ToLower(line) {
			case "d", "deny":
				outcome, err = p.Deny(ctx, *shown)
			case "f", "fraud":
				outcome, err = p.Fraud(ctx, *shown)
			default:
				n, perr := strconv.Atoi(line)
				if perr != nil || n < 0 {
					fmt.Fprintf(out, "%q: answer with the number, d, f or q\nanswer (number, d, f, q)> ", line)
					continue
				}
				outcome, err = p.Approve(ctx, *shown, n)
			}
			if err := report(out, shown.Attempt, outcome, err); err != nil {
				return err
			}
			// Answered, or refused for good: the next poll shows what
			// waits next (the same attempt again if the answer did not
			// count).
			shown = nil
			if err := poll(); err != nil {
				return err
			}
		}
	}
}

// report writes an answer's outcome. It returns err when the phone cannot
// go on (the server refuses the phone itself, or cannot be reached).
func report(out io.Writer, attempt string, o *engine.Outcome, err error) error {
	var prob *client.Problem
	switch {
	case err == nil:
		fmt.Fprintf(out, "sign-in %s: %s\n", attempt, describeOutcome(o))
		return nil
	case errors.As(err, &prob) && strings.HasPrefix(prob.Code, "signin."):
		fmt.Fprintf(out, "sign-in %s: refused: %s (%s)\n", attempt, prob.Code, prob.Detail)
		return nil
	}
	return fmt.Errorf("answering sign-in %s: %w", attempt, err)
}

// describeOutcome is one line about an outcome.
func describeOutcome(o *engine.Outcome) string {
	if o.Reason != "" {
		return fmt.Sprintf("%s (%s)", o.State, o.Reason)
	}
	return o.State
}
