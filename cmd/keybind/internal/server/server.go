// Package server is keybind's HTTP front end: a fasthttp server with a
// router for the versioned /v1 API, errors as application/problem+json with
// stable codes, API-key authentication, per-route body limits, timeouts,
// connection limits per IP, panic recovery around every handler, metrics in
// the Prometheus text format, structured logs and graceful shutdown. It
// serves the operations routes (/healthz, /readyz, /metrics,
// /v1/openapi.json) and the stateless verify endpoint (POST /v1/verify);
// the engine's routes plug in with Handle.
//
//	s := server.New(server.Config{Addr: "127.0.0.1:8443", Authenticator: keys})
//	s.Handle(server.Route{Method: "GET", Path: "/v1/tenants/{tenant}", Roles: []server.Role{server.RoleAdmin},
//		Handler: func(c *server.Ctx) error {
//			if c.Param("tenant") != c.Principal.Tenant {
//				return server.Problemf(404, "tenant.not_found", "no such tenant")
//			}
//			return c.JSON(200, tenant)
//		}})
//	s.OnShutdown(store.Close) // closed after the last request has drained
//	addr, err := s.Listen()
//	err = s.Serve(ctx) // until ctx is done; then stop accepting, drain, close
//
// A handler returns a *Problem for a client error; any other error is a 500
// and a logged bug, and so is a panic (the process stays up). The request
// body (Ctx.Body) belongs to fasthttp and is reused once the handler
// returns: work that outlives the handler must use Ctx.CopyBody.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config configures a Server. The zero value listens on 127.0.0.1:8443
// with conservative limits.
type Config struct {
	// Addr is the address to listen on. Default "127.0.0.1:8443".
	Addr string
	// ReadTimeout bounds reading a request (headers and body),
	// WriteTimeout writing a response, IdleTimeout the wait for the next
	// request on a kept-alive connection. Defaults 10s, 10s, 60s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns bounds open connections (default 10000), MaxConnsPerIP
	// those from one IP address (default 512). Connections over the limits
	// are answered 429 or 503 and closed.
	MaxConns, MaxConnsPerIP int
	// BodyLimit is the body limit of routes that set none. Default 64 KiB.
	BodyLimit int
	// ShutdownTimeout bounds the drain of in-flight requests at shutdown.
	// Default 30s.
	ShutdownTimeout time.Duration
	// Authenticator resolves API keys. Without one, every route that needs
	// a key answers 401.
	Authenticator Authenticator
	// Logger receives the server's structured logs. Default: JSON on
	// standard error, level info.
	Logger *slog.Logger
	// Version is reported by /healthz.
	Version string
	// RateLimit bounds the requests of one API key to the routes that need
	// a key, except POST /v1/verify, which VerifyRateLimit bounds (the
	// verify pipeline also refuses work past its queue). A key over its
	// limit is answered 429 http.rate_limited with Retry-After. The zero
	// value sets no limit.
	RateLimit, VerifyRateLimit RateLimit
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8443"
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 512
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = 64 << 10
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return c
}

// Handler serves a request. It returns nil after writing its response
// (Ctx.JSON, Ctx.Raw), a *Problem for a client error, or another error for
// a failure of the server (answered 500 and logged).
type Handler func(c *Ctx) error

// Route is a registered endpoint.
type Route struct {
	// Method and Path: path segments in braces are parameters
	// ("/v1/tenants/{tenant}"); a static segment wins over a parameter.
	Method, Path string
	// Name labels the route's metrics; default Path.
	Name    string
	Handler Handler
	// BodyLimit bounds the request body, in bytes; larger bodies are
	// answered 413 before they are read. Default Config.BodyLimit.
	BodyLimit int
	// Roles may call the route; empty means no API key is needed.
	Roles []Role
}

// Server is the HTTP front end. Create it with New, register routes with
// Handle before Listen, then Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	http     *fasthttp.Server
	router   router
	metrics  *Metrics
	ctxPool  sync.Pool
	started  time.Time
	draining atomic.Bool
	serving  atomic.Bool
	// stopping is the context of the handlers' work (Ctx.Context): it is
	// canceled when the shutdown begins, which ends long polls early.
	// Handlers never use the fasthttp.RequestCtx as a context: contexts
	// derived from it may outlive the request and read it after fasthttp
	// has reused it.
	stopping context.Context
	stop     context.CancelFunc
	// refusing holds a token per refused connection lingering.
	refusing chan struct{}

	mu          sync.Mutex
	closers     []func() error
	readyChecks []readyCheck
	codeStatus  []codeStatus

	verify      *verifyAPI
	limiter     *keyLimiter
	vlimiter    *keyLimiter
	tls         *tls.Config
	ln          net.Listener
	addr        net.Addr
	unmatched   *route
	panics      *Counter
	inflight    *Gauge
	connRefuse  *Counter
	rateLimited *Counter
}

