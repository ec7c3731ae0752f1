package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/valyala/fasthttp"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
)

// EngineConfig wires the engine into the server: the API of auth servers
// (sign-ins, enrollments), phones (attestations, signed requests, answers)
// and administrators (tenants, policies, users, groups, devices,
// credentials, API keys, audit, export).
type EngineConfig struct {
	Engine *engine.Engine
	// Store is the engine's store: /readyz checks it, GET /v1/export
	// streams a snapshot of it. The caller closes it, and should register
	// its Close with OnShutdown before EnableVerify and EnableEngine, so
	// that it closes last, after the drain.
	Store *store.Store
	// Keys, when set, is the authenticator of the engine's API keys: a
	// revoked key is dropped from its cache at once.
	Keys *EngineKeys
	// PollInterval is how often an auth server should poll an attempt's
	// outcome (poll_interval_seconds); default 2s. MaxWait caps the long
	// poll's wait parameter; default 30s.
	PollInterval, MaxWait time.Duration
	// SweepInterval is how often expired records (attempts, enrollments,
	// device request nonces) are deleted; default 1 minute.
	SweepInterval time.Duration
	// PhoneBodyLimit bounds the bodies of the phone routes (attestations);
	// default 256 KiB. Other routes take Config.BodyLimit.
	PhoneBodyLimit int
	// PhoneRateLimit bounds the requests of one enrollment (its
	// attestation and TPM activation routes) and of one credential (the
	// signed device requests), counted by the id the request names before
	// any evidence or signature is checked, so that a flood costs no
	// verification. Over it: 429 http.rate_limited with Retry-After. The
	// zero value sets no limit.
	PhoneRateLimit RateLimit
}

// maxPhoneLimiterKeys bounds the buckets of PhoneRateLimit.
const maxPhoneLimiterKeys = 1 << 17

// Role sets of the engine's routes.
var (
	authServerRoles = []Role{RoleAuthServer, RoleAdmin}
	adminRoles      = []Role{RoleAdmin, RoleOperator}
	operatorRoles   = []Role{RoleOperator}
)

// Codes of the engine API's own refusals (the engine's are passed through).
const (
	CodeQuery  = "input.query"  // a query parameter is malformed
	CodeHeader = "input.header" // a signed request's header is malformed
)

// engineAPI serves the engine's routes.
type engineAPI struct {
	s    *Server
	e    *engine.Engine
	st   *store.Store
	keys *EngineKeys
	cfg  EngineConfig
	// phoneLimiter counts the phone routes' requests by enrollment or
	// credential id (EngineConfig.PhoneRateLimit).
	phoneLimiter *keyLimiter
	phoneSeed    maphash.Seed
}

// phoneAllowed takes a token of the enrollment or credential a phone's
// request names (kind "enrollment" or "credential"), or returns the 429.
func (a *engineAPI) phoneAllowed(kind, id string) error {
	if a.phoneLimiter == nil {
		return nil
	}
	// Buckets are keyed by a keyed hash of the id: ids come from the
	// request, unchecked and of any length.
	var h maphash.Hash
	h.SetSeed(a.phoneSeed)
	h.WriteString(kind)
	h.WriteByte(0)
	h.WriteString(id)
	if wait, ok := a.phoneLimiter.allow(strconv.FormatUint(h.Sum64(), 36)); !ok {
		a.s.rateLimited.Inc()
		return &Problem{Status: fasthttp.StatusTooManyRequests, Code: CodeRateLimited, Detail: "too many requests for this " + kind, RetryAfter: wait}
	}
	return nil
}

