package server

import (
	"encoding/base64"
	"errors"
	"strconv"
	"sync"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/verify"
	"github.com/valyala/fasthttp"
)

// VerifyConfig configures the stateless verify endpoint.
type VerifyConfig struct {
	// Pipeline verifies the signatures. Required; the server closes it at
	// shutdown, after the drain.
	Pipeline *verify.Pipeline
	// Keys resolves "credential_id" items within the caller's tenant.
	// Without it such items fail with input.unknown_credential.
	Keys KeyResolver
	// MaxItems bounds the items of one request. Default 256.
	MaxItems int
	// BodyLimit bounds the request body. Default 1 MiB.
	BodyLimit int
	// CredentialCache and PublicKeyCache bound the parsed keys kept by
	// credential id and by encoded public key. Default 65536 each.
	CredentialCache, PublicKeyCache int
}

// VerifyRoles may call POST /v1/verify.
var VerifyRoles = []Role{RoleVerify, RoleAuthServer, RoleAdmin}

// The codes of a verify item that fails before its signature is checked
// (the pipeline's own codes are in package verify).
const (
	// CodeItemKey: neither or both of public_key and credential_id.
	CodeItemKey attest.Code = "input.key"
	// CodeEncoding: a byte field is not base64.
	CodeEncoding attest.Code = "input.encoding"
	// CodeUnknownCredential: the tenant has no such (enabled) credential.
	CodeUnknownCredential attest.Code = "input.unknown_credential"
	// CodeField: a member that does not apply to the item's algorithm
	// (previous_counter on an ECDSA item, …).
	CodeField attest.Code = "input.field"
	// CodeItems is the request-level code of a request without items or
	// with too many.
	CodeItems = "input.items"
)

type verifyAPI struct {
	s        *Server
	p        *verify.Pipeline
	keys     KeyResolver
	maxItems int
	creds    *verify.KeyCache
	pubs     *verify.KeyCache
	reqs     sync.Pool
	refused  sync.Map // code → *Counter
}

// EnableVerify registers POST /v1/verify. Call it once, before Listen.
func (s *Server) EnableVerify(cfg VerifyConfig) {
	if cfg.Pipeline == nil {
		panic("server: EnableVerify without a pipeline")
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 256
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	v := &verifyAPI{s: s, p: cfg.Pipeline, keys: cfg.Keys, maxItems: cfg.MaxItems,
		creds: verify.NewKeyCache(cfg.CredentialCache), pubs: verify.NewKeyCache(cfg.PublicKeyCache)}
	v.reqs.New = func() any { return new(verifyReq) }
	s.verify = v
	s.Handle(Route{Method: "POST", Path: "/v1/verify", Name: "verify", Handler: v.serve, BodyLimit: cfg.BodyLimit, Roles: VerifyRoles})
	s.metrics.Collect(v.collect)
	s.OnShutdown(func() error { cfg.Pipeline.Close(); return nil })
}

// InvalidateCredential drops the cached key of a credential; the engine
// calls it once a credential's deletion or disabling is durable.
func (s *Server) InvalidateCredential(credentialID []byte) {
	if s.verify != nil {
		s.verify.creds.Invalidate(credentialID)
	}
}

// itemIn is one item as read from the request.
type itemIn struct {
	alg                        []byte
	pub, cred                  []byte
	msg, digest, sig           []byte
	assertion, clientData, app []byte
	challenge                  []byte
	counter                    uint64
	has                        uint16
	code                       attest.Code
	// An App Attest item's signed digest, and its counter once valid.
	appAttest  bool
	newCounter uint32
	signed     [32]byte
}

// verifyReq is the per-request state, pooled: nothing of it refers to the
// request body once parsed (byte fields are decoded into arena).
type verifyReq struct {
	sc      jsonScanner
	in      []itemIn
	items   []verify.Item
	results []verify.Result
	pos     []int
	arena   []byte
	out     []byte
}

const (
	fAlgorithm = 1 << iota
	fPublicKey
	fCredential
	fMessage
	fDigest
	fSignature
	fAssertion
	fClientData
	fAppID
	fCounter
	fChallenge
)

var fieldNames = [...]string{"algorithm", "public_key", "credential_id", "message", "digest", "signature", "assertion", "client_data", "app_id", "previous_counter", "challenge"}

var (
	b64Std = base64.RawStdEncoding.Strict()
	b64URL = base64.RawURLEncoding.Strict()
)

func (v *verifyAPI) serve(c *Ctx) error {
	if p := c.RequireJSON(); p != nil {
		return p
	}
	r := v.reqs.Get().(*verifyReq)
	defer v.release(r)
	if p := v.parse(r, c.Body()); p != nil {
		return p
	}
	tenant := c.Principal.Tenant
	r.items, r.pos = r.items[:0], r.pos[:0]
	for i := range r.in {
		in := &r.in[i]
		if in.code != "" {
			continue
		}
		it, code := v.item(in, tenant)
		if code != "" {
			in.code = code
			continue
		}
		r.items = append(r.items, it)
		r.pos = append(r.pos, i)
	}
	if cap(r.results) < len(r.items) {
		r.results = make([]verify.Result, len(r.items), v.maxItems)
	}
	r.results = r.results[:len(r.items)]
	switch err := v.p.Verify(r.items, r.results); {
	case errors.Is(err, verify.ErrOverloaded):
		return &Problem{Status: fasthttp.StatusTooManyRequests, Code: CodeOverloaded, Detail: "too many signatures waiting; retry shortly", RetryAfter: 1}
	case errors.Is(err, verify.ErrClosed):
		return &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeShuttingDown, Detail: "the server is shutting down", RetryAfter: 1}
	case err != nil:
		return err
	}
	for i := range r.in {
		if code := r.in[i].code; code != "" {
			v.refusedCount(code).Inc()
		}
	}
	for k, i := range r.pos {
		r.in[i].code = r.results[k].Code
	}
	out := append(r.out[:0], `{"results":[`...)
	for i := range r.in {
		if i > 0 {
			out = append(out, ',')
		}
		if code := r.in[i].code; code == "" && r.in[i].appAttest {
			out = append(out, `{"valid":true,"counter":`...)
			out = strconv.AppendUint(out, uint64(r.in[i].newCounter), 10)
			out = append(out, '}')
		} else if code == "" {
			out = append(out, `{"valid":true}`...)
		} else {
			out = append(out, `{"valid":false,"code":"`...)
			out = appendJSONStringContent(out, string(code))
			out = append(out, `"}`...)
		}
	}
	out = append(out, "]}\n"...)
	r.out = out
	c.Raw(fasthttp.StatusOK, "application/json", out)
	return nil
}

