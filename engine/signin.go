package engine

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/store"
)

// Sign-in methods (SignInStart.Method): exactly one per sign-in.
const (
	MethodFederate = "federate" // go to the federation server
	MethodPassword = "password" // phone sign-in does not apply: use the password
	MethodPhone    = "phone"    // an attempt was sent to the user's phone
)

// Reasons an attempt ended, or why a sign-in fell back to the password
// (Outcome.Reason, SignInStart.Reason).
const (
	ReasonDisabled     Code = "signin.disabled"       // phone sign-in is off in the tenant
	ReasonNotTargeted  Code = "signin.not_targeted"   // the user is outside the policy's target
	ReasonNoCredential Code = "signin.no_credential"  // the user has no usable credential
	ReasonUnknownUser  Code = "user.not_found"        // no user with that name
	ReasonDeniedByUser Code = "signin.denied_by_user" // the person denied it
	ReasonWrongNumber  Code = CodeSignInWrongNum      // the person typed or chose a wrong number
	ReasonFraud        Code = "signin.fraud_reported" // the person reported it as fraud
	ReasonCancelled    Code = "signin.cancelled"      // the auth server cancelled it (password instead)
	ReasonReplaced     Code = "signin.replaced"       // a newer attempt for the user replaced it
	ReasonExpired      Code = CodeSignInExpired       // nobody answered in time
)

// SignInRequest is the auth server's request to start a sign-in.
type SignInRequest struct {
	Tenant string
	// Username is the UPN the person typed.
	Username string
	// LoginHint, when in a federated domain the tenant honours, sends the
	// user to the federation server.
	LoginHint string
	// Context is shown on the phone.
	Context SignInContext
}

