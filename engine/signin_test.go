package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSignInMethods(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.Backoff.Free = 100 // this test is not about back-off
	p.Target = Target{Groups: []string{"staff"}}
	p.Federation = Federation{Domains: []string{"fed.contoso.com"}, SignInURL: "https://sts.contoso.com/adfs/ls?wa=signin", HonorLoginHint: true}
	env.tenant("contoso", p)
	env.user("contoso", "alice", "alice@contoso.com", "staff")
	env.user("contoso", "bob", "bob@contoso.com", "staff")
	env.user("contoso", "carol", "carol@contoso.com", "visitors")
	env.mustEnroll("contoso", "alice")

	start := func(req SignInRequest) *SignInStart {
		t.Helper()
		req.Tenant = "contoso"
		s, err := env.e.StartSignIn(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !s.PasswordFallback {
			t.Error("password fallback not offered")
		}
		return s
	}
	// Federated domain in the login hint: to the federation server.
	s := start(SignInRequest{Username: "dave@fed.contoso.com", LoginHint: "Dave@Fed.Contoso.com"})
	u, _ := url.Parse(s.FederationURL)
	if s.Method != MethodFederate || u.Host != "sts.contoso.com" || u.Query().Get("login_hint") != "Dave@Fed.Contoso.com" || u.Query().Get("wa") != "signin" {
		t.Errorf("federate: %+v", s)
	}
	// A hint outside the federated domains, or no hint: not federated.
	if s := start(SignInRequest{Username: "alice@contoso.com", LoginHint: "alice@contoso.com"}); s.Method != MethodPhone {
		t.Errorf("non-federated hint: %+v", s)
	}
	// Password, with the reason.
	for upn, reason := range map[string]Code{
		"carol@contoso.com": ReasonNotTargeted,
		"bob@contoso.com":   ReasonNoCredential,
		"zed@contoso.com":   ReasonUnknownUser,
	} {
		if s := start(SignInRequest{Username: upn}); s.Method != MethodPassword || s.Reason != reason || s.Attempt != "" || s.Number != 0 {
			t.Errorf("%s: %+v, want password for %s", upn, s, reason)
		}
	}
	// Phone: an attempt, the number, its expiry.
	s = start(SignInRequest{Username: "ALICE@contoso.com", Context: SignInContext{App: "Mail", IP: "192.0.2.1", Location: "Oslo"}})
	if s.Method != MethodPhone || s.Attempt == "" || s.Number < 10 || s.Number > 99 || s.Mode != ModeType || !s.ExpiresAt.Equal(t0.Add(120*time.Second)) {
		t.Errorf("phone: %+v", s)
	}
	// When the tenant does not honour login hints, the federated user gets
	// the normal flow.
	p.Federation.HonorLoginHint = false
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	if s := start(SignInRequest{Username: "alice@contoso.com", LoginHint: "alice@fed.contoso.com"}); s.Method != MethodPhone {
		t.Errorf("hint not honoured: %+v", s)
	}
	// Disabled: password for everyone.
	p.Enabled = false
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	if s := start(SignInRequest{Username: "alice@contoso.com"}); s.Method != MethodPassword || s.Reason != ReasonDisabled {
		t.Errorf("disabled: %+v", s)
	}
	// Bad requests.
	for name, req := range map[string]SignInRequest{
		"tenant":   {Tenant: "no tenant", Username: "a@b.c"},
		"username": {Tenant: "contoso", Username: "nobody"},
		"hint":     {Tenant: "contoso", Username: "a@b.c", LoginHint: "x\ny"},
		"context":  {Tenant: "contoso", Username: "a@b.c", Context: SignInContext{App: strings.Repeat("a", 300)}},
	} {
		_, err := env.e.StartSignIn(ctx, req)
		wantCode(t, err, CodeInvalid)
		_ = name
	}
	_, err := env.e.StartSignIn(ctx, SignInRequest{Tenant: "fabrikam", Username: "a@b.c"})
	wantCode(t, err, CodeTenantNotFound)
	ev := env.auditEvents("contoso", "")
	for _, want := range []string{"signin.federated", "signin.password:signin.not_targeted", "signin.password:signin.no_credential", "signin.password:user.not_found", "signin.started", "signin.password:signin.disabled"} {
		if !slices.Contains(ev, want) {
			t.Errorf("audit lacks %s: %v", want, ev)
		}
	}
}

func TestSignInApproveTypeMode(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	s := env.start("contoso", "alice@contoso.com")

	p, err := env.e.PendingSignIn(ctx, ph.cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Attempt != s.Attempt || p.Mode != ModeType || p.Choices != nil || p.Context.App != "Mail" || p.UPN != "alice@contoso.com" || len(p.Nonce) != 16 {
		t.Errorf("pending %+v", p)
	}
	// The phone never learns the number in type mode.
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "number") || strings.Contains(string(b), `"`+itoaTest(s.Number)+`"`) {
		t.Errorf("the pending attempt sent to the phone mentions the number: %s", b)
	}
	out, err := env.e.SignInOutcome(ctx, "contoso", s.Attempt)
	if err != nil || out.State != StatePending {
		t.Fatalf("outcome before the answer: %+v %v", out, err)
	}
	// The auth server waits while the phone answers.
	waited := make(chan *Outcome)
	go func() {
		o, err := env.e.WaitSignIn(ctx, "contoso", s.Attempt)
		if err != nil {
			t.Error(err)
		}
		waited <- o
	}()
	env.clock.Advance(30 * time.Second)
	out, err = env.e.AnswerSignIn(ctx, Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: ph.sign(t, p, DecisionApprove, s.Number)})
	if err != nil || out.State != StateApproved || out.Credential != ph.cred.ID || !out.DecidedAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("approve: %+v %v", out, err)
	}
	if o := <-waited; o.State != StateApproved {
		t.Errorf("WaitSignIn: %+v", o)
	}
	if out, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); out.State != StateApproved {
		t.Errorf("outcome: %+v", out)
	}
	// Answered once.
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionDeny, Signature: ph.sign(t, p, DecisionDeny, 0)})
	wantCode(t, err, CodeSignInNotPending)
	if KindOf(err) != KindConflict {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.PendingSignIn(ctx, ph.cred.ID)
	wantCode(t, err, CodeSignInNone)
	// Another tenant cannot read the outcome.
	_, err = env.e.SignInOutcome(ctx, "fabrikam", s.Attempt)
	wantCode(t, err, CodeSignInNotFound)
	c, _ := env.e.GetCredential(ctx, "contoso", ph.cred.ID)
	if !c.LastUsedAt.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("last used %v", c.LastUsedAt)
	}
	if ev := env.auditEvents("contoso", "alice"); !slices.Contains(ev, "signin.approved") {
		t.Errorf("audit %v", ev)
	}
}

