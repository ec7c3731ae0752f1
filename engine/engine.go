// Package engine holds the rules of passwordless phone sign-in: tenants and
// their policy, users, enrollment of hardware-bound keys, devices bound to
// one tenant, number-matching sign-in, and the audit log. It keeps its
// state in package store and verifies attestations and answers through
// injected verifiers; it knows nothing of HTTP, which the server wraps
// around this API.
//
// The flow:
//
//	e, _ := engine.New(engine.Config{Store: s, Verifiers: verifiers})
//	// admin
//	e.CreateTenant(ctx, engine.Tenant{ID: "contoso", Policy: policy})
//	e.CreateUser(ctx, "contoso", engine.User{ID: "u1", UPN: "alice@contoso.com", MFAPush: true})
//	// auth server, after password + MFA: open an enrollment
//	enr, _ := e.StartEnrollment(ctx, "contoso", "u1")
//	// phone: attest a new key over enr.Challenge and send it
//	cred, _ := e.CompleteEnrollment(ctx, engine.EnrollRequest{Enrollment: enr.ID, Format: "android-key", Evidence: ev})
//	// (a PC with a TPM first activates an attestation key for the enrollment:
//	//  act, _ := e.StartTPMActivation(ctx, engine.TPMActivationRequest{Enrollment: enr.ID, EKCertificate: ek, AK: params})
//	//  e.CompleteTPMActivation(ctx, enr.ID, secretItsTPMRecovered)
//	//  then sends Format "tpm" with the certification of a key made under that AK;
//	//  a browser sends Format "webauthn": attestation_object and client_data_json)
//	// auth server: a sign-in
//	start, _ := e.StartSignIn(ctx, engine.SignInRequest{Tenant: "contoso", Username: "alice@contoso.com"})
//	// phone: fetch, show, answer (signed with the credential key)
//	p, _ := e.PendingSignIn(ctx, cred.ID)
//	e.AnswerSignIn(ctx, engine.Answer{Attempt: p.Attempt, Credential: cred.ID, Decision: "approve", Number: n, Signature: sig})
//	// auth server: learn the outcome (or wait for it, or cancel)
//	out, _ := e.WaitSignIn(ctx, "contoso", start.Attempt)
//
// Every error is an *Error with a stable Code and a Kind; attestation
// refusals keep the verifier's code. The clock, the randomness and the
// verifiers are injected (Config), so tests run the real rules with real
// cryptography and a controlled clock.
package engine

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/store"
)

// Clock is the engine's time source.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed on this
	// clock (as time.After does for the system clock).
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultAttemptRetention is how long a finished or expired sign-in attempt
// and a used enrollment stay readable before Sweep deletes them.
const DefaultAttemptRetention = 24 * time.Hour

// Config configures an Engine. Store is required; every other field has a
// safe default.
type Config struct {
	Store *store.Store
	// Clock defaults to the system clock, Rand to crypto/rand.
	Clock Clock
	Rand  io.Reader
	// Verifiers verify enrollments, by attestation format. A format with
	// no verifier cannot enroll.
	Verifiers map[string]AttestationVerifier
	// Signatures verifies answers; nil means the built-in verifier (ECDSA,
	// RSA and Ed25519 keys; App Attest assertions through Assertions, by
	// default AppAttestAssertions).
	Signatures SignatureVerifier
	Assertions AssertionVerifier
	// PlainSignatures, when set, checks the plain signatures of the
	// built-in verifier (answers and device requests of keys that sign
	// AnswerMessage directly, not App Attest or WebAuthn assertions) before
	// the standard library does: handled false leaves the key to the
	// standard library; otherwise valid is the verdict. The server sends
	// the keys its batched verification pipeline knows (ECDSA P-256,
	// Ed25519) through it.
	PlainSignatures func(key crypto.PublicKey, message, signature []byte) (handled, valid bool)
	// Roots are named trust anchors a tenant's attestation policy may opt
	// into (ExtraRoots), such as a development root for a demo tenant.
	Roots map[string][]*x509.Certificate
	// TPMVendorRoots are the TPM vendors' EK roots this server trusts for
	// every tenant whose TPM policy trusts EK certificates. keybind embeds
	// none: the operator installs the roots its TPM vendors publish.
	TPMVendorRoots []*x509.Certificate
	// MultiTenantDevices lets a device hold one account in each of several
	// tenants (each key still belongs to one user of one tenant). Off: a
	// device belongs to one tenant and holds one account.
	MultiTenantDevices bool
	// AttemptRetention: see DefaultAttemptRetention.
	AttemptRetention time.Duration
	// RequestWindow is how far a device request's timestamp may be from
	// the clock (AuthenticateRequest); default DefaultRequestWindow.
	RequestWindow time.Duration
}