// EnableEngine registers the engine's routes (see the README's "Server"
// section and the OpenAPI document), a readiness check of the store, and a
// periodic sweep of expired records, stopped at shutdown. Call it once,
// before Listen.
func (s *Server) EnableEngine(cfg EngineConfig) {
	if cfg.Engine == nil || cfg.Store == nil {
		panic("server: EnableEngine without an engine and its store")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.PhoneBodyLimit <= 0 {
		cfg.PhoneBodyLimit = 256 << 10
	}
	a := &engineAPI{s: s, e: cfg.Engine, st: cfg.Store, keys: cfg.Keys, cfg: cfg, phoneLimiter: newBoundedLimiter(cfg.PhoneRateLimit, maxPhoneLimiterKeys), phoneSeed: maphash.MakeSeed()}
	a.registerAuthServer()
	a.registerPhone()
	a.registerAdmin()
	s.ReadyCheck("store", func() error {
		_, err := cfg.Store.Has(store.TenantKey("readyz"))
		return err
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go a.sweep(stop, done)
	var once sync.Once
	s.OnShutdown(func() error {
		once.Do(func() { close(stop); <-done })
		return nil
	})
}

// sweep deletes expired records until stop is closed.
func (a *engineAPI) sweep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for {
			n, err := a.e.Sweep(context.Background(), 1000)
			if err != nil {
				a.s.log.Warn("sweeping expired records", "error", err.Error())
				break
			}
			if n < 1000 {
				break
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}
}

// handle registers an engine route: refused with 503 while the server
// shuts down, its engine errors answered as problems.
func (a *engineAPI) handle(r Route) {
	h := r.Handler
	r.Handler = func(c *Ctx) error {
		if a.s.draining.Load() {
			return &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeShuttingDown, Detail: "the server is shutting down", RetryAfter: 1}
		}
		return engineProblem(h(c))
	}
	a.s.Handle(r)
}

// engineProblem turns an engine error into the problem to answer: the
// status by the error's kind, the engine's code, its reason (for an
// unknown id, a fixed text, so that an id of another tenant and an absent
// one are answered alike). Other errors pass through.
func engineProblem(err error) error {
	var ee *engine.Error
	if err == nil || !errors.As(err, &ee) {
		return err
	}
	p := &Problem{Code: string(ee.Code), Detail: ee.Reason}
	switch ee.Kind {
	case engine.KindInvalid:
		p.Status = fasthttp.StatusBadRequest
	case engine.KindUnauthenticated:
		p.Status = fasthttp.StatusUnauthorized
	case engine.KindForbidden:
		p.Status = fasthttp.StatusForbidden
	case engine.KindNotFound:
		p.Status = fasthttp.StatusNotFound
		p.Detail = notFoundDetail(ee.Code)
	case engine.KindConflict:
		p.Status = fasthttp.StatusConflict
	case engine.KindGone:
		p.Status = fasthttp.StatusGone
	case engine.KindTooManyRequests:
		p.Status = fasthttp.StatusTooManyRequests
		p.RetryAfter = max(1, int(math.Ceil(ee.RetryAfter.Seconds())))
	case engine.KindUnavailable:
		p.Status = fasthttp.StatusServiceUnavailable
		p.Detail = "the store is unavailable"
		p.RetryAfter = 1
	default:
		return err // a bug: answered 500 and logged
	}
	return p
}

// notFoundDetail is the detail of a 404: the same for every id of a kind,
// so that it says nothing of ids of other tenants.
func notFoundDetail(code engine.Code) string {
	switch code {
	case engine.CodeSignInNotFound:
		return "no such sign-in attempt"
	case engine.CodeSignInNone:
		return "no sign-in is waiting for this credential"
	case engine.CodeEnrollNotFound:
		return "no such enrollment"
	case engine.CodeAPIKeyNotFound:
		return "no such API key"
	case engine.CodeTPMNoActivation:
		return "no TPM activation is pending for this enrollment"
	}
	family, _, _ := strings.Cut(string(code), ".")
	return "no such " + family
}

// notFound is the answer for an id the caller may not see.
func notFound(code engine.Code) *Problem {
	return &Problem{Status: fasthttp.StatusNotFound, Code: string(code), Detail: notFoundDetail(code)}
}

// tenantOf returns the tenant a route's {tenant} names, when the caller
// may act on it: an operator on any tenant, an admin on its own. Any other
// tenant is answered as an absent one.
func tenantOf(c *Ctx) (string, error) {
	t := c.Param("tenant")
	if c.Principal.Role != RoleOperator && t != c.Principal.Tenant {
		return "", notFound(engine.CodeTenantNotFound)
	}
	return t, nil
}

// Bytes is a byte string in JSON: base64 in the standard or the URL-safe
// alphabet, padding optional, when read; standard base64 with padding
// when written. In CBOR it is a byte string.
type Bytes []byte

func (b Bytes) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"'), nil
}

func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("want a base64 string")
	}
	d, ok := decodeBase64([]byte(s))
	if !ok {
		return errors.New("not base64")
	}
	*b = d
	return nil
}

// strictCBOR decodes CBOR request bodies under the strict profile of
// attest.UnmarshalCBOR, with unknown members refused and member names
// matched exactly.
var strictCBOR = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   attest.CBORMaxNesting,
		MaxArrayElements:  attest.CBORMaxArray,
		MaxMapPairs:       attest.CBORMaxMapPairs,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// contentType returns the request's media type, without parameters.
func (c *Ctx) contentType() string {
	ct := c.rc.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(string(ct)))
}