func itoaTest(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestSignInChooseMode(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.NumberMatching = ModeChoose
	env.tenant("contoso", p)
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	for round := range 20 {
		s := env.start("contoso", "alice@contoso.com")
		if s.Mode != ModeChoose {
			t.Fatalf("mode %q", s.Mode)
		}
		pend, err := env.e.PendingSignIn(ctx, ph.cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		c := pend.Choices
		if len(c) != 3 || c[0] == c[1] || c[1] == c[2] || c[0] == c[2] || !slices.Contains(c, s.Number) {
			t.Fatalf("choices %v for %d", c, s.Number)
		}
		pick := s.Number
		if round%2 == 1 { // a wrong choice denies
			for _, n := range c {
				if n != s.Number {
					pick = n
				}
			}
		}
		out, err := env.e.AnswerSignIn(ctx, Answer{Attempt: pend.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: pick, Signature: ph.sign(t, pend, DecisionApprove, pick)})
		if round%2 == 0 && (err != nil || out.State != StateApproved) {
			t.Fatalf("right choice: %+v %v", out, err)
		}
		if round%2 == 1 {
			wantCode(t, err, CodeSignInWrongNum)
			if out == nil || out.State != StateDenied || out.Reason != ReasonWrongNumber {
				t.Fatalf("wrong choice: %+v", out)
			}
		}
	}
}

func TestWrongNumberDenies(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	s := env.start("contoso", "alice@contoso.com")
	wrong := s.Number%90 + 11 // another 2-digit number
	out, err := env.answer(ph, DecisionApprove, wrong)
	wantCode(t, err, CodeSignInWrongNum)
	if KindOf(err) != KindForbidden || out.State != StateDenied || out.Reason != ReasonWrongNumber {
		t.Fatalf("outcome %+v", out)
	}
	// The right number afterwards does not help: the attempt is over.
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: s.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: []byte{1}})
	if err == nil {
		t.Fatal("approved after a wrong number")
	}
	if o, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); o.State != StateDenied {
		t.Errorf("outcome %+v", o)
	}
}