// Engine applies the rules. Its methods are safe for concurrent use.
type Engine struct {
	st            *store.Store
	clock         Clock
	rand          io.Reader
	verifiers     map[string]AttestationVerifier
	sigs          SignatureVerifier
	roots         map[string][]*x509.Certificate
	tpmRoots      []*x509.Certificate
	tpmCache      *attest.CertCache
	multiTenant   bool
	retention     time.Duration
	requestWindow time.Duration
	randMu        sync.Mutex
	waits         notifier
}

// New returns an engine over cfg.Store.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: Config.Store is required")
	}
	e := &Engine{
		st:          cfg.Store,
		clock:       cfg.Clock,
		rand:        cfg.Rand,
		verifiers:   map[string]AttestationVerifier{},
		sigs:        cfg.Signatures,
		roots:       map[string][]*x509.Certificate{},
		tpmRoots:    cfg.TPMVendorRoots,
		tpmCache:    attest.NewCertCache(0),
		multiTenant: cfg.MultiTenantDevices,
		retention:   cfg.AttemptRetention,
		waits:       notifier{waiters: map[string]map[chan struct{}]struct{}{}},
	}
	if e.clock == nil {
		e.clock = systemClock{}
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.retention <= 0 {
		e.retention = DefaultAttemptRetention
	}
	if e.requestWindow = cfg.RequestWindow; e.requestWindow <= 0 {
		e.requestWindow = DefaultRequestWindow
	}
	for format, v := range cfg.Verifiers {
		if err := formatKnown(format); err != nil {
			return nil, err
		}
		e.verifiers[format] = v
	}
	for name, certs := range cfg.Roots {
		if name == "" || len(certs) == 0 {
			return nil, errors.New("engine: a configured root needs a name and certificates")
		}
		e.roots[name] = certs
	}
	if e.sigs == nil {
		assertions := cfg.Assertions
		if assertions == nil {
			assertions = AppAttestAssertions()
		}
		e.sigs = signatures{assertions: assertions, appIDs: e.appIDsOf, webauthn: e.webauthnPolicyOf, plain: cfg.PlainSignatures}
	}
	return e, nil
}

// appIDsOf returns the App Attest app ids a credential's tenant allows now
// (for a WebAuthn credential, those of the WebAuthn policy).
func (e *Engine) appIDsOf(cred *Credential) []string {
	t, err := e.tenant(cred.Tenant)
	if err != nil {
		return nil
	}
	a := t.Policy.Attestation
	if cred.Format == FormatWebAuthn {
		if a.WebAuthn == nil || a.WebAuthn.AppAttest == nil {
			return nil
		}
		return a.WebAuthn.AppAttest.AppIDs
	}
	if a.AppAttest == nil {
		return nil
	}
	return a.AppAttest.AppIDs
}

// webauthnPolicyOf returns the WebAuthn policy a credential's tenant has
// now (defaults filled in), or nil.
func (e *Engine) webauthnPolicyOf(cred *Credential) *WebAuthnPolicy {
	t, err := e.tenant(cred.Tenant)
	if err != nil {
		return nil
	}
	return t.Policy.Effective().Attestation.WebAuthn
}

