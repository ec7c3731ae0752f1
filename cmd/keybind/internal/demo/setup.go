package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/device"
	"github.com/keybind/keybind/engine"
)

// The demo's tenant and people.
const (
	// Tenant is the demo tenant's id.
	Tenant = "demo"
	// FederatedDomain is the domain whose users go to the federation page.
	FederatedDomain = "federated.test"
	// Password is every demo user's password.
	Password = "demo"
	// KeyName names the auth_server key of the page's backend; Setup
	// revokes the older keys of that name.
	KeyName = "demo sign-in page"
)

// User is a person of the demo tenant, and how they sign in.
type User struct {
	ID, UPN, DisplayName string
	// Phone is the kind of the user's simulated phone (device.KindAndroid,
	// device.KindApple), "" for none.
	Phone string
	// PhoneLabel names the phone on the panel.
	PhoneLabel string
	// About says what typing the name on the page shows.
	About string
}

// Users returns the demo tenant's users, in the order they are presented
// (FederatedUser is not one: its domain federates).
func Users() []User {
	return []User{
		{ID: "alice", UPN: "alice@demo.test", DisplayName: "Alice", Phone: device.KindAndroid, PhoneLabel: "Alice's Android phone",
			About: "Android phone: tap the number the page shows"},
		{ID: "carol", UPN: "carol@demo.test", DisplayName: "Carol", Phone: device.KindApple, PhoneLabel: "Carol's iPhone",
			About: "iPhone: tap the number the page shows"},
		{ID: "pat", UPN: "pat@demo.test", DisplayName: "Pat",
			About: `no phone: "use your password instead"`},
	}
}

// FederatedUser is the name to type to be sent to the federation page.
const FederatedUser = "bob@federated.test"

// SetupConfig says what Setup prepares, and where.
type SetupConfig struct {
	// Server is the keybind server's base URL, OperatorKey its operator's
	// key (which creates the tenant and its key).
	Server, OperatorKey string
	// Root is the development root the simulated phones are attested
	// under; the server trusts it as RootName, which only the demo
	// tenant's policy names.
	Root     *device.Root
	RootName string
	// PhoneDir holds the phones' state files (one per phone user).
	PhoneDir string
	// FederationURL is the sign-in URL of the federated domain.
	FederationURL string
	// AttemptLifetime is the sign-in attempts' lifetime (the policy's
	// bounds apply: 30s to 10m); 0 keeps the policy's default.
	AttemptLifetime time.Duration
	// HTTP is the HTTP client of the calls; nil: client's default.
	HTTP *http.Client
}

// Site is what Setup prepared: what the page needs.
type Site struct {
	// AuthKey is the new auth_server key of the page's backend.
	AuthKey string
	// Phones are the enrolled simulated phones.
	Phones []Phone
	// Passwords are the users' passwords by UPN.
	Passwords map[string]string
	// Enrolled names the phones enrolled by this run (the others were
	// enrolled before and reused).
	Enrolled []string
}

// Policy returns the demo tenant's policy: phone sign-in for every user in
// choose mode (three numbers on the phone), the simulated phones'
// attestations under the development root named rootName, and the
// federated domain sent to federationURL when the login hint names it.
func Policy(rootName, federationURL string, lifetime time.Duration) engine.Policy {
	return engine.Policy{
		Enabled:                true,
		Target:                 engine.Target{AllUsers: true},
		NumberMatching:         engine.ModeChoose,
		AttemptLifetimeSeconds: int(lifetime / time.Second),
		Attestation:            device.AttestationPolicy(rootName),
		Federation: engine.Federation{
			Domains: []string{FederatedDomain}, SignInURL: federationURL, HonorLoginHint: true,
		},
	}
}

