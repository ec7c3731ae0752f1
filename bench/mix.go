package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
)

// The kinds of operation of an HTTP mix.
const (
	// MixVerify: POST /v1/verify with the workload's items.
	MixVerify = "verify"
	// MixSignIn: a whole phone sign-in: the auth server starts it (POST
	// /v1/signins), the phone fetches it (GET /v1/phone/signins) and
	// approves it with the number (a signed answer), the auth server reads
	// the outcome (GET /v1/signins/{attempt}), which must be approved.
	MixSignIn = "signin"
	// MixEnroll: the auth server starts an enrollment (POST
	// /v1/enrollments).
	MixEnroll = "enroll"
)

// MixEntry is one kind of operation of a mix and its weight.
type MixEntry struct {
	Kind   string
	Weight int
}

// MaxWeight bounds the weight of one kind of a mix.
const MaxWeight = 10000

// ParseMix parses a mix such as "verify=90,signin=5,enroll=5" (a kind
// without a weight weighs 1; weights go up to MaxWeight).
func ParseMix(s string) ([]MixEntry, error) {
	var mix []MixEntry
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, w, hasW := strings.Cut(part, "=")
		weight := 1
		if hasW {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n < 0 || n > MaxWeight {
				return nil, fmt.Errorf("bench: mix %q: weight of %s is not a whole number from 0 to %d", s, kind, MaxWeight)
			}
			weight = n
		}
		kind = strings.TrimSpace(kind)
		switch kind {
		case MixVerify, MixSignIn, MixEnroll:
		default:
			return nil, fmt.Errorf("bench: mix %q: unknown operation %q (verify, signin, enroll)", s, kind)
		}
		if seen[kind] {
			return nil, fmt.Errorf("bench: mix %q: %s twice", s, kind)
		}
		seen[kind] = true
		if weight > 0 {
			mix = append(mix, MixEntry{kind, weight})
		}
	}
	if len(mix) == 0 {
		return nil, fmt.Errorf("bench: mix %q has no operation", s)
	}
	return mix, nil
}

// Has reports whether the mix holds kind.
func hasKind(mix []MixEntry, kind string) bool {
	for _, m := range mix {
		if m.Kind == kind {
			return true
		}
	}
	return false
}

// Tenant is what a mix's operations use on the server: an API key of a
// tenant (auth_server or admin role), its users allowed multi-factor push
// and, for sign-ins, a phone enrolled by each.
type Tenant struct {
	BaseURL string
	ID      string
	Key     string
	// Users are the users' ids, UPNs their names, Phones their phones.
	Users, UPNs []string
	Phones      []*client.Phone
	// HTTP is the client the operations' net/http calls share.
	HTTP *http.Client
}

// TenantOptions say how SetUpTenant prepares a tenant.
type TenantOptions struct {
	// BaseURL of the server.
	BaseURL string
	// OperatorKey creates the new tenant (SetUpTenant).
	OperatorKey string
	// Users to create (bench-user-N of a random run prefix).
	Users int
	// Android, when set, is the development CA the phones' keys are
	// attested by, trusted by the tenant as the server root named
	// AndroidRoot; each user then enrolls a phone.
	Android     *forge.AndroidCA
	AndroidRoot string
	// HTTP is the client of the calls (default: one keeping Users
	// connections).
	HTTP *http.Client
}

// NewHTTPClient returns a net/http client keeping up to conns idle
// connections to a server, as a load of conns workers needs.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: false,
	}}
}

// SetUpTenant prepares a tenant for a mix through the server's API (the
// administration calls of `keybind admin`): with the operator key, a new
// tenant "bench-…" whose policy enables phone sign-in for every user and
// trusts opts.AndroidRoot, its admin key and an auth server key; then the
// users, and a phone enrolled for each when opts.Android is set.
func SetUpTenant(ctx context.Context, opts TenantOptions) (*Tenant, error) {
	hc := opts.HTTP
	if hc == nil {
		hc = NewHTTPClient(max(opts.Users, 1))
	}
	run := make([]byte, 4)
	rand.Read(run)
	prefix := "bench-" + hex.EncodeToString(run)
	t := &Tenant{BaseURL: strings.TrimRight(opts.BaseURL, "/"), HTTP: hc}
	if opts.OperatorKey == "" {
		return nil, errors.New("bench: setting up a tenant needs the operator key")
	}
	{
		op := &client.Client{BaseURL: t.BaseURL, Key: opts.OperatorKey, HTTP: hc}
		policy := engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}, Backoff: engine.Backoff{Free: 100}}
		if opts.Android != nil {
			policy.Attestation.Android = &engine.AndroidPolicy{Packages: []string{forge.AndroidDefaultPackage}, ExtraRoots: []string{opts.AndroidRoot}}
		}
		if _, err := op.CreateTenant(ctx, prefix, "keybind bench "+prefix, policy); err != nil {
			return nil, fmt.Errorf("bench: creating the tenant: %w", err)
		}
		ak, err := op.CreateKey(ctx, prefix, engine.RoleAdmin, "bench admin")
		if err != nil {
			return nil, fmt.Errorf("bench: creating the admin key: %w", err)
		}
		admin := &client.Client{BaseURL: t.BaseURL, Key: ak.Key, HTTP: hc}
		auth, err := admin.CreateKey(ctx, prefix, engine.RoleAuthServer, "bench auth server")
		if err != nil {
			return nil, fmt.Errorf("bench: creating the auth server key: %w", err)
		}
		t.ID, t.Key = prefix, auth.Key
		return t, t.addUsers(ctx, admin, prefix, opts)
	}
}

