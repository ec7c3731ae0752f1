// Package device is a simulated phone that speaks keybind's real protocol:
// it enrolls a real ECDSA P-256 key with an Android Key Attestation chain or
// an Apple App Attest object, then fetches pending sign-ins and answers them
// with signed requests, as the phone app does. It is what `keybind device`
// runs, and what the demo uses to drive its user's phone.
//
// The attestations are made (by testvectors/forge) under a development
// root that this package creates once and keeps in a folder (Root). No
// production trust store holds it: a server trusts it only when started
// with `keybind serve --root NAME=<Root.CertFile>`, and only for the tenants
// whose policy names NAME in extra_roots (AttestationPolicy).
//
// The phone's credential, key and App Attest counter live in a JSON state
// file (State), written atomically with mode 0600 after every change:
//
//	root, _ := device.OpenRoot(dir + "/devroot")
//	ph, _ := device.Enroll(ctx, root, device.EnrollOptions{Server: url, APIKey: authKey, User: "alice@contoso.com", State: dir + "/phone.json"})
//	s, _ := ph.Attempt(ctx, "") // the sign-in waiting, if any
//	out, _ := ph.Approve(ctx, s, 42)
//
// One process at a time may use a state file: the App Attest counter
// rises with every signed request, and two processes would reuse values.
package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
)

// The kinds of simulated phones.
const (
	// KindAndroid is an Android phone: its key is attested by an Android
	// Key Attestation chain from the development root (a TEE key of a
	// verified, locked device, usable only after a biometric or PIN), and
	// it signs answers with plain ECDSA.
	KindAndroid = "android"
	// KindApple is an iPhone: its key is attested by an App Attest object
	// from the development root, and it signs answers with App Attest
	// assertions whose counter rises with every use.
	KindApple = "apple"
)

// The apps the simulated phones attest by default.
const (
	// DefaultPackage is the Android package name of the simulated app.
	DefaultPackage = "com.keybind.device"
	// DefaultAppID is the App Attest App ID (TEAMID.bundle.id) of the
	// simulated app.
	DefaultAppID = "KEYBINDDEV.com.keybind.device"
)

// AttestationPolicy returns the attestation section of a tenant policy
// that lets the simulated phones enroll: Android keys of DefaultPackage and
// App Attest keys of DefaultAppID, with the development root configured on
// the server as rootName (`keybind serve --root rootName=FILE`) as their
// only extra trust anchor. Every other Android requirement keeps its
// production default (TEE, verified boot, locked device, user
// authentication).
func AttestationPolicy(rootName string) engine.AttestationPolicy {
	return engine.AttestationPolicy{
		Android:   &engine.AndroidPolicy{Packages: []string{DefaultPackage}, ExtraRoots: []string{rootName}},
		AppAttest: &engine.AppAttestPolicy{AppIDs: []string{DefaultAppID}, ExtraRoots: []string{rootName}},
	}
}

// EnrollOptions say how to enroll a new phone.
type EnrollOptions struct {
	// Server is the server's base URL.
	Server string
	// Kind is KindAndroid (default) or KindApple.
	Kind string
	// APIKey (an auth_server or admin key of the tenant) and User open the
	// enrollment, as the tenant's auth server does after the person signed
	// in. User is a UPN when it holds "@", else a user id.
	APIKey string
	User   string
	// Enrollment and Challenge, instead of APIKey and User, are an
	// enrollment an administrator opened.
	Enrollment string
	Challenge  []byte
	// App is the Android package name (default DefaultPackage) or the App
	// Attest App ID (default DefaultAppID) the attestation names.
	App string
	// Device is the device id of an earlier enrollment of this phone ("" for
	// a new device).
	Device string
	// State is the state file to write; "" keeps the phone in memory only.
	// An existing file is replaced.
	State string
	// HTTP is the HTTP client; nil means client's default.
	HTTP *http.Client
	// Now is the clock of the certificates; nil means time.Now.
	Now func() time.Time
}

// Phone is an enrolled simulated phone. Its methods may be called from
// several goroutines; they take turns.
type Phone struct {
	mu    sync.Mutex
	path  string
	state State
	key   *ecdsa.PrivateKey
	http  *http.Client
}