func TestDenyWinsAndFraud(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	second, err := env.enrollApple("contoso", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	// Both phones get the attempt; one denies, the other's approve comes
	// later and loses.
	s := env.start("contoso", "alice@contoso.com")
	p1, _ := env.e.PendingSignIn(ctx, ph.cred.ID)
	p2, _ := env.e.PendingSignIn(ctx, second.cred.ID)
	if p1.Attempt != s.Attempt || p2.Attempt != s.Attempt {
		t.Fatal("the attempt did not go to both credentials")
	}
	out, err := env.e.AnswerSignIn(ctx, Answer{Attempt: s.Attempt, Credential: ph.cred.ID, Decision: DecisionDeny, Signature: ph.sign(t, p1, DecisionDeny, 0)})
	if err != nil || out.State != StateDenied || out.Reason != ReasonDeniedByUser {
		t.Fatalf("deny: %+v %v", out, err)
	}
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: s.Attempt, Credential: second.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: second.sign(t, p2, DecisionApprove, s.Number)})
	wantCode(t, err, CodeSignInNotPending)
	if o, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); o.State != StateDenied {
		t.Fatalf("deny did not win: %+v", o)
	}

	// Fraud: denies, flags the user, and says so in the audit log.
	s = env.start("contoso", "alice@contoso.com")
	out, err = env.answer(ph, DecisionFraud, 0)
	if err != nil || out.State != StateFraud || out.Reason != ReasonFraud {
		t.Fatalf("fraud: %+v %v", out, err)
	}
	u, _ := env.e.GetUser(ctx, "contoso", "alice")
	if u.FraudReports != 1 {
		t.Errorf("fraud reports %d", u.FraudReports)
	}
	page, _ := env.e.Audit(ctx, AuditQuery{Tenant: "contoso", User: "alice"})
	flagged := false
	for _, r := range page.Records {
		if r.Event == "signin.fraud_reported" && r.Details["flag"] == "fraud" && r.Details["attempt"] == s.Attempt {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("no fraud flag in the audit log: %+v", page.Records)
	}
}