// decodeBody decodes a JSON body, or on the phone routes (cbor true) a
// CBOR one (Content-Type application/cbor).
func decodeBody(c *Ctx, v any, allowCBOR bool) error {
	if allowCBOR && c.contentType() == "application/cbor" {
		body := c.rc.Request.Body()
		if err := strictCBOR.Unmarshal(body, v); err != nil {
			// Not well formed under the profile: the profile's code;
			// well formed but not the request's shape: cbor.type.
			code := string(attest.CodeCBORType)
			if perr := attest.UnmarshalCBOR("request", body, new(any)); perr != nil {
				code = string(attest.CodeOf(perr))
			}
			return Problemf(fasthttp.StatusBadRequest, code, "request: %v", err)
		}
		return nil
	}
	if err := c.DecodeJSON(v); err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Status == fasthttp.StatusUnsupportedMediaType && allowCBOR {
			p.Detail = "the body must be application/json or application/cbor"
		}
		return err
	}
	return nil
}

// query returns a query parameter ("" when absent).
func (c *Ctx) query(name string) string {
	return string(c.rc.QueryArgs().Peek(name))
}

// queryTime parses an RFC 3339 query parameter (zero when absent).
func queryTime(c *Ctx, name string) (time.Time, error) {
	v := c.query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, Problemf(fasthttp.StatusBadRequest, CodeQuery, "%s: want an RFC 3339 time such as 2026-06-01T09:00:00Z", name)
	}
	return t, nil
}

// queryInt parses a non-negative integer query parameter (def when
// absent).
func queryInt(c *Ctx, name string, def int) (int, error) {
	v := c.rc.QueryArgs().Peek(name)
	if v == nil {
		return def, nil
	}
	n := 0
	if len(v) == 0 || len(v) > 9 {
		return 0, Problemf(fasthttp.StatusBadRequest, CodeQuery, "%s: want a whole number", name)
	}
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, Problemf(fasthttp.StatusBadRequest, CodeQuery, "%s: want a whole number", name)
		}
		n = n*10 + int(d-'0')
	}
	return n, nil
}

// checkQuery refuses query parameters a route does not read, so that a
// misspelt filter is not silently ignored.
func checkQuery(c *Ctx, allowed ...string) error {
	var bad string
	c.rc.QueryArgs().VisitAll(func(k, _ []byte) {
		for _, a := range allowed {
			if string(k) == a {
				return
			}
		}
		if bad == "" {
			bad = string(k)
		}
	})
	if bad != "" {
		if len(allowed) == 0 {
			return Problemf(fasthttp.StatusBadRequest, CodeQuery, "unknown query parameter %q (this route takes none)", bad)
		}
		return Problemf(fasthttp.StatusBadRequest, CodeQuery, "unknown query parameter %q (this route takes %s)", bad, strings.Join(allowed, ", "))
	}
	return nil
}

// noBody refuses a body on routes that take none.
func noBody(c *Ctx) error {
	if len(c.rc.Request.Body()) > 0 {
		return Problemf(fasthttp.StatusBadRequest, CodeJSON, "this route takes no body")
	}
	return nil
}

// credentialView is a credential as the API shows it (without the
// enrollment challenge).
type credentialView struct {
	ID            string          `json:"id"`
	Tenant        string          `json:"tenant"`
	User          string          `json:"user"`
	Device        string          `json:"device"`
	Format        string          `json:"format"`
	Trust         string          `json:"trust"`
	Root          string          `json:"root,omitempty"`
	PublicKey     Bytes           `json:"public_key"`
	KeyID         Bytes           `json:"key_id"`
	AppID         string          `json:"app_id,omitempty"`
	Statement     string          `json:"statement,omitempty"`
	WebAuthnID    Bytes           `json:"webauthn_id,omitempty"`
	COSEAlgorithm int64           `json:"cose_algorithm,omitempty"`
	Counter       uint32          `json:"counter,omitempty"`
	Facts         json.RawMessage `json:"facts,omitempty"`
	Disabled      bool            `json:"disabled"`
	CreatedAt     time.Time       `json:"created_at"`
	LastUsedAt    time.Time       `json:"last_used_at,omitzero"`
}

func viewCredential(c *engine.Credential) credentialView {
	return credentialView{
		ID: c.ID, Tenant: c.Tenant, User: c.User, Device: c.Device, Format: c.Format, Trust: c.Trust, Root: c.Root,
		PublicKey: c.PublicKey, KeyID: c.KeyID, AppID: c.AppID, Statement: c.Statement, WebAuthnID: c.WebAuthnID,
		COSEAlgorithm: c.COSEAlgorithm, Counter: c.Counter, Facts: c.Facts, Disabled: c.Disabled,
		CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt,
	}
}