// Enroll makes a new key, attests it under root as opts.Kind says, sends
// the attestation to the server and returns the enrolled phone, saved to
// opts.State. A refusal of the server is a *client.Problem (its Code is
// stable: chain.untrusted_root when the tenant does not trust root, …).
func Enroll(ctx context.Context, root *Root, opts EnrollOptions) (*Phone, error) {
	if opts.Kind == "" {
		opts.Kind = KindAndroid
	}
	if opts.Server == "" {
		return nil, errors.New("device: no server URL")
	}
	switch {
	case opts.APIKey != "" && opts.Enrollment != "":
		return nil, errors.New("device: an API key or an enrollment, not both")
	case opts.APIKey != "" && opts.User == "":
		return nil, errors.New("device: an API key opens an enrollment for a user: no user given")
	case opts.APIKey == "" && (opts.Enrollment == "" || len(opts.Challenge) == 0):
		return nil, errors.New("device: an API key and a user, or an enrollment and its challenge, are needed")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	base := strings.TrimRight(opts.Server, "/")
	if opts.APIKey != "" {
		c := client.New(base, opts.APIKey)
		c.HTTP = opts.HTTP
		enr, err := c.StartEnrollment(ctx, opts.User, strings.Contains(opts.User, "@"))
		if err != nil {
			return nil, fmt.Errorf("device: opening the enrollment: %w", err)
		}
		opts.Enrollment, opts.Challenge = enr.ID, enr.Challenge
	}

	var (
		key      *ecdsa.PrivateKey
		format   string
		evidence engine.Evidence
		app      = opts.App
	)
	switch opts.Kind {
	case KindAndroid:
		if app == "" {
			app = DefaultPackage
		}
		ca, err := root.android().NewCA(forge.AndroidCAOptions{Time: now()})
		if err != nil {
			return nil, err
		}
		att, err := ca.Attest(forge.AndroidKey{Challenge: opts.Challenge, Level: "tee", UserAuth: true, Package: app})
		if err != nil {
			return nil, err
		}
		k, ok := att.Key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("device: the attested key is a %T, not an ECDSA key", att.Key)
		}
		key = k
		format, evidence = engine.FormatAndroidKey, engine.Evidence{"chain": engine.JoinDER(att.Chain)}
	case KindApple:
		if app == "" {
			app = DefaultAppID
		}
		ca, err := root.appAttest(now())
		if err != nil {
			return nil, err
		}
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
		// The app passes SHA-256 of the enrollment challenge to attestKey.
		h := sha256.Sum256(opts.Challenge)
		att, err := ca.Attest(key, forge.AppAttestOptions{AppID: app, ClientDataHash: h[:], KeyUsage: true})
		if err != nil {
			return nil, err
		}
		format, evidence = engine.FormatAppAttest, engine.Evidence{"attestation": att.Object, "key_id": att.KeyID}
	default:
		return nil, fmt.Errorf("device: unknown kind %q (%s or %s)", opts.Kind, KindAndroid, KindApple)
	}

	anon := client.New(base, "")
	anon.HTTP = opts.HTTP
	cred, err := anon.Attest(ctx, opts.Enrollment, format, evidence, opts.Device)
	if err != nil {
		return nil, fmt.Errorf("device: attesting the key: %w", err)
	}
	ph := &Phone{path: opts.State, key: key, http: opts.HTTP, state: State{
		Version: StateVersion, Kind: opts.Kind, Server: base,
		Tenant: cred.Tenant, User: cred.User, Credential: cred.ID, Device: cred.Device, App: app,
		Root: root.ref(), EnrolledAt: now().UTC().Truncate(time.Second),
	}}
	if ph.state.Key, err = encodeKey(key); err != nil {
		return nil, err
	}
	if ph.path != "" {
		if err := writeState(ph.path, &ph.state); err != nil {
			return nil, fmt.Errorf("device: the server enrolled credential %s but its state could not be saved: %w", cred.ID, err)
		}
	}
	return ph, nil
}