func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

// random fills b from the configured randomness.
func (e *Engine) random(b []byte) error {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	if _, err := io.ReadFull(e.rand, b); err != nil {
		return errorf(CodeInternal, KindInternal, "randomness: %v", err)
	}
	return nil
}

// newID returns a random identifier (127 random bits, base64url). The
// first byte's top bit is clear, so that an identifier never begins with
// '-' or '_' and a command line never takes one for a flag.
func (e *Engine) newID() (string, error) {
	var b [16]byte
	if err := e.random(b[:]); err != nil {
		return "", err
	}
	b[0] &= 0x7f
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Bounds of identifiers.
const (
	MaxIDLength   = 128
	MaxNameLength = 256
)

// checkID validates an identifier chosen by a caller (tenant, user) or
// handed back by one (enrollment, attempt, credential, device):
// 1..MaxIDLength bytes of letters, digits and . _ - : @.
func checkID(what, id string) error {
	if id == "" || len(id) > MaxIDLength {
		return invalid("%s must be 1 to %d characters", what, MaxIDLength)
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-:@", c) >= 0) {
			return invalid("%s %q has a character outside letters, digits and . _ - : @", what, id)
		}
	}
	return nil
}

// checkText validates free text (names, sign-in context): valid UTF-8
// without control characters, at most max bytes.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return invalid("%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid("%s has a control character", what)
		}
	}
	return nil
}

// checkUPN validates a user principal name: name@domain, case-insensitive.
func checkUPN(upn string) error {
	if err := checkText("upn", upn, MaxNameLength); err != nil {
		return err
	}
	at := strings.LastIndexByte(upn, '@')
	if at < 1 || at == len(upn)-1 || strings.ContainsAny(upn, " \t") {
		return invalid("upn %q is not name@domain", upn)
	}
	return nil
}

func upnKey(tenant, upn string) store.Key { return store.UserNameKey(tenant, strings.ToLower(upn)) }

// notifier wakes the waiters of an attempt when its state changes.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func (n *notifier) watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	n.mu.Lock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan struct{}]struct{}{}
	}
	n.waiters[id][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		if _, ok := n.waiters[id][ch]; ok {
			delete(n.waiters[id], ch)
			if len(n.waiters[id]) == 0 {
				delete(n.waiters, id)
			}
		}
		n.mu.Unlock()
	}
}

func (n *notifier) notify(id string) {
	n.mu.Lock()
	for ch := range n.waiters[id] {
		close(ch)
	}
	delete(n.waiters, id)
	n.mu.Unlock()
}

// Actors in the audit log.
const (
	ActorAdmin      = "admin"
	ActorAuthServer = "auth-server"
	ActorPhone      = "phone"
)

// audit stages an audit record in tx.
type actorKey struct{}

// WithActor returns a context that names who acts (for example an API key:
// "admin:k_…", "operator:…"). Administrative changes made with it are
// recorded in the audit log under that name; without it, under ActorAdmin.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// actorOf returns the actor WithActor put in ctx, or ActorAdmin.
func actorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return ActorAdmin
}

func (e *Engine) audit(tx *store.Tx, tenant, user, event string, code Code, actor string, details map[string]string) error {
	return tx.Audit(store.AuditRecord{Time: e.now(), Tenant: tenant, User: user, Event: event, Code: string(code), Actor: actor, Details: details})
}

// auditRefusal records a refusal in its own update (nothing else changes).
func (e *Engine) auditRefusal(tenant, user, event string, err error, actor string, details map[string]string) {
	code := CodeOf(err)
	if code == "" || KindOf(err) == KindUnavailable {
		return
	}
	if len(tenant) > MaxIDLength || len(user) > MaxIDLength {
		return
	}
	e.st.Update(nil, func(tx *store.Tx) error {
		return e.audit(tx, tenant, user, event, code, actor, details)
	})
}
