package server

import (
	"context"
	"errors"
	"time"

	"github.com/keybind/keybind/engine"
	"github.com/valyala/fasthttp"
)

// The auth server's routes: the tenant is the API key's.

// SignInRequest is the body of POST /v1/signins.
type SignInRequest struct {
	// Username is the UPN the person typed on the login page.
	Username string `json:"username"`
	// LoginHint, in a federated domain the tenant honours, sends the user
	// to the federation server.
	LoginHint string               `json:"login_hint,omitempty"`
	Context   engine.SignInContext `json:"context"`
}

// SignInStart is the answer of POST /v1/signins: the engine's answer and,
// for a phone sign-in, how often to poll its outcome.
type SignInStart struct {
	engine.SignInStart
	PollIntervalSeconds int `json:"poll_interval_seconds,omitempty"`
}

// Outcome is the answer of GET /v1/signins/{attempt} and of a cancel: the
// engine's outcome and, while it is pending, how often to poll again.
type Outcome struct {
	engine.Outcome
	PollIntervalSeconds int `json:"poll_interval_seconds,omitempty"`
}

// EnrollmentRequest is the body of POST /v1/enrollments: the user, by id
// or by UPN (exactly one).
type EnrollmentRequest struct {
	User     string `json:"user,omitempty"`
	Username string `json:"username,omitempty"`
}

// Enrollment is the answer of POST /v1/enrollments: the id the phone
// sends its attestation to, and the challenge it attests over.
type Enrollment struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	Challenge Bytes     `json:"challenge"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *engineAPI) registerAuthServer() {
	a.handle(Route{Method: "POST", Path: "/v1/signins", Name: "signin.start", Roles: authServerRoles, Handler: a.startSignIn})
	a.handle(Route{Method: "GET", Path: "/v1/signins/{attempt}", Name: "signin.outcome", Roles: authServerRoles, Handler: a.signInOutcome})
	a.handle(Route{Method: "POST", Path: "/v1/signins/{attempt}/cancel", Name: "signin.cancel", Roles: authServerRoles, Handler: a.cancelSignIn})
	a.handle(Route{Method: "POST", Path: "/v1/enrollments", Name: "enrollment.start", Roles: authServerRoles, Handler: a.startEnrollment})
}

func (a *engineAPI) pollSeconds() int {
	return max(1, int(a.cfg.PollInterval/time.Second))
}

func (a *engineAPI) startSignIn(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	var req SignInRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	start, err := a.e.StartSignIn(c.Context(), engine.SignInRequest{Tenant: c.Principal.Tenant, Username: req.Username, LoginHint: req.LoginHint, Context: req.Context})
	if err != nil {
		return err
	}
	out := SignInStart{SignInStart: *start}
	if start.Method == engine.MethodPhone {
		out.PollIntervalSeconds = a.pollSeconds()
	}
	return ok(c, out)
}

func (a *engineAPI) outcome(c *Ctx, o *engine.Outcome) error {
	out := Outcome{Outcome: *o}
	if o.State == engine.StatePending {
		out.PollIntervalSeconds = a.pollSeconds()
	}
	return ok(c, out)
}

// signInOutcome answers an attempt's outcome. With wait=N (seconds, capped
// at MaxWait) it answers as soon as the attempt is no longer pending, or
// after N seconds with the pending outcome: a long poll. A shutdown ends
// the wait early.
func (a *engineAPI) signInOutcome(c *Ctx) error {
	if err := checkQuery(c, "wait"); err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	wait, err := queryInt(c, "wait", 0)
	if err != nil {
		return err
	}
	tenant, id := c.Principal.Tenant, c.Param("attempt")
	if wait == 0 {
		o, err := a.e.SignInOutcome(c.Context(), tenant, id)
		if err != nil {
			return err
		}
		return a.outcome(c, o)
	}
	d := min(time.Duration(wait)*time.Second, a.cfg.MaxWait)
	ctx, cancel := context.WithTimeout(c.Context(), d)
	defer cancel()
	o, err := a.e.WaitSignIn(ctx, tenant, id)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return a.outcome(c, o)
}

func (a *engineAPI) cancelSignIn(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	o, err := a.e.CancelSignIn(c.Context(), c.Principal.Tenant, c.Param("attempt"))
	if err != nil {
		return err
	}
	return a.outcome(c, o)
}

func (a *engineAPI) startEnrollment(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	var req EnrollmentRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	tenant := c.Principal.Tenant
	user := req.User
	switch {
	case (req.User == "") == (req.Username == ""):
		return Problemf(fasthttp.StatusBadRequest, string(engine.CodeInvalid), "give exactly one of user (the id) and username (the UPN)")
	case req.Username != "":
		u, err := a.e.UserByUPN(c.Context(), tenant, req.Username)
		if err != nil {
			return err
		}
		user = u.ID
	}
	enr, err := a.e.StartEnrollment(c.Context(), tenant, user)
	if err != nil {
		return err
	}
	return created(c, Enrollment{ID: enr.ID, Tenant: enr.Tenant, User: enr.User, Challenge: enr.Challenge, ExpiresAt: enr.ExpiresAt})
}