type readyCheck struct {
	name  string
	check func() error
}

type codeStatus struct {
	prefix string
	status int
}

// New returns a server with the operations routes registered.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: NewMetrics(), started: time.Now(),
		limiter: newKeyLimiter(cfg.RateLimit), vlimiter: newKeyLimiter(cfg.VerifyRateLimit)}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.refusing = make(chan struct{}, maxLingeringRefusals)
	s.ctxPool.New = func() any { return &Ctx{s: s} }
	s.panics = s.metrics.Counter("keybind_http_panics_total", "Handler panics recovered (each one a bug, logged with its stack).")
	s.inflight = s.metrics.Gauge("keybind_http_requests_in_flight", "Requests being served.")
	s.connRefuse = s.metrics.Counter("keybind_http_connections_refused_total", "Connections refused over the connection limits.")
	s.rateLimited = s.metrics.Counter("keybind_http_rate_limited_total", "Requests refused because their API key was over its rate.")
	s.unmatched = s.newRoute(Route{Name: "unmatched"})
	s.http = &fasthttp.Server{
		Handler:                       s.serve,
		ErrorHandler:                  s.serveError,
		HeaderReceived:                s.headerReceived,
		Name:                          "keybind",
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		Concurrency:                   cfg.MaxConns + 16,
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		LazyRequestTime:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
		CloseOnShutdown:               true,
	}
	s.registerOps()
	return s
}

// Metrics returns the server's metrics registry, for the engine's metrics
// (such as store latencies, see StoreObserver).
func (s *Server) Metrics() *Metrics { return s.metrics }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// StoreObserver returns a function recording the latency of a store
// operation in keybind_store_operation_seconds{op}: the hook the engine
// calls around its store reads and writes.
func (s *Server) StoreObserver() func(op string, d time.Duration) {
	var m sync.Map // op → *Histogram
	return func(op string, d time.Duration) {
		h, ok := m.Load(op)
		if !ok {
			h, _ = m.LoadOrStore(op, s.metrics.Histogram("keybind_store_operation_seconds", "Latency of store operations.", DurationBuckets, Label{"op", op}))
		}
		h.(*Histogram).ObserveDuration(d)
	}
}

// OnShutdown registers a resource to close when the server shuts down,
// after the last in-flight request has finished; resources close in the
// reverse order of registration.
func (s *Server) OnShutdown(close func() error) {
	s.mu.Lock()
	s.closers = append(s.closers, close)
	s.mu.Unlock()
}

// ReadyCheck registers a check /readyz runs: the server is ready when every
// check returns nil (the store is open, …).
func (s *Server) ReadyCheck(name string, check func() error) {
	s.mu.Lock()
	s.readyChecks = append(s.readyChecks, readyCheck{name, check})
	s.mu.Unlock()
}

// MapCode sets the HTTP status answered for error codes starting with
// prefix (a longer prefix wins), for errors that carry an attest.Code.
func (s *Server) MapCode(prefix string, status int) {
	s.mu.Lock()
	s.codeStatus = append(s.codeStatus, codeStatus{prefix, status})
	s.mu.Unlock()
}

// StatusOf returns the HTTP status for an error code: the longest prefix
// given to MapCode, or the default by family (input./cbor./asn1. 400;
// attestation and assertion families 422; auth. 401/403; …not_found and
// input.unknown_… 404; …conflict and state. 409; anything else 500).
func (s *Server) StatusOf(code string) int {
	s.mu.Lock()
	best, status := -1, 0
	for _, cs := range s.codeStatus {
		if len(cs.prefix) > best && len(code) >= len(cs.prefix) && code[:len(cs.prefix)] == cs.prefix {
			best, status = len(cs.prefix), cs.status
		}
	}
	s.mu.Unlock()
	if best >= 0 {
		return status
	}
	return defaultStatusOf(code)
}