func (v *verifyAPI) release(r *verifyReq) {
	clear(r.items)
	clear(r.in)
	r.in, r.items = r.in[:0], r.items[:0]
	if cap(r.arena) > 256<<10 {
		r.arena = nil
	}
	if cap(r.out) > 64<<10 {
		r.out = nil
	}
	r.sc.reset(nil)
	v.reqs.Put(r)
}

// parse reads the request body into r.in, decoding every byte field into
// r.arena. Errors in the JSON structure fail the request; errors in an
// item's values fail that item only.
func (v *verifyAPI) parse(r *verifyReq, body []byte) *Problem {
	if cap(r.arena) < len(body) {
		r.arena = make([]byte, 0, len(body))
	}
	r.arena = r.arena[:0]
	sc := &r.sc
	sc.reset(body)
	seen := false
	if !sc.expect('{') {
		return jsonProblem(sc)
	}
	if sc.peek() == '}' {
		sc.i++
	} else {
		for {
			name, ok := sc.str()
			if !ok || !sc.expect(':') {
				return jsonProblem(sc)
			}
			if string(name) != "items" {
				return Problemf(fasthttp.StatusBadRequest, CodeJSON, "unknown member %q (a verify request has only \"items\")", name)
			}
			if seen {
				return Problemf(fasthttp.StatusBadRequest, CodeJSON, "duplicate member \"items\"")
			}
			seen = true
			if p := v.parseItems(r); p != nil {
				return p
			}
			if !sc.next('}') {
				break
			}
		}
	}
	if !sc.end() {
		return jsonProblem(sc)
	}
	if !seen || len(r.in) == 0 {
		return Problemf(fasthttp.StatusBadRequest, CodeItems, "a verify request needs \"items\": a non-empty array")
	}
	return nil
}

func jsonProblem(sc *jsonScanner) *Problem {
	return Problemf(fasthttp.StatusBadRequest, CodeJSON, "malformed JSON: %s", sc.err)
}

func (v *verifyAPI) parseItems(r *verifyReq) *Problem {
	sc := &r.sc
	if !sc.expect('[') {
		return jsonProblem(sc)
	}
	if sc.peek() == ']' {
		sc.i++
		return nil
	}
	for {
		if len(r.in) == v.maxItems {
			return Problemf(fasthttp.StatusBadRequest, CodeItems, "more than %d items in one request", v.maxItems)
		}
		r.in = append(r.in, itemIn{})
		if p := v.parseItem(r, &r.in[len(r.in)-1], len(r.in)-1); p != nil {
			return p
		}
		if !sc.next(']') {
			break
		}
	}
	if sc.err != "" {
		return jsonProblem(sc)
	}
	return nil
}