func TestAnswerRefusals(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	env.user("contoso", "bob", "bob@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	bob := env.mustEnroll("contoso", "bob")
	s := env.start("contoso", "alice@contoso.com")
	p, _ := env.e.PendingSignIn(ctx, ph.cred.ID)

	answer := func(a Answer) error {
		_, err := env.e.AnswerSignIn(ctx, a)
		return err
	}
	good := Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: s.Number}
	// A signature by another key, or over other values.
	a := good
	a.Signature = bob.sign(t, p, DecisionApprove, s.Number)
	wantCode(t, answer(a), CodeSignInSignature)
	a.Signature = ph.sign(t, p, DecisionApprove, s.Number+1)
	wantCode(t, answer(a), CodeSignInSignature)
	a.Signature = ph.sign(t, p, DecisionDeny, 0)
	wantCode(t, answer(a), CodeSignInSignature)
	other := *p
	other.Nonce = make([]byte, 16)
	a.Signature = ph.sign(t, &other, DecisionApprove, s.Number)
	wantCode(t, answer(a), CodeSignInSignature)
	// Another user's credential.
	wantCode(t, answer(Answer{Attempt: p.Attempt, Credential: bob.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: bob.sign(t, p, DecisionApprove, s.Number)}), CodeSignInCredential)
	// Malformed answers.
	for name, a := range map[string]Answer{
		"decision":       {Attempt: p.Attempt, Credential: ph.cred.ID, Decision: "maybe", Signature: []byte{1}},
		"deny number":    {Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionDeny, Number: 12, Signature: []byte{1}},
		"no signature":   {Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionDeny},
		"long signature": {Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionDeny, Signature: make([]byte, MaxSignature+1)},
		"number":         {Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: 70000, Signature: []byte{1}},
		"attempt":        {Attempt: "", Credential: ph.cred.ID, Decision: DecisionDeny, Signature: []byte{1}},
	} {
		if err := answer(a); CodeOf(err) != CodeInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	wantCode(t, answer(Answer{Attempt: "nope", Credential: ph.cred.ID, Decision: DecisionDeny, Signature: []byte{1}}), CodeSignInNotFound)
	wantCode(t, answer(Answer{Attempt: p.Attempt, Credential: "nope", Decision: DecisionDeny, Signature: []byte{1}}), CodeCredentialNotFound)
	// None of it changed the attempt.
	if o, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); o.State != StatePending {
		t.Fatalf("a refused answer changed the attempt: %+v", o)
	}
	good.Signature = ph.sign(t, p, DecisionApprove, s.Number)
	if err := answer(good); err != nil {
		t.Fatalf("the good answer after the refused ones: %v", err)
	}
	if ev := env.auditEvents("contoso", "alice"); !slices.Contains(ev, "signin.answer_refused:signin.bad_signature") {
		t.Errorf("audit %v", ev)
	}
}

func TestAppAttestAnswersCounter(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph, err := env.enrollApple("contoso", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	s := env.start("contoso", "alice@contoso.com")
	if out, err := env.answer(ph, DecisionApprove, s.Number); err != nil || out.State != StateApproved {
		t.Fatalf("approve: %+v %v", out, err)
	}
	if c, _ := env.e.GetCredential(ctx, "contoso", ph.cred.ID); c.Counter != 1 {
		t.Errorf("counter %d, want 1", c.Counter)
	}
	// A replayed counter is refused and changes nothing.
	s = env.start("contoso", "alice@contoso.com")
	ph.counter = 0 // the next assertion carries counter 1 again
	_, err = env.answer(ph, DecisionApprove, s.Number)
	if CodeOf(err) != "assert.counter" && CodeOf(err) != CodeSignInReplay {
		t.Fatalf("replayed counter: %v", err)
	}
	if o, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); o.State != StatePending {
		t.Fatalf("attempt after the replay: %+v", o)
	}
	ph.counter = 5
	if out, err := env.answer(ph, DecisionApprove, s.Number); err != nil || out.State != StateApproved {
		t.Fatalf("higher counter: %+v %v", out, err)
	}
	if c, _ := env.e.GetCredential(ctx, "contoso", ph.cred.ID); c.Counter != 6 {
		t.Errorf("counter %d, want 6", c.Counter)
	}
	// An assertion for another app is refused.
	s = env.start("contoso", "alice@contoso.com")
	p := testPolicy()
	p.Attestation.AppAttest.AppIDs = []string{"TEAMID1234.com.other"}
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	_, err = env.answer(ph, DecisionApprove, s.Number)
	wantCode(t, err, "assert.app_id_mismatch")
}