func (s *Server) newRoute(r Route) *route {
	if r.Name == "" {
		r.Name = r.Path
	}
	if r.BodyLimit <= 0 {
		r.BodyLimit = s.cfg.BodyLimit
	}
	rt := &route{Route: r, limiter: s.limiter}
	if r.Path == "/v1/verify" {
		rt.limiter = s.vlimiter
	}
	rt.latency = s.metrics.Histogram("keybind_http_request_duration_seconds", "Time to serve a request, by route.", DurationBuckets, Label{"route", r.Name})
	return rt
}

// Handle registers a route. It panics on a conflicting registration (the
// same method and path twice, or two names for one parameter): routes are
// fixed at start-up.
func (s *Server) Handle(r Route) {
	if r.Handler == nil || r.Method == "" {
		panic("server: route " + r.Path + " without method or handler")
	}
	s.router.add(s.newRoute(r))
}

func (s *Server) countRequest(rt *route, status int, d time.Duration) {
	if status < 100 || status >= len(rt.requests) {
		status = 599
	}
	c := rt.requests[status].Load()
	if c == nil {
		c = s.metrics.Counter("keybind_http_requests_total", "Requests served, by route and status.", Label{"route", rt.Name}, Label{"code", strconv.Itoa(status)})
		rt.requests[status].Store(c)
	}
	c.Inc()
	rt.latency.ObserveDuration(d)
}