// Open loads the phone of a state file. A missing, unreadable or corrupt
// file is a *StateError.
func Open(path string) (*Phone, error) {
	st, key, err := readState(path)
	if err != nil {
		return nil, err
	}
	return &Phone{path: path, state: *st, key: key}, nil
}

// SetHTTP sets the HTTP client of the phone's requests (nil: client's
// default).
func (p *Phone) SetHTTP(hc *http.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.http = hc
}

// SetServer points the phone at the server's base URL, for a server that
// moved (a new port). It changes the phone in memory; the state file keeps
// the URL of the enrollment.
func (p *Phone) SetServer(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Server = strings.TrimRight(url, "/")
}

// State returns a copy of the phone's state.
func (p *Phone) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Path returns the phone's state file ("" for a phone in memory).
func (p *Phone) Path() string { return p.path }

// client returns the signed-request client of the phone. Callers hold
// p.mu while they use it, so proofs are made and sent in order.
func (p *Phone) client() *client.Phone {
	return &client.Phone{BaseURL: p.state.Server, Credential: p.state.Credential, Prover: client.ProverFunc(p.prove), HTTP: p.http}
}

// prove proves message with the phone's key: a plain ECDSA signature
// (Android) or an App Attest assertion with the next counter, saved before
// the proof leaves (Apple). p.mu is held.
func (p *Phone) prove(message []byte) (engine.Proof, error) {
	if p.state.Kind != KindApple {
		return client.SignerProver{Signer: p.key}.Prove(message)
	}
	if p.state.Counter == ^uint32(0) {
		return engine.Proof{}, errors.New("device: the App Attest counter is exhausted")
	}
	p.state.Counter++
	if p.path != "" {
		if err := writeState(p.path, &p.state); err != nil {
			p.state.Counter--
			return engine.Proof{}, err
		}
	}
	as, err := forge.AppAssert(p.key, forge.AppAssertOptions{AppID: p.state.App, ClientData: message, Counter: p.state.Counter})
	if err != nil {
		return engine.Proof{}, err
	}
	return engine.Proof{Signature: as.Marshal()}, nil
}

// Pending returns the sign-ins waiting for this phone (none or one).
func (p *Phone) Pending(ctx context.Context) ([]client.PendingSignIn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client().Pending(ctx)
}

// ErrNothingPending is returned by Attempt when no sign-in waits for the
// phone.
var ErrNothingPending = errors.New("no sign-in is waiting for this phone")

// Attempt returns the pending sign-in id, or with id "" the one waiting:
// ErrNothingPending when none is, an error naming the attempt when it is
// not (or no longer) waiting for this phone.
func (p *Phone) Attempt(ctx context.Context, id string) (client.PendingSignIn, error) {
	list, err := p.Pending(ctx)
	if err != nil {
		return client.PendingSignIn{}, err
	}
	for _, s := range list {
		if id == "" || s.Attempt == id {
			return s, nil
		}
	}
	if id != "" {
		return client.PendingSignIn{}, fmt.Errorf("sign-in %s is not waiting for this phone (answered, expired, cancelled or another user's)", id)
	}
	return client.PendingSignIn{}, ErrNothingPending
}

// Approve approves s with number: the number the login page shows (type
// mode) or the one of s.Choices the person picked (choose mode). A wrong
// number is refused with the problem signin.wrong_number, and the server
// denies the attempt.
func (p *Phone) Approve(ctx context.Context, s client.PendingSignIn, number int) (*engine.Outcome, error) {
	return p.answer(ctx, s, engine.DecisionApprove, number)
}

// Deny denies s: the person did not try to sign in.
func (p *Phone) Deny(ctx context.Context, s client.PendingSignIn) (*engine.Outcome, error) {
	return p.answer(ctx, s, engine.DecisionDeny, 0)
}

// Fraud denies s and reports it as fraud.
func (p *Phone) Fraud(ctx context.Context, s client.PendingSignIn) (*engine.Outcome, error) {
	return p.answer(ctx, s, engine.DecisionFraud, 0)
}

func (p *Phone) answer(ctx context.Context, s client.PendingSignIn, decision string, number int) (*engine.Outcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client().Answer(ctx, s, decision, number)
}