func (v *verifyAPI) parseItem(r *verifyReq, in *itemIn, idx int) *Problem {
	sc := &r.sc
	if !sc.expect('{') {
		return jsonProblem(sc)
	}
	if sc.peek() == '}' {
		sc.i++
		in.code = verify.CodeAlgorithm
		return nil
	}
	for {
		name, ok := sc.str()
		if !ok || !sc.expect(':') {
			return jsonProblem(sc)
		}
		f := -1
		for i, fn := range fieldNames {
			if string(name) == fn {
				f = i
				break
			}
		}
		if f < 0 {
			return Problemf(fasthttp.StatusBadRequest, CodeJSON, "items[%d]: unknown member %q", idx, name)
		}
		bit := uint16(1) << f
		if in.has&bit != 0 {
			return Problemf(fasthttp.StatusBadRequest, CodeJSON, "items[%d]: duplicate member %q", idx, name)
		}
		in.has |= bit
		if bit == fCounter {
			n, ok := sc.uint(1<<32 - 1)
			if !ok {
				return Problemf(fasthttp.StatusBadRequest, CodeJSON, "items[%d].previous_counter: %s", idx, sc.err)
			}
			in.counter = n
		} else {
			s, ok := sc.str()
			if !ok {
				return Problemf(fasthttp.StatusBadRequest, CodeJSON, "items[%d].%s: %s", idx, name, sc.err)
			}
			switch bit {
			case fAlgorithm:
				in.alg = r.keep(s)
			case fPublicKey:
				// Kept encoded: the key cache is keyed by the text, so a
				// known key is neither decoded nor parsed again.
				in.pub = r.keep(s)
			case fCredential:
				in.cred = r.keep(s)
			case fAppID:
				in.app = r.keep(s)
			default:
				b, ok := r.decode(s)
				if !ok && in.code == "" {
					in.code = CodeEncoding
				}
				switch bit {
				case fMessage:
					in.msg = b
				case fDigest:
					in.digest = b
				case fSignature:
					in.sig = b
				case fAssertion:
					in.assertion = b
				case fClientData:
					in.clientData = b
				case fChallenge:
					in.challenge = b
				}
			}
		}
		if !sc.next('}') {
			break
		}
	}
	if sc.err != "" {
		return jsonProblem(sc)
	}
	return nil
}

// keep copies s into the arena.
func (r *verifyReq) keep(s []byte) []byte {
	n := len(r.arena)
	r.arena = append(r.arena, s...)
	return r.arena[n:len(r.arena):len(r.arena)]
}

// decodeBase64 decodes base64 (standard or URL alphabet, padding optional)
// into a new slice.
func decodeBase64(s []byte) ([]byte, bool) {
	var r verifyReq
	r.arena = make([]byte, 0, len(s))
	return r.decode(s)
}

// decode decodes base64 (standard or URL alphabet, padding optional) into
// the arena. The decoded bytes are never longer than the JSON string, so
// the arena (as large as the body) never grows and earlier slices stay put.
func (r *verifyReq) decode(s []byte) ([]byte, bool) {
	if len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
		if len(s) > 0 && s[len(s)-1] == '=' {
			s = s[:len(s)-1]
		}
	}
	enc := b64Std
	for _, c := range s {
		if c == '-' || c == '_' {
			enc = b64URL
			break
		}
	}
	n := len(r.arena)
	if n+enc.DecodedLen(len(s)) > cap(r.arena) {
		return nil, false
	}
	dst := r.arena[n : n+enc.DecodedLen(len(s))]
	m, err := enc.Decode(dst, s)
	if err != nil {
		return nil, false
	}
	r.arena = r.arena[:n+m]
	return r.arena[n : n+m : n+m], true
}

// item turns a parsed item into a pipeline item, or the code it fails
// with.
func (v *verifyAPI) item(in *itemIn, tenant string) (verify.Item, attest.Code) {
	var it verify.Item
	if in.has&fAlgorithm == 0 {
		return it, verify.CodeAlgorithm
	}
	alg, ok := verify.ParseAlgorithm(in.alg)
	if !ok {
		return it, verify.CodeAlgorithm
	}
	it.Algorithm = alg
	switch in.has & (fPublicKey | fCredential) {
	case fPublicKey:
		pub := in.pub
		k, err := v.pubs.Get(pub, "", func() (*verify.PublicKey, error) {
			der, ok := decodeBase64(pub)
			if !ok {
				return nil, attest.Errorf(verify.CodePublicKey, "not base64")
			}
			return verify.ParsePublicKey(der)
		})
		if err != nil {
			return it, verify.CodePublicKey
		}
		it.Key = k
	case fCredential:
		if v.keys == nil || len(in.cred) == 0 {
			return it, CodeUnknownCredential
		}
		k, err := v.creds.Get(in.cred, tenant, func() (*verify.PublicKey, error) {
			b, err := v.keys.ResolveKey(tenant, in.cred)
			if err != nil {
				return nil, err
			}
			return verify.ParsePublicKey(b)
		})
		switch {
		case errors.Is(err, ErrUnknownCredential):
			return it, CodeUnknownCredential
		case err != nil && attest.CodeOf(err) != "":
			return it, attest.CodeOf(err)
		case err != nil:
			return it, CodeUnknownCredential
		}
		it.Key = k
	default:
		return it, CodeItemKey
	}
	if alg == verify.AppAttest {
		return v.appAttestItem(in, it.Key)
	}
	if in.has&(fAssertion|fClientData|fAppID|fCounter|fChallenge) != 0 {
		return it, CodeField
	}
	if in.has&fMessage != 0 {
		it.Message = in.msg
		if it.Message == nil {
			it.Message = []byte{}
		}
	}
	if in.has&fDigest != 0 {
		it.Digest = in.digest
		if it.Digest == nil {
			it.Digest = []byte{}
		}
	}
	it.Signature = in.sig
	if code := verify.Precheck(&it); code != "" {
		return it, code
	}
	return it, ""
}