// headerReceived applies the route's body limit before the body is read.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path := h.RequestURI()
	for i, c := range path {
		if c == '?' || c == '#' {
			path = path[:i]
			break
		}
	}
	var params [maxParams]param
	limit := s.cfg.BodyLimit
	if rt, _, _ := s.router.lookup(h.Method(), path, &params); rt != nil {
		limit = rt.BodyLimit
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

// serveError answers a request fasthttp could not read.
func (s *Server) serveError(ctx *fasthttp.RequestCtx, err error) {
	var p *Problem
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		p = Problemf(fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body is over this route's limit")
	case errors.As(err, &small):
		p = Problemf(fasthttp.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge, "the request headers are too large")
	case errors.As(err, &ne) && ne.Timeout():
		p = Problemf(fasthttp.StatusRequestTimeout, CodeTimeout, "the request was not received in time")
	default:
		p = Problemf(fasthttp.StatusBadRequest, CodeBadRequest, "malformed HTTP request")
	}
	WriteProblem(ctx, p)
	// The rest of the request may still be on its way.
	lingerOnClose(ctx.Conn())
	s.countRequest(s.unmatched, p.Status, 0)
}

// serve is the fasthttp handler: route, authenticate, run the handler with
// panic recovery, answer errors as problems, count.
func (s *Server) serve(rc *fasthttp.RequestCtx) {
	start := time.Now()
	s.inflight.Add(1)
	c := s.ctxPool.Get().(*Ctx)
	c.rc = rc
	rt, n, np := s.router.lookup(rc.Method(), rc.Path(), &c.params)
	c.nparams = np
	defer func() {
		if v := recover(); v != nil {
			s.panics.Inc()
			name := "unmatched"
			if rt != nil {
				name = rt.Name
			}
			s.log.Error("handler panic", "route", name, "method", string(rc.Method()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()), "request_id", rc.ID())
			WriteProblem(rc, Problemf(fasthttp.StatusInternalServerError, CodeInternal, "internal error; it has been logged"))
		}
		if rt == nil {
			rt = s.unmatched
		}
		s.countRequest(rt, rc.Response.StatusCode(), time.Since(start))
		c.reset()
		s.ctxPool.Put(c)
		s.inflight.Add(-1)
	}()
	switch {
	case rt == nil && n != nil:
		rc.Response.Header.Set("Allow", n.allow)
		WriteProblem(rc, Problemf(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed here (allowed: %s)", rc.Method(), n.allow))
		return
	case rt == nil:
		WriteProblem(rc, Problemf(fasthttp.StatusNotFound, CodeNotFound, "no such route"))
		return
	}
	c.route = rt
	if len(rc.Request.Body()) > rt.BodyLimit {
		WriteProblem(rc, Problemf(fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body is over this route's limit of %d bytes", rt.BodyLimit))
		return
	}
	if len(rt.Roles) > 0 {
		if p := s.authenticate(c, rt); p != nil {
			WriteProblem(rc, p)
			return
		}
	}
	if err := rt.Handler(c); err != nil {
		p, bug := s.problemFor(err)
		if bug {
			s.log.Error("handler error", "route", rt.Name, "error", err.Error(), "request_id", rc.ID())
		}
		WriteProblem(rc, p)
	}
}

func (s *Server) authenticate(c *Ctx, rt *route) *Problem {
	tok, ok := bearer(c.rc.Request.Header.Peek("Authorization"))
	if !ok {
		c.rc.Response.Header.Set("WWW-Authenticate", `Bearer realm="keybind"`)
		return Problemf(fasthttp.StatusUnauthorized, CodeUnauthenticated, "this route needs an API key: Authorization: Bearer KEY")
	}
	if s.cfg.Authenticator == nil {
		c.rc.Response.Header.Set("WWW-Authenticate", `Bearer realm="keybind", error="invalid_token"`)
		return Problemf(fasthttp.StatusUnauthorized, CodeUnauthenticated, "unknown API key")
	}
	p, err := s.cfg.Authenticator.Authenticate(tok)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		c.rc.Response.Header.Set("WWW-Authenticate", `Bearer realm="keybind", error="invalid_token"`)
		return Problemf(fasthttp.StatusUnauthorized, CodeUnauthenticated, "unknown API key")
	case err != nil:
		s.log.Error("authentication unavailable", "error", err.Error())
		return &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeUnavailable, Detail: "authentication is unavailable", RetryAfter: 1}
	}
	for _, r := range rt.Roles {
		if r == p.Role {
			if wait, ok := rt.limiter.allow(p.KeyID); !ok {
				s.rateLimited.Inc()
				return &Problem{Status: fasthttp.StatusTooManyRequests, Code: CodeRateLimited, Detail: "this API key is over its request rate", RetryAfter: wait}
			}
			c.Principal = p
			return nil
		}
	}
	return Problemf(fasthttp.StatusForbidden, CodeForbidden, "a %s key may not call this route", p.Role)
}

// Routes returns the registered routes, in the order of registration.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.router.all))
	for i, r := range s.router.all {
		out[i] = r.Route
	}
	return out
}

// Draining reports whether the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }

// SetAuthenticator replaces Config.Authenticator (for an authenticator
// that needs resources made after the server, such as the engine's keys).
// Call it before Listen.
func (s *Server) SetAuthenticator(a Authenticator) { s.cfg.Authenticator = a }

// UseTLS makes the server speak HTTPS with cfg. Call it before Listen.
func (s *Server) UseTLS(cfg *tls.Config) { s.tls = cfg }

// Listen binds the configured address and returns it (with the port the
// system chose for ":0").
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	s.ln = newLimitListener(ln, s.cfg.MaxConns, s.cfg.MaxConnsPerIP, s.refuseConn)
	if s.tls != nil {
		s.ln = tls.NewListener(s.ln, s.tls)
	}
	s.addr = ln.Addr()
	s.http.MaxRequestBodySize = max(s.router.maxBody, s.cfg.BodyLimit)
	return ln.Addr(), nil
}

// Serve serves until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to ShutdownTimeout), and
// then closes the resources given to OnShutdown. It returns the first error
// of those steps, or nil.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("server: Serve before Listen")
	}
	errc := make(chan error, 1)
	s.serving.Store(true)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.log.Info("serving", "addr", s.addr.String(), "tls", s.tls != nil, "version", s.cfg.Version)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("listener failed", "error", err.Error())
	}
	return errors.Join(err, s.shutdown())
}

func (s *Server) shutdown() error {
	s.draining.Store(true)
	s.stop()
	s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.ShutdownWithContext(ctx)
	if err != nil {
		s.log.Error("drain incomplete", "error", err.Error())
	}
	s.serving.Store(false)
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		if cerr := closers[i](); cerr != nil {
			s.log.Error("closing a resource", "error", cerr.Error())
			err = errors.Join(err, cerr)
		}
	}
	s.log.Info("stopped")
	return err
}