func TestExpiryCancelReplace(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.Backoff.Free = 100 // this test is not about back-off
	env.tenant("contoso", p)
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")

	// Expiry: after 120 s nobody can answer, and waiting ends.
	s := env.start("contoso", "alice@contoso.com")
	pend, _ := env.e.PendingSignIn(ctx, ph.cred.ID)
	done := make(chan *Outcome)
	go func() {
		o, _ := env.e.WaitSignIn(ctx, "contoso", s.Attempt)
		done <- o
	}()
	time.Sleep(10 * time.Millisecond) // let the waiter arm its timer
	env.clock.Advance(119 * time.Second)
	select {
	case o := <-done:
		t.Fatalf("wait ended early: %+v", o)
	case <-time.After(20 * time.Millisecond):
	}
	env.clock.Advance(time.Second)
	if o := <-done; o.State != StateExpired || o.Reason != ReasonExpired {
		t.Fatalf("wait at expiry: %+v", o)
	}
	_, err := env.e.AnswerSignIn(ctx, Answer{Attempt: s.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: ph.sign(t, pend, DecisionApprove, s.Number)})
	wantCode(t, err, CodeSignInExpired)
	if KindOf(err) != KindGone {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.PendingSignIn(ctx, ph.cred.ID)
	wantCode(t, err, CodeSignInNone)

	// Cancel ("use your password instead"): the phone's answer then fails.
	s = env.start("contoso", "alice@contoso.com")
	pend, _ = env.e.PendingSignIn(ctx, ph.cred.ID)
	out, err := env.e.CancelSignIn(ctx, "contoso", s.Attempt)
	if err != nil || out.State != StateCancelled || out.Reason != ReasonCancelled {
		t.Fatalf("cancel: %+v %v", out, err)
	}
	if again, err := env.e.CancelSignIn(ctx, "contoso", s.Attempt); err != nil || again.State != StateCancelled {
		t.Errorf("cancel again: %+v %v", again, err)
	}
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: s.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: ph.sign(t, pend, DecisionApprove, s.Number)})
	wantCode(t, err, CodeSignInNotPending)
	_, err = env.e.CancelSignIn(ctx, "fabrikam", s.Attempt)
	wantCode(t, err, CodeSignInNotFound)

	// Cancel of an answered attempt is refused.
	s = env.start("contoso", "alice@contoso.com")
	env.answer(ph, DecisionDeny, 0)
	_, err = env.e.CancelSignIn(ctx, "contoso", s.Attempt)
	wantCode(t, err, CodeSignInNotPending)

	// One pending attempt per user: a new one replaces the old.
	first := env.start("contoso", "alice@contoso.com")
	oldPend, _ := env.e.PendingSignIn(ctx, ph.cred.ID)
	waitOld := make(chan *Outcome)
	go func() {
		o, _ := env.e.WaitSignIn(ctx, "contoso", first.Attempt)
		waitOld <- o
	}()
	second := env.start("contoso", "alice@contoso.com")
	if o := <-waitOld; o.State != StateCancelled || o.Reason != ReasonReplaced {
		t.Errorf("replaced attempt: %+v", o)
	}
	if p, _ := env.e.PendingSignIn(ctx, ph.cred.ID); p.Attempt != second.Attempt {
		t.Errorf("phone sees %s, want the new attempt", p.Attempt)
	}
	_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: first.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: first.Number, Signature: ph.sign(t, oldPend, DecisionApprove, first.Number)})
	wantCode(t, err, CodeSignInNotPending)

	// A long poll that times out returns the pending outcome and the
	// context's error.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	o, err := env.e.WaitSignIn(wctx, "contoso", second.Attempt)
	if !errors.Is(err, context.DeadlineExceeded) || o == nil || o.State != StatePending {
		t.Errorf("timed-out wait: %+v %v", o, err)
	}
	_, err = env.e.WaitSignIn(ctx, "contoso", "nope")
	wantCode(t, err, CodeSignInNotFound)
}