// appAttestItem prepares an App Attest item: the assertion plays the
// signature, the client data the message.
func (v *verifyAPI) appAttestItem(in *itemIn, key *verify.PublicKey) (verify.Item, attest.Code) {
	switch {
	case in.has&(fMessage|fDigest|fSignature) != 0:
		return verify.Item{}, CodeField
	case in.has&fAssertion == 0:
		return verify.Item{}, verify.CodeSignatureEncoding
	case in.has&fClientData == 0:
		return verify.Item{}, verify.CodeMessage
	}
	opts := appattest.AssertionOptions{PreviousCounter: uint32(in.counter), Challenge: in.challenge}
	if in.has&fAppID != 0 {
		opts.AppIDs = []string{string(in.app)}
	}
	it, counter, err := verify.AppAttestItem(key, in.assertion, in.clientData, opts, &in.signed)
	if err != nil {
		if code := attest.CodeOf(err); code != "" {
			return it, code
		}
		return it, verify.CodeSignature
	}
	in.appAttest, in.newCounter = true, counter
	return it, ""
}

// refusedCount is the counter of items refused with code before reaching
// the pipeline.
func (v *verifyAPI) refusedCount(code attest.Code) *Counter {
	if c, ok := v.refused.Load(code); ok {
		return c.(*Counter)
	}
	c, _ := v.refused.LoadOrStore(code, v.s.metrics.Counter("keybind_verify_items_refused_total", "Verify items refused before their signature was checked, by code.", Label{"code", string(code)}))
	return c.(*Counter)
}

func (v *verifyAPI) collect(w *MetricWriter) {
	st := v.p.Stats()
	w.Family("keybind_verify_items_total", "Signatures checked by the verification pipeline, by algorithm and result (valid, or the failing code).", "counter")
	for _, vc := range st.Verdicts {
		result := string(vc.Code)
		if result == "" {
			result = "valid"
		}
		w.Sample("keybind_verify_items_total", float64(vc.Count), Label{"algorithm", vc.Algorithm.String()}, Label{"result", result})
	}
	w.Family("keybind_verify_batch_size", "Items per batch taken by a verifying goroutine.", "histogram")
	bounds := make([]float64, len(verify.BatchBounds))
	for i, b := range verify.BatchBounds {
		bounds[i] = float64(b)
	}
	w.HistogramSample("keybind_verify_batch_size", bounds, st.BatchCounts[:], float64(st.BatchItems))
	w.Family("keybind_verify_queue_depth", "Items waiting for a worker.", "gauge")
	w.Sample("keybind_verify_queue_depth", float64(st.QueueDepth))
	w.Family("keybind_verify_requests_total", "Requests given to the verification pipeline, by path: verified by their own goroutine (light load) or through the queue (load).", "counter")
	w.Sample("keybind_verify_requests_total", float64(st.OnTheSpot), Label{"path", "on_the_spot"})
	w.Sample("keybind_verify_requests_total", float64(st.Queued), Label{"path", "queued"})
	w.Family("keybind_verify_overloaded_total", "Requests refused because the queue was full.", "counter")
	w.Sample("keybind_verify_overloaded_total", float64(st.Overloaded))
	w.Family("keybind_verify_ed25519_batch_failures_total", "Ed25519 batch equations that failed (followed by single checks).", "counter")
	w.Sample("keybind_verify_ed25519_batch_failures_total", float64(st.Ed25519BatchFailures))
	w.Family("keybind_verify_cached_keys", "Parsed public keys cached, by cache.", "gauge")
	w.Sample("keybind_verify_cached_keys", float64(v.creds.Len()), Label{"cache", "credential"})
	w.Sample("keybind_verify_cached_keys", float64(v.pubs.Len()), Label{"cache", "public_key"})
}