// refuseConn answers a connection over the limits and closes it.
func (s *Server) refuseConn(c net.Conn, perIP bool) {
	s.connRefuse.Inc()
	if s.tls != nil {
		// A TLS client cannot read a plain answer.
		c.Close()
		return
	}
	p := &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeTooManyConns, Detail: "the server has too many connections", RetryAfter: 1}
	if perIP {
		p = &Problem{Status: fasthttp.StatusTooManyRequests, Code: CodeTooManyConns, Detail: "too many connections from your address", RetryAfter: 1}
	}
	body := appendProblem(nil, p, nil)
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
		p.Status, fasthttp.StatusMessage(p.Status), p.RetryAfter, len(body))
	answer := append([]byte(head), body...)
	// A client takes an answer that comes before its request for a broken
	// connection, and closing with its request unread answers it with a
	// reset that can destroy the answer. Up to maxLingeringRefusals
	// refusals at a time therefore wait for the request's head, answer,
	// and linger briefly; past that (a flood) they answer and close at
	// once rather than hold more sockets.
	lingering := false
	select {
	case s.refusing <- struct{}{}:
		lingering = true
		defer func() { <-s.refusing }()
		awaitRequestHead(c, refusalLinger)
	default:
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(answer)
	if lingering {
		lingerClose(c, refusalLinger, lingerBytes)
	} else {
		c.Close()
	}
}

// awaitRequestHead reads from c until the end of a request's head (an
// empty line), 8 KiB, an error or d.
func awaitRequestHead(c net.Conn, d time.Duration) {
	if c.SetReadDeadline(time.Now().Add(d)) != nil {
		return
	}
	var buf [8 << 10]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[max(0, n-m-3):n], []byte("\r\n\r\n")) || err != nil {
			return
		}
	}
}

// Bounds of the lingering close of refused connections (which read away
// up to lingerBytes, as the others do).
const (
	maxLingeringRefusals = 64
	refusalLinger        = 500 * time.Millisecond
)

// Ctx is a request being served.
type Ctx struct {
	s         *Server
	rc        *fasthttp.RequestCtx
	route     *route
	params    [maxParams]param
	nparams   int
	Principal Principal
}

func (c *Ctx) reset() {
	*c = Ctx{s: c.s}
}

// Context is the context of the request's work: it is canceled when the
// server begins to shut down. Use it, never Request(), where a
// context.Context is wanted.
func (c *Ctx) Context() context.Context { return c.s.stopping }

// Request returns the underlying fasthttp request context (valid until the
// handler returns).
func (c *Ctx) Request() *fasthttp.RequestCtx { return c.rc }

// Param returns the value of the path parameter name ("" if none).
func (c *Ctx) Param(name string) string {
	for _, p := range c.params[:c.nparams] {
		if p.name == name {
			return string(p.value)
		}
	}
	return ""
}

// Body returns the request body. It belongs to fasthttp and is reused when
// the handler returns: copy it (CopyBody) for work that outlives the
// handler.
func (c *Ctx) Body() []byte { return c.rc.Request.Body() }

// CopyBody returns a copy of the request body that the handler may hand to
// work that outlives it.
func (c *Ctx) CopyBody() []byte { return append([]byte(nil), c.rc.Request.Body()...) }

// Logger returns the server's logger with the request's route and id.
func (c *Ctx) Logger() *slog.Logger {
	return c.s.log.With("route", c.route.Name, "request_id", c.rc.ID())
}

// RequireJSON returns a 415 problem unless the request declares a JSON body
// (application/json or a +json type).
func (c *Ctx) RequireJSON() *Problem {
	ct := c.rc.Request.Header.ContentType()
	for i, b := range ct {
		if b == ';' {
			ct = ct[:i]
			break
		}
	}
	for len(ct) > 0 && ct[len(ct)-1] == ' ' {
		ct = ct[:len(ct)-1]
	}
	if string(ct) == "application/json" || (len(ct) > 5 && string(ct[len(ct)-5:]) == "+json") {
		return nil
	}
	return Problemf(fasthttp.StatusUnsupportedMediaType, CodeMediaType, "the body must be application/json")
}

// DecodeJSON decodes the body into v strictly: JSON content type, a single
// value, no unknown fields. Errors are 4xx problems.
func (c *Ctx) DecodeJSON(v any) error {
	if p := c.RequireJSON(); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(c.rc.Request.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Problemf(fasthttp.StatusBadRequest, CodeJSON, "%v", err)
	}
	if dec.More() {
		return Problemf(fasthttp.StatusBadRequest, CodeJSON, "trailing data after the JSON value")
	}
	return nil
}

// JSON writes v as the JSON response with the status.
func (c *Ctx) JSON(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Raw(status, "application/json", append(b, '\n'))
	return nil
}

// Raw writes body as the response with the status and content type.
func (c *Ctx) Raw(status int, contentType string, body []byte) {
	c.rc.SetStatusCode(status)
	c.rc.SetContentType(contentType)
	c.rc.Response.Header.Set("Cache-Control", "no-store")
	c.rc.Response.SetBody(body)
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