// EngineKeys authenticates the API keys the engine stores (by their
// SHA-256), keeping the keys it has seen in a bounded cache so that the
// verify endpoint's hot path does not read the store. Revoking a key
// through the API drops it from the cache at once (Forget).
type EngineKeys struct {
	e     *engine.Engine
	max   int
	mu    sync.RWMutex
	cache map[[32]byte]Principal
	epoch uint64
}

// NewEngineKeys returns an authenticator of e's API keys caching up to max
// keys (max <= 0 means 65536).
func NewEngineKeys(e *engine.Engine, max int) *EngineKeys {
	if max <= 0 {
		max = 65536
	}
	return &EngineKeys{e: e, max: max, cache: map[[32]byte]Principal{}}
}

func (k *EngineKeys) Authenticate(key []byte) (Principal, error) {
	if !bytes.HasPrefix(key, []byte(engine.APIKeyPrefix)) {
		return Principal{}, ErrUnauthenticated
	}
	h := sha256.Sum256(key)
	k.mu.RLock()
	p, ok := k.cache[h]
	epoch := k.epoch
	k.mu.RUnlock()
	if ok {
		return p, nil
	}
	rec, err := k.e.APIKeyByHash(h)
	switch {
	case engine.CodeOf(err) == engine.CodeAPIKeyNotFound:
		return Principal{}, ErrUnauthenticated
	case err != nil:
		return Principal{}, err
	}
	p = Principal{Tenant: rec.Tenant, Role: Role(rec.Role), KeyID: rec.ID}
	k.mu.Lock()
	if k.epoch == epoch { // not revoked meanwhile
		if len(k.cache) >= k.max {
			clear(k.cache)
		}
		k.cache[h] = p
	}
	k.mu.Unlock()
	return p, nil
}

// Forget drops the key with this id from the cache; call it once its
// revocation is durable.
func (k *EngineKeys) Forget(id string) {
	k.mu.Lock()
	k.epoch++
	for h, p := range k.cache {
		if p.KeyID == id {
			delete(k.cache, h)
		}
	}
	k.mu.Unlock()
}

// engineResolver is the verify endpoint's KeyResolver over the engine.
type engineResolver struct{ e *engine.Engine }

// EngineKeyResolver resolves the verify endpoint's credential ids with the
// engine: a credential of the caller's tenant, enabled, on a device enabled
// in the tenant. Anything else is ErrUnknownCredential.
func EngineKeyResolver(e *engine.Engine) KeyResolver { return engineResolver{e} }

func (r engineResolver) ResolveKey(tenant string, id []byte) ([]byte, error) {
	ctx := context.Background()
	c, err := r.e.GetCredential(ctx, tenant, string(id))
	switch kind := engine.KindOf(err); {
	case err == nil:
	case kind == engine.KindNotFound || kind == engine.KindInvalid:
		return nil, ErrUnknownCredential
	default:
		return nil, err
	}
	if c.Disabled {
		return nil, ErrUnknownCredential
	}
	d, err := r.e.GetDevice(ctx, tenant, c.Device)
	switch kind := engine.KindOf(err); {
	case err == nil:
	case kind == engine.KindNotFound || kind == engine.KindInvalid:
		return nil, ErrUnknownCredential
	default:
		return nil, err
	}
	if d.Disabled {
		return nil, ErrUnknownCredential
	}
	return c.PublicKey, nil
}

// invalidate drops the verify endpoint's cached keys of credentials.
func (a *engineAPI) invalidate(ids ...string) {
	for _, id := range ids {
		a.s.InvalidateCredential([]byte(id))
	}
}

// created writes v with 201.
func created(c *Ctx, v any) error { return c.JSON(fasthttp.StatusCreated, v) }

// ok writes v with 200.
func ok(c *Ctx, v any) error { return c.JSON(fasthttp.StatusOK, v) }

// noContent answers 204.
func noContent(c *Ctx) error {
	c.rc.SetStatusCode(fasthttp.StatusNoContent)
	c.rc.Response.Header.Set("Cache-Control", "no-store")
	return nil
}

// actorCtx is the request's context naming the caller, so that the audit
// records of administrative changes say which key made them.
func (a *engineAPI) actorCtx(c *Ctx) context.Context {
	return engine.WithActor(c.Context(), actor(c))
}

// actor names the caller for records and the audit log.
func actor(c *Ctx) string {
	if c.Principal.KeyID != "" {
		return fmt.Sprintf("%s:%s", c.Principal.Role, c.Principal.KeyID)
	}
	return string(c.Principal.Role)
}