// Setup prepares the demo through the administration API, idempotently:
// the tenant (created, or its policy set again: the federation URL and
// the lifetime may have changed), the users, a new auth_server key for the
// page (the previous ones revoked), and an enrolled phone for each phone
// user — the one of its state file when the server still has its
// credential, else a new enrollment through the real enrollment API.
func Setup(ctx context.Context, cfg SetupConfig) (*Site, error) {
	if cfg.AttemptLifetime != 0 && (cfg.AttemptLifetime < engine.MinAttemptLifetime || cfg.AttemptLifetime > engine.MaxAttemptLifetime) {
		return nil, fmt.Errorf("the attempt lifetime %v is outside %v to %v", cfg.AttemptLifetime, engine.MinAttemptLifetime, engine.MaxAttemptLifetime)
	}
	if cfg.AttemptLifetime%time.Second != 0 {
		return nil, fmt.Errorf("the attempt lifetime %v is not a whole number of seconds", cfg.AttemptLifetime)
	}
	op := client.New(cfg.Server, cfg.OperatorKey)
	op.HTTP = cfg.HTTP
	policy := Policy(cfg.RootName, cfg.FederationURL, cfg.AttemptLifetime)
	_, err := op.GetTenant(ctx, Tenant)
	switch {
	case isCode(err, "tenant.not_found"):
		if _, err := op.CreateTenant(ctx, Tenant, "keybind demo", policy); err != nil {
			return nil, fmt.Errorf("creating the demo tenant: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading the demo tenant: %w", err)
	default:
		if err := op.SetPolicy(ctx, Tenant, policy); err != nil {
			return nil, fmt.Errorf("setting the demo tenant's policy: %w", err)
		}
	}

	for _, u := range Users() {
		upn, name, push := u.UPN, u.DisplayName, u.Phone != ""
		_, err := op.CreateUser(ctx, Tenant, client.UserRequest{ID: u.ID, UPN: &upn, DisplayName: &name, MFAPush: &push})
		if err != nil && !isCode(err, "user.exists") {
			return nil, fmt.Errorf("creating user %s: %w", u.UPN, err)
		}
	}

	keys, err := op.ListKeys(ctx, Tenant)
	if err != nil {
		return nil, fmt.Errorf("listing the demo tenant's keys: %w", err)
	}
	for _, k := range keys {
		if k.Name == KeyName {
			if err := op.RevokeKey(ctx, Tenant, k.ID); err != nil && !isCode(err, "key.not_found") {
				return nil, fmt.Errorf("revoking the page's previous key: %w", err)
			}
		}
	}
	key, err := op.CreateKey(ctx, Tenant, engine.RoleAuthServer, KeyName)
	if err != nil {
		return nil, fmt.Errorf("creating the page's key: %w", err)
	}

	site := &Site{AuthKey: key.Key, Passwords: map[string]string{}}
	if err := os.MkdirAll(cfg.PhoneDir, 0o700); err != nil {
		return nil, err
	}
	for _, u := range Users() {
		site.Passwords[u.UPN] = Password
		if u.Phone == "" {
			continue
		}
		ph, fresh, err := phoneOf(ctx, op, cfg, u, key.Key)
		if err != nil {
			return nil, fmt.Errorf("the phone of %s: %w", u.UPN, err)
		}
		if fresh {
			site.Enrolled = append(site.Enrolled, u.UPN)
		}
		platform := engine.PlatformAndroid
		if u.Phone == device.KindApple {
			platform = engine.PlatformIOS
		}
		site.Phones = append(site.Phones, Phone{ID: u.ID, Label: u.PhoneLabel, UPN: u.UPN, Platform: platform, Device: ph})
	}
	return site, nil
}

// phoneOf returns the user's phone: the one of its state file when the
// server still holds its credential, else a new one enrolled (fresh). The
// user's other credentials are deleted, so that each user has exactly the
// phone the panel shows.
func phoneOf(ctx context.Context, op *client.Client, cfg SetupConfig, u User, authKey string) (ph *device.Phone, fresh bool, err error) {
	path := filepath.Join(cfg.PhoneDir, u.ID+".json")
	creds, err := op.ListCredentials(ctx, Tenant, u.ID)
	if err != nil {
		return nil, false, err
	}
	if old, err := device.Open(path); err == nil {
		st := old.State()
		usable := st.Tenant == Tenant && st.User == u.ID && st.Kind == u.Phone && st.Root.SHA256 == cfg.Root.Fingerprint() &&
			slices.ContainsFunc(creds, func(c client.Credential) bool { return c.ID == st.Credential && !c.Disabled })
		if usable {
			ph = old
		}
	} else if se := (*device.StateError)(nil); !errors.As(err, &se) {
		return nil, false, err
	}
	if ph == nil {
		ph, err = device.Enroll(ctx, cfg.Root, device.EnrollOptions{
			Server: cfg.Server, Kind: u.Phone, APIKey: authKey, User: u.ID, State: path, HTTP: cfg.HTTP,
		})
		if err != nil {
			return nil, false, err
		}
		fresh = true
	}
	ph.SetServer(cfg.Server)
	if cfg.HTTP != nil {
		ph.SetHTTP(cfg.HTTP)
	}
	keep := ph.State().Credential
	for _, c := range creds {
		if c.ID != keep {
			err := op.Do(ctx, "DELETE", "/v1/tenants/"+Tenant+"/credentials/"+c.ID, nil, nil)
			if err != nil && !isCode(err, "credential.not_found") {
				return nil, false, fmt.Errorf("deleting an older credential: %w", err)
			}
		}
	}
	return ph, fresh, nil
}

// isCode reports whether err is a problem of the server with that code.
func isCode(err error, code string) bool {
	var p *client.Problem
	return errors.As(err, &p) && p.Code == code
}