// addUsers creates the users (and their phones) through admin.
func (t *Tenant) addUsers(ctx context.Context, admin *client.Client, prefix string, opts TenantOptions) error {
	auth := &client.Client{BaseURL: t.BaseURL, Key: t.Key, HTTP: t.HTTP}
	anon := &client.Client{BaseURL: t.BaseURL, HTTP: t.HTTP}
	yes := true
	for i := range opts.Users {
		id := prefix + "-user-" + strconv.Itoa(i)
		upn := id + "@bench.example"
		if _, err := admin.CreateUser(ctx, t.ID, client.UserRequest{ID: id, UPN: &upn, MFAPush: &yes}); err != nil {
			return fmt.Errorf("bench: creating user %s: %w", id, err)
		}
		t.Users, t.UPNs = append(t.Users, id), append(t.UPNs, upn)
		if opts.Android == nil {
			continue
		}
		enr, err := auth.StartEnrollment(ctx, id, false)
		if err != nil {
			return fmt.Errorf("bench: enrolling a phone of %s: %w", id, err)
		}
		att, err := opts.Android.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
		if err != nil {
			return err
		}
		cred, err := anon.Attest(ctx, enr.ID, engine.FormatAndroidKey, engine.Evidence{"chain": engine.JoinDER(att.Chain)}, "")
		if err != nil {
			return fmt.Errorf("bench: enrolling a phone of %s: %w", id, err)
		}
		t.Phones = append(t.Phones, &client.Phone{BaseURL: t.BaseURL, Credential: cred.ID, Prover: client.SignerProver{Signer: att.Key}, HTTP: t.HTTP})
	}
	return nil
}

// SetUpTenantOf prepares users (and phones, when opts.Android is set and
// the tenant's policy trusts its root) in an existing tenant, with an
// admin key of it, which the operations then use.
func SetUpTenantOf(ctx context.Context, tenant, adminKey string, opts TenantOptions) (*Tenant, error) {
	hc := opts.HTTP
	if hc == nil {
		hc = NewHTTPClient(max(opts.Users, 1))
	}
	run := make([]byte, 4)
	rand.Read(run)
	t := &Tenant{BaseURL: strings.TrimRight(opts.BaseURL, "/"), ID: tenant, Key: adminKey, HTTP: hc}
	admin := &client.Client{BaseURL: t.BaseURL, Key: adminKey, HTTP: hc}
	return t, t.addUsers(ctx, admin, "bench-"+hex.EncodeToString(run), opts)
}

// MixOps returns the operations of mix on tenant t, verify requests made
// of w (signed by the workload's own keys, given as public keys).
func MixOps(mix []MixEntry, t *Tenant, w *Workload) ([]Op, error) {
	var ops []Op
	auth := &client.Client{BaseURL: t.BaseURL, Key: t.Key, HTTP: t.HTTP}
	for _, m := range mix {
		var op Op
		switch m.Kind {
		case MixVerify:
			if w == nil {
				return nil, errors.New("bench: a verify mix needs a workload")
			}
			op = VerifyOp(w, t.Key)
		case MixSignIn:
			if len(t.Phones) == 0 {
				return nil, errors.New("bench: sign-ins need users with enrolled phones")
			}
			op = Op{Name: MixSignIn, Unit: "sign-in", Do: func(ctx context.Context, wk *Worker) error {
				// Each worker signs in its own users: one attempt per user
				// is pending at a time.
				i := wk.ID % len(t.Phones)
				return signIn(ctx, auth, t.UPNs[i], t.Phones[i])
			}}
		case MixEnroll:
			if len(t.Users) == 0 {
				return nil, errors.New("bench: enrollments need users")
			}
			op = Op{Name: MixEnroll, Unit: "enrollment", Do: func(ctx context.Context, wk *Worker) error {
				e, err := auth.StartEnrollment(ctx, t.Users[(wk.ID+wk.Seq)%len(t.Users)], false)
				if err == nil && (e.ID == "" || len(e.Challenge) == 0) {
					err = errors.New("an enrollment without id or challenge")
				}
				return err
			}}
		}
		op.Weight = m.Weight
		ops = append(ops, op)
	}
	return ops, nil
}

// signIn runs one whole phone sign-in of user.
func signIn(ctx context.Context, auth *client.Client, user string, phone *client.Phone) error {
	start, err := auth.StartSignIn(ctx, client.SignInRequest{Username: user})
	if err != nil {
		return err
	}
	if start.Method != "phone" {
		return fmt.Errorf("sign-in of %s: method %q (%s), want phone", user, start.Method, start.Reason)
	}
	pending, err := phone.Pending(ctx)
	if err != nil {
		return err
	}
	var p *client.PendingSignIn
	for i := range pending {
		if pending[i].Attempt == start.Attempt {
			p = &pending[i]
		}
	}
	if p == nil {
		return fmt.Errorf("sign-in %s not pending on the phone", start.Attempt)
	}
	if _, err := phone.Answer(ctx, *p, engine.DecisionApprove, start.Number); err != nil {
		return err
	}
	out, err := auth.SignInOutcome(ctx, start.Attempt, 0)
	if err != nil {
		return err
	}
	if out.State != engine.StateApproved {
		return fmt.Errorf("sign-in %s: outcome %s, want approved", start.Attempt, out.State)
	}
	return nil
}