// SignInStart is the answer to StartSignIn: exactly one method.
type SignInStart struct {
	Method string `json:"method"`
	// Reason says why the method is "password".
	Reason Code `json:"reason,omitempty"`
	// FederationURL is where a "federate" sign-in goes.
	FederationURL string `json:"federation_url,omitempty"`
	// Attempt, Number, Mode and ExpiresAt describe a "phone" sign-in: the
	// login page shows Number until ExpiresAt.
	Attempt   string    `json:"attempt,omitempty"`
	Number    int       `json:"number,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// PasswordFallback: "use your password instead" is always offered.
	PasswordFallback bool `json:"password_fallback"`
}

// StartSignIn decides how a person signs in and, for phone sign-in,
// creates the attempt (replacing the user's pending one). The answer is
// federate, password (with a reason) or phone. Errors: input.invalid,
// tenant.not_found, signin.backoff (with RetryAfter: too many unanswered
// attempts in a row).
func (e *Engine) StartSignIn(ctx context.Context, req SignInRequest) (*SignInStart, error) {
	if err := checkID("tenant", req.Tenant); err != nil {
		return nil, err
	}
	if err := checkUPN(req.Username); err != nil {
		return nil, err
	}
	if req.LoginHint != "" {
		if err := checkText("login_hint", req.LoginHint, MaxNameLength); err != nil {
			return nil, err
		}
	}
	for what, v := range map[string]string{"app": req.Context.App, "ip": req.Context.IP, "location": req.Context.Location} {
		if err := checkText("context "+what, v, MaxNameLength); err != nil {
			return nil, err
		}
	}
	t, err := e.tenant(req.Tenant)
	if err != nil {
		return nil, err
	}
	policy := t.Policy.Effective()
	if req.LoginHint != "" && policy.Federation.federates(req.LoginHint) {
		u, err := url.Parse(policy.Federation.SignInURL)
		if err != nil {
			return nil, errorf(CodePolicyInvalid, KindInternal, "federation sign_in_url: %v", err)
		}
		q := u.Query()
		q.Set("login_hint", req.LoginHint)
		u.RawQuery = q.Encode()
		e.st.Update(nil, func(tx *store.Tx) error {
			return e.audit(tx, t.ID, "", "signin.federated", "", ActorAuthServer, map[string]string{"login_hint": req.LoginHint})
		})
		return &SignInStart{Method: MethodFederate, FederationURL: u.String(), PasswordFallback: true}, nil
	}
	password := func(user string, reason Code) (*SignInStart, error) {
		e.st.Update(nil, func(tx *store.Tx) error {
			return e.audit(tx, t.ID, user, "signin.password", reason, ActorAuthServer, map[string]string{"username": req.Username})
		})
		return &SignInStart{Method: MethodPassword, Reason: reason, PasswordFallback: true}, nil
	}
	if !policy.Enabled {
		return password("", ReasonDisabled)
	}
	u, err := e.UserByUPN(ctx, t.ID, req.Username)
	if CodeOf(err) == CodeUserNotFound {
		return password("", ReasonUnknownUser)
	} else if err != nil {
		return nil, err
	}
	if !policy.Target.Includes(u.Groups) {
		return password(u.ID, ReasonNotTargeted)
	}
	creds, err := e.usableCredentials(t.ID, u.ID)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		return password(u.ID, ReasonNoCredential)
	}
	att, err := e.newAttempt(t.ID, u, creds, policy, req.Context)
	if err != nil {
		if CodeOf(err) == CodeSignInBackoff {
			e.auditRefusal(t.ID, u.ID, "signin.refused", err, ActorAuthServer, nil)
		}
		return nil, err
	}
	return &SignInStart{Method: MethodPhone, Attempt: att.ID, Number: att.Number, Mode: att.Mode, ExpiresAt: att.ExpiresAt, PasswordFallback: true}, nil
}

// usableCredentials returns the ids of a user's credentials that may
// answer: not disabled, on a device not disabled in the tenant.
func (e *Engine) usableCredentials(tenant, user string) ([]string, error) {
	creds, err := e.userCredentials(tenant, user)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range creds {
		if c.Disabled {
			continue
		}
		var td tenantDevice
		if err := e.st.Get(store.TenantDeviceKey(tenant, c.Device), &td); err != nil || td.Disabled {
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// number returns a uniformly random 2-digit number (10 to 99).
func (e *Engine) number() (int, error) {
	var b [1]byte
	for {
		if err := e.random(b[:]); err != nil {
			return 0, err
		}
		if b[0] < 180 { // 180 = 2*90: no bias
			return 10 + int(b[0])%90, nil
		}
	}
}

// numbers returns the number to show and, in choose mode, three distinct
// choices (the right one among them) in random order.
func (e *Engine) numbers(mode string) (int, []int, error) {
	right, err := e.number()
	if err != nil || mode != ModeChoose {
		return right, nil, err
	}
	choices := []int{right}
	for len(choices) < 3 {
		n, err := e.number()
		if err != nil {
			return 0, nil, err
		}
		if !slices.Contains(choices, n) {
			choices = append(choices, n)
		}
	}
	for i := len(choices) - 1; i > 0; i-- {
		var b [1]byte
		if err := e.random(b[:]); err != nil {
			return 0, nil, err
		}
		j := int(b[0]) % (i + 1) // at most 3 choices: the bias of 256 % 3 is negligible for an order
		choices[i], choices[j] = choices[j], choices[i]
	}
	return right, choices, nil
}

// backoffWait is how long after the last start a new attempt must wait
// when unanswered attempts are in a row.
func backoffWait(b Backoff, unanswered int) time.Duration {
	if unanswered < b.Free {
		return 0
	}
	wait := time.Duration(b.BaseSeconds) * time.Second
	max := time.Duration(b.MaxSeconds) * time.Second
	for i := b.Free; i < unanswered && wait < max; i++ {
		wait *= 2
	}
	return min(wait, max)
}

// newAttempt creates a pending attempt for u, replacing the pending one,
// unless back-off forbids it.
func (e *Engine) newAttempt(tenant string, u *User, creds []string, policy Policy, sctx SignInContext) (*attempt, error) {
	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	number, choices, err := e.numbers(policy.NumberMatching)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	if err := e.random(nonce); err != nil {
		return nil, err
	}
	sk := store.SignInStateKey(tenant, u.ID)
	for {
		var st signInState
		if err := e.st.Get(sk, &st); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, storeError(err)
		}
		locks := []store.Key{sk, store.AttemptKey(id)}
		if st.Pending != "" {
			locks = append(locks, store.AttemptKey(st.Pending))
		}
		var att attempt
		var replaced string
		retry := false
		err := e.st.Update(locks, func(tx *store.Tx) error {
			var cur signInState
			if err := tx.Get(sk, &cur); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if cur.Pending != st.Pending {
				retry = true // another start won the race: lock its attempt
				return nil
			}
			now := e.now()
			unanswered := cur.Unanswered
			if now.Sub(cur.LastStart) >= time.Duration(policy.Backoff.MaxSeconds)*time.Second {
				unanswered = 0 // a quiet period forgives
			}
			var prev attempt
			havePrev := false
			if cur.Pending != "" {
				switch err := tx.Get(store.AttemptKey(cur.Pending), &prev); {
				case err == nil:
					havePrev = true
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
			}
			if havePrev {
				switch prev.State {
				case StateApproved, StateDenied, StateFraud:
					unanswered = 0
				default: // pending, expired, cancelled: the phone did not answer
					unanswered++
				}
			}
			if wait := backoffWait(policy.Backoff, unanswered); wait > 0 && now.Before(cur.LastStart.Add(wait)) {
				retryAfter := cur.LastStart.Add(wait).Sub(now)
				return &Error{Code: CodeSignInBackoff, Kind: KindTooManyRequests, RetryAfter: retryAfter,
					Reason: "too many unanswered sign-ins in a row; try again in " + retryAfter.Round(time.Second).String() + " or use the password"}
			}
			if havePrev && prev.State == StatePending {
				prev.State, prev.Reason, prev.DecidedAt = StateCancelled, ReasonReplaced, now
				if !now.Before(prev.ExpiresAt) {
					prev.State, prev.Reason = StateExpired, ReasonExpired
				}
				if err := tx.Put(store.AttemptKey(prev.ID), prev); err != nil {
					return err
				}
				replaced = prev.ID
			}
			att = attempt{
				ID: id, Tenant: tenant, User: u.ID, UPN: u.UPN, Credentials: creds, Mode: policy.NumberMatching,
				Number: number, Choices: choices, Nonce: nonce, Context: sctx,
				CreatedAt: now, ExpiresAt: now.Add(policy.attemptLifetime()), State: StatePending,
			}
			ak := store.AttemptKey(id)
			if err := tx.Create(ak, att); err != nil {
				return err
			}
			if err := tx.DeleteAfter(ak, att.ExpiresAt.Add(e.retention)); err != nil {
				return err
			}
			if err := tx.Put(sk, signInState{Pending: id, Unanswered: unanswered, LastStart: now}); err != nil {
				return err
			}
			return e.audit(tx, tenant, u.ID, "signin.started", "", ActorAuthServer, map[string]string{
				"attempt": id, "replaced": replaced, "app": sctx.App, "ip": sctx.IP, "location": sctx.Location,
			})
		})
		if err != nil {
			return nil, storeError(err)
		}
		if retry {
			continue
		}
		if replaced != "" {
			e.waits.notify(replaced)
		}
		return &att, nil
	}
}

// PendingSignIn is what the phone shows: whose sign-in, from where, and in
// choose mode the three numbers. The right number is never included.
type PendingSignIn struct {
	Attempt    string        `json:"attempt"`
	Tenant     string        `json:"tenant"`
	User       string        `json:"user"`
	UPN        string        `json:"upn"`
	Credential string        `json:"credential"`
	Nonce      []byte        `json:"nonce"`
	Mode       string        `json:"mode"`
	Choices    []int         `json:"choices,omitempty"`
	Context    SignInContext `json:"context"`
	ExpiresAt  time.Time     `json:"expires_at"`
}

// PendingSignIn returns the pending attempt a credential's phone should
// answer. The credential id is the phone's handle (random, 128 bits).
// Codes: input.invalid, credential.not_found, credential.disabled,
// device.disabled, signin.none_pending.
func (e *Engine) PendingSignIn(ctx context.Context, credential string) (*PendingSignIn, error) {
	c, err := e.usableCredential(credential)
	if err != nil {
		return nil, err
	}
	var st signInState
	if err := e.st.Get(store.SignInStateKey(c.Tenant, c.User), &st); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(err)
	}
	none := errorf(CodeSignInNone, KindNotFound, "no sign-in is waiting for credential %q", credential)
	if st.Pending == "" {
		return nil, none
	}
	att, err := e.readAttempt(st.Pending)
	if CodeOf(err) == CodeSignInNotFound {
		return nil, none
	} else if err != nil {
		return nil, err
	}
	if att.State != StatePending || !e.now().Before(att.ExpiresAt) || !slices.Contains(att.Credentials, c.ID) {
		return nil, none
	}
	return &PendingSignIn{
		Attempt: att.ID, Tenant: att.Tenant, User: att.User, UPN: att.UPN, Credential: c.ID, Nonce: att.Nonce,
		Mode: att.Mode, Choices: att.Choices, Context: att.Context, ExpiresAt: att.ExpiresAt,
	}, nil
}

// usableCredential reads a credential that may sign in.
func (e *Engine) usableCredential(id string) (*Credential, error) {
	c, err := e.credential("", id)
	if err != nil {
		return nil, err
	}
	if c.Disabled {
		return nil, errorf(CodeCredentialDisabled, KindForbidden, "credential %q is disabled", id)
	}
	var td tenantDevice
	if err := e.st.Get(store.TenantDeviceKey(c.Tenant, c.Device), &td); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(err)
	}
	if td.Disabled {
		return nil, errorf(CodeDeviceDisabled, KindForbidden, "device %q is disabled", c.Device)
	}
	return c, nil
}

// readAttempt reads an attempt with its lock held shared, so what it
// returns is durable.
func (e *Engine) readAttempt(id string) (*attempt, error) {
	if err := checkID("attempt", id); err != nil {
		return nil, err
	}
	k := store.AttemptKey(id)
	var att attempt
	err := e.st.View([]store.Key{k}, func(r store.Reader) error { return r.Get(k, &att) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeSignInNotFound, KindNotFound, "no sign-in attempt %q", id)
	} else if err != nil {
		return nil, storeError(err)
	}
	return &att, nil
}

// Answer is the phone's signed answer to an attempt.
type Answer struct {
	Attempt    string
	Credential string
	// Decision is DecisionApprove, DecisionDeny or DecisionFraud.
	Decision string
	// Number is the number the person typed (type mode) or chose (choose
	// mode) when approving; 0 otherwise.
	Number int
	// Signature is over AnswerMessage by the credential key (an App Attest
	// assertion for App Attest credentials; for a WebAuthn credential, the
	// signature of its assertion).
	Signature []byte
	// AuthenticatorData and ClientDataJSON are the rest of a WebAuthn
	// credential's assertion (navigator.credentials.get with the challenge
	// AnswerChallenge(AnswerMessage(…))); empty for other credentials.
	AuthenticatorData []byte
	ClientDataJSON    []byte
}

// Outcome is the state of an attempt as the auth server sees it.
type Outcome struct {
	Attempt string `json:"attempt"`
	Tenant  string `json:"tenant"`
	User    string `json:"user"`
	// State is pending, approved, denied, expired, cancelled or fraud.
	State string `json:"state"`
	// Reason says why a final state other than approved was reached.
	Reason     Code      `json:"reason,omitempty"`
	Credential string    `json:"credential,omitempty"` // the one that answered
	ExpiresAt  time.Time `json:"expires_at"`
	DecidedAt  time.Time `json:"decided_at,omitzero"`
}

func (e *Engine) outcome(att *attempt) *Outcome {
	o := &Outcome{Attempt: att.ID, Tenant: att.Tenant, User: att.User, State: att.State, Reason: att.Reason,
		Credential: att.AnsweredBy, ExpiresAt: att.ExpiresAt, DecidedAt: att.DecidedAt}
	if o.State == StatePending && !e.now().Before(att.ExpiresAt) {
		o.State, o.Reason, o.DecidedAt = StateExpired, ReasonExpired, att.ExpiresAt
	}
	return o
}

// AnswerSignIn verifies and applies the phone's answer: the signature
// (and, for App Attest, a rising counter), then the decision. An attempt
// is answered once: a deny (or fraud) is final, so it wins over any later
// approve. A wrong number denies the attempt and returns
// signin.wrong_number with the denied outcome. Fraud denies the attempt and
// flags the user. Codes: input.invalid, credential.not_found,
// credential.disabled, device.disabled, signin.not_found,
// signin.credential_mismatch, signin.bad_signature (or the assertion
// verifier's assert.… code), signin.replay, signin.not_pending,
// signin.expired, signin.wrong_number, signin.not_targeted.
func (e *Engine) AnswerSignIn(ctx context.Context, a Answer) (*Outcome, error) {
	if err := checkAnswer(a); err != nil {
		return nil, err
	}
	c, err := e.usableCredential(a.Credential)
	if err != nil {
		return nil, err
	}
	att, err := e.readAttempt(a.Attempt)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(att.Credentials, c.ID) {
		return nil, errorf(CodeSignInCredential, KindForbidden, "attempt %q was not sent to credential %q", att.ID, c.ID)
	}
	msg := AnswerMessage(AnswerFields{Attempt: att.ID, Tenant: att.Tenant, User: att.User, Credential: c.ID, Nonce: att.Nonce, Decision: a.Decision, Number: a.Number})
	counter, err := e.sigs.VerifyAnswer(c, msg, Proof{Signature: a.Signature, AuthenticatorData: a.AuthenticatorData, ClientDataJSON: a.ClientDataJSON})
	if err != nil {
		e.auditRefusal(att.Tenant, att.User, "signin.answer_refused", err, ActorPhone, map[string]string{"attempt": att.ID, "credential": c.ID})
		return nil, err
	}
	// Approvals need the policy to still include the user.
	targeted := true
	if a.Decision == DecisionApprove {
		t, err := e.tenant(att.Tenant)
		if err != nil {
			return nil, err
		}
		u, err := e.user(att.Tenant, att.User)
		if err != nil {
			return nil, err
		}
		targeted = t.Policy.Enabled && t.Policy.Target.Includes(u.Groups)
	}
	ak, ck, uk := store.AttemptKey(att.ID), store.CredentialKey(c.ID), store.UserKey(att.Tenant, att.User)
	var result error
	var out *Outcome
	err = e.st.Update([]store.Key{ak, ck, uk}, func(tx *store.Tx) error {
		result = nil
		var cur attempt
		if err := tx.Get(ak, &cur); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeSignInNotFound, KindNotFound, "no sign-in attempt %q", att.ID)
		} else if err != nil {
			return err
		}
		if cur.State != StatePending {
			return errorf(CodeSignInNotPending, KindConflict, "attempt %q is already %s", cur.ID, cur.State)
		}
		var cred Credential
		if err := tx.Get(ck, &cred); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeCredentialNotFound, KindNotFound, "no credential %q", c.ID)
		} else if err != nil {
			return err
		}
		if cred.Disabled {
			return errorf(CodeCredentialDisabled, KindForbidden, "credential %q is disabled", c.ID)
		}
		now := e.now()
		if !now.Before(cur.ExpiresAt) {
			cur.State, cur.Reason, cur.DecidedAt = StateExpired, ReasonExpired, now
			result = errorf(CodeSignInExpired, KindGone, "attempt %q expired at %s", cur.ID, cur.ExpiresAt.Format(time.RFC3339))
			out = e.outcome(&cur)
			if err := tx.Put(ak, cur); err != nil {
				return err
			}
			return e.audit(tx, cur.Tenant, cur.User, "signin.expired", "", ActorPhone, map[string]string{"attempt": cur.ID})
		}
		if counts, always := countsSignatures(&cred); counts && (always || counter != 0 || cred.Counter != 0) {
			if counter <= cred.Counter {
				return errorf(CodeSignInReplay, KindForbidden, "assertion counter %d does not exceed %d", counter, cred.Counter)
			}
			cred.Counter = counter
		}
		cred.LastUsedAt = now
		if err := tx.Put(ck, cred); err != nil {
			return err
		}
		cur.AnsweredBy, cur.DecidedAt = c.ID, now
		event := "signin.denied"
		switch a.Decision {
		case DecisionDeny:
			cur.State, cur.Reason = StateDenied, ReasonDeniedByUser
		case DecisionFraud:
			cur.State, cur.Reason = StateFraud, ReasonFraud
			event = "signin.fraud_reported"
			var u User
			if err := tx.Get(uk, &u); err == nil {
				u.FraudReports++
				if err := tx.Put(uk, u); err != nil {
					return err
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		case DecisionApprove:
			switch {
			case !targeted:
				cur.State, cur.Reason = StateDenied, ReasonNotTargeted
				result = errorf(CodeSignInNotTarget, KindForbidden, "the user is no longer targeted by the tenant's phone sign-in policy")
			case a.Number != cur.Number:
				cur.State, cur.Reason = StateDenied, ReasonWrongNumber
				result = errorf(CodeSignInWrongNum, KindForbidden, "the number does not match; the sign-in is denied")
			default:
				cur.State = StateApproved
				event = "signin.approved"
			}
		}
		if err := tx.Put(ak, cur); err != nil {
			return err
		}
		out = e.outcome(&cur)
		details := map[string]string{"attempt": cur.ID, "credential": c.ID}
		if cur.State == StateFraud {
			details["flag"] = "fraud"
		}
		return e.audit(tx, cur.Tenant, cur.User, event, cur.Reason, ActorPhone, details)
	})
	if err != nil {
		return nil, storeError(err)
	}
	e.waits.notify(att.ID)
	return out, result
}

func checkAnswer(a Answer) error {
	if err := checkID("attempt", a.Attempt); err != nil {
		return err
	}
	if err := checkID("credential", a.Credential); err != nil {
		return err
	}
	switch a.Decision {
	case DecisionApprove:
		if a.Number < 0 || a.Number > 0xffff {
			return invalid("number %d is out of range", a.Number)
		}
	case DecisionDeny, DecisionFraud:
		if a.Number != 0 {
			return invalid("a %s carries no number", a.Decision)
		}
	default:
		return invalid("decision %q is not approve, deny or fraud", a.Decision)
	}
	if len(a.Signature) == 0 || len(a.Signature) > MaxSignature {
		return invalid("signature must be 1 to %d bytes", MaxSignature)
	}
	if len(a.AuthenticatorData) > webauthn.MaxAuthData || len(a.ClientDataJSON) > webauthn.MaxClientData {
		return invalid("authenticator_data is at most %d bytes and client_data_json at most %d", webauthn.MaxAuthData, webauthn.MaxClientData)
	}
	return nil
}

// SignInOutcome returns the state of an attempt of tenant. Codes:
// input.invalid, signin.not_found.
func (e *Engine) SignInOutcome(ctx context.Context, tenant, attemptID string) (*Outcome, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	att, err := e.readAttempt(attemptID)
	if err != nil {
		return nil, err
	}
	if att.Tenant != tenant {
		return nil, errorf(CodeSignInNotFound, KindNotFound, "no sign-in attempt %q in tenant %q", attemptID, tenant)
	}
	return e.outcome(att), nil
}

// WaitSignIn waits until an attempt is no longer pending (answered,
// cancelled, replaced or expired) and returns its outcome. When ctx ends
// first it returns the pending outcome with ctx's error: a long poll is
// WaitSignIn with a deadline. Codes: those of SignInOutcome.
func (e *Engine) WaitSignIn(ctx context.Context, tenant, attemptID string) (*Outcome, error) {
	for {
		changed, stop := e.waits.watch(attemptID)
		out, err := e.SignInOutcome(ctx, tenant, attemptID)
		if err != nil || out.State != StatePending {
			stop()
			return out, err
		}
		expired := e.clock.After(out.ExpiresAt.Sub(e.now()))
		select {
		case <-changed:
		case <-expired:
		case <-ctx.Done():
			stop()
			return out, ctx.Err()
		}
		stop()
	}
}

// CancelSignIn cancels a pending attempt ("use your password instead").
// Cancelling a cancelled attempt returns its outcome again. Codes:
// input.invalid, signin.not_found, signin.not_pending (answered or
// replaced), signin.expired.
func (e *Engine) CancelSignIn(ctx context.Context, tenant, attemptID string) (*Outcome, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("attempt", attemptID); err != nil {
		return nil, err
	}
	ak := store.AttemptKey(attemptID)
	var out *Outcome
	var result error
	changed := false
	err := e.st.Update([]store.Key{ak}, func(tx *store.Tx) error {
		var cur attempt
		if err := tx.Get(ak, &cur); errors.Is(err, store.ErrNotFound) || err == nil && cur.Tenant != tenant {
			return errorf(CodeSignInNotFound, KindNotFound, "no sign-in attempt %q in tenant %q", attemptID, tenant)
		} else if err != nil {
			return err
		}
		out = e.outcome(&cur)
		switch {
		case cur.State == StateCancelled && cur.Reason == ReasonCancelled:
			return nil
		case cur.State != StatePending:
			return errorf(CodeSignInNotPending, KindConflict, "attempt %q is already %s", cur.ID, cur.State)
		}
		now := e.now()
		changed = true
		if !now.Before(cur.ExpiresAt) {
			cur.State, cur.Reason, cur.DecidedAt = StateExpired, ReasonExpired, now
			result = errorf(CodeSignInExpired, KindGone, "attempt %q already expired", cur.ID)
		} else {
			cur.State, cur.Reason, cur.DecidedAt = StateCancelled, ReasonCancelled, now
		}
		out = e.outcome(&cur)
		if err := tx.Put(ak, cur); err != nil {
			return err
		}
		return e.audit(tx, cur.Tenant, cur.User, "signin."+cur.State, "", ActorAuthServer, map[string]string{"attempt": cur.ID})
	})
	if err != nil {
		return nil, storeError(err)
	}
	if changed {
		e.waits.notify(attemptID)
	}
	return out, result
}

// Sweep deletes up to max expired records (enrollments and attempts past
// their retention, expired sessions) and returns how many it deleted. The
// server runs it periodically.
func (e *Engine) Sweep(ctx context.Context, max int) (int, error) {
	n, err := e.st.Sweep(e.now(), max)
	return n, storeError(err)
}