func TestBackoff(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy()) // back-off: 2 free, then 30 s doubling to an hour
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	start := func() (*SignInStart, error) {
		return env.e.StartSignIn(ctx, SignInRequest{Tenant: "contoso", Username: "alice@contoso.com"})
	}
	// Two unanswered attempts are free: after them, the next one waits 30 s.
	for range 2 {
		if _, err := start(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := start()
	wantCode(t, err, CodeSignInBackoff)
	var e *Error
	errors.As(err, &e)
	if e.Kind != KindTooManyRequests || e.RetryAfter != 30*time.Second {
		t.Fatalf("back-off %+v", e)
	}
	env.clock.Advance(29 * time.Second)
	_, err = start()
	wantCode(t, err, CodeSignInBackoff)
	env.clock.Advance(time.Second)
	if _, err := start(); err != nil {
		t.Fatalf("after 30 s: %v", err)
	}
	// Then 60 s.
	env.clock.Advance(59 * time.Second)
	_, err = start()
	wantCode(t, err, CodeSignInBackoff)
	env.clock.Advance(time.Second)
	if _, err := start(); err != nil {
		t.Fatalf("after 60 s: %v", err)
	}
	if backoffWait(Backoff{Free: 2, BaseSeconds: 30, MaxSeconds: 3600}, 20) != time.Hour {
		t.Error("the wait is not capped")
	}
	// An answer resets the count.
	env.clock.Advance(120 * time.Second)
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.answer(ph, DecisionDeny, 0); err != nil {
		t.Fatal(err)
	}
	_ = s
	for range 2 {
		if _, err := start(); err != nil {
			t.Fatalf("after an answer: %v", err)
		}
	}
	// A quiet period of the maximum forgives too.
	_, err = start()
	wantCode(t, err, CodeSignInBackoff)
	env.clock.Advance(time.Hour)
	if _, err := start(); err != nil {
		t.Fatalf("after an hour: %v", err)
	}
	if ev := env.auditEvents("contoso", "alice"); !slices.Contains(ev, "signin.refused:signin.backoff") {
		t.Errorf("audit %v", ev)
	}
}

func TestPolicyCheckedAtEverySignIn(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.Target = Target{Groups: []string{"staff"}}
	env.tenant("contoso", p)
	env.user("contoso", "alice", "alice@contoso.com", "staff")
	ph := env.mustEnroll("contoso", "alice")
	s := env.start("contoso", "alice@contoso.com")
	// Removed from the target while the attempt is pending: the approval is
	// refused and the attempt denied.
	env.e.UpdateUser(ctx, "contoso", User{ID: "alice", UPN: "alice@contoso.com", MFAPush: true})
	_, err := env.answer(ph, DecisionApprove, s.Number)
	wantCode(t, err, CodeSignInNotTarget)
	if o, _ := env.e.SignInOutcome(ctx, "contoso", s.Attempt); o.State != StateDenied || o.Reason != ReasonNotTargeted {
		t.Errorf("outcome %+v", o)
	}
	// And the next sign-in is a password one.
	if s := env.start("contoso", "alice@contoso.com"); s.Method != MethodPassword || s.Reason != ReasonNotTargeted {
		t.Errorf("after removal: %+v", s)
	}
	// Back in the target: phone again.
	env.e.UpdateUser(ctx, "contoso", User{ID: "alice", UPN: "alice@contoso.com", Groups: []string{"staff"}, MFAPush: true})
	if s := env.start("contoso", "alice@contoso.com"); s.Method != MethodPhone {
		t.Errorf("back in the target: %+v", s)
	}
	// A deny is always accepted, targeted or not.
	env.e.UpdateUser(ctx, "contoso", User{ID: "alice", UPN: "alice@contoso.com", MFAPush: true})
	if out, err := env.answer(ph, DecisionDeny, 0); err != nil || out.State != StateDenied {
		t.Errorf("deny while untargeted: %+v %v", out, err)
	}
}
