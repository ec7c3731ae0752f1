// Package demo is the sign-in site of `keybind demo`: a login page and
// its backend, which acts as an auth server of a keybind tenant through
// the public API (client.Client with an auth_server key), a phone panel
// that shows simulated phones receiving and answering sign-ins through the
// signed phone API, and a federation server's page for federated domains.
// Setup prepares the tenant, users, key and phones the site needs, through
// the administration API.
//
// The page and its script are embedded (no external resources). The
// backend's JSON routes answer refusals as problem+json with stable codes:
//
//	page, err := demo.NewPage(demo.PageConfig{Keybind: client.New(apiURL, authKey), Phones: phones, Passwords: pw})
//	http.Serve(ln, page)
package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
)

//go:embed assets
var assets embed.FS

// Device is a phone that fetches its pending sign-ins and answers them
// with its enrolled credential, such as a simulated phone of package
// device (*device.Phone).
type Device interface {
	Pending(ctx context.Context) ([]client.PendingSignIn, error)
	Approve(ctx context.Context, s client.PendingSignIn, number int) (*engine.Outcome, error)
	Deny(ctx context.Context, s client.PendingSignIn) (*engine.Outcome, error)
	Fraud(ctx context.Context, s client.PendingSignIn) (*engine.Outcome, error)
}

// Phone is a simulated phone the phone panel shows.
type Phone struct {
	// ID names the phone in the panel's URLs (letters, digits, dashes).
	ID string
	// Label is what the panel calls it ("Alice's Android phone"), UPN the
	// user it signs in, Platform its platform (android, ios).
	Label, UPN, Platform string
	Device               Device
}

// PageConfig configures the site.
type PageConfig struct {
	// Keybind calls the keybind server with the tenant's auth_server key.
	Keybind *client.Client
	// Phones are shown on the phone panel.
	Phones []Phone
	// Passwords holds the demo users' passwords by UPN (lower case): the
	// password the person may use instead of the phone.
	Passwords map[string]string
	// App is the application named in the sign-in's context on the
	// phone; default "keybind demo".
	App string
	// Location is the location named in the context; default "Loopback".
	Location string
	// Wait is the longest wait of one long poll of a sign-in's outcome
	// (default 25s; the server caps it with its --max-wait).
	Wait time.Duration
	// Logger receives the backend's failures; default: discarded.
	Logger *slog.Logger
	// Now is the clock of the flows' lifetime; default time.Now.
	Now func() time.Time
}

// Problem codes of the site's backend (besides the keybind server's own,
// passed through as they came).
const (
	CodeBadRequest     = "demo.bad_request"     // a body or parameter that does not parse
	CodeFlowNotFound   = "demo.flow_not_found"  // no such sign-in on this page (or too old)
	CodeNotPhone       = "demo.not_phone"       // the sign-in does not wait for a phone
	CodeWrongPassword  = "demo.wrong_password"  // the password is not the user's
	CodePhoneNotFound  = "demo.phone_not_found" // no such phone on the panel
	CodeNotPending     = "demo.not_pending"     // the phone has no such sign-in waiting
	CodeUnavailable    = "demo.unavailable"     // the keybind server could not be reached
	CodeMethodNotFound = "demo.not_found"       // no such page or route
)

// Limits of the backend.
const (
	maxBody   = 4 << 10
	maxFlows  = 10000
	flowTTL   = 15 * time.Minute
	maxUPNLen = 256
)

// Page is the site: an http.Handler.
type Page struct {
	cfg    PageConfig
	mux    *http.ServeMux
	phones map[string]*phoneSlot
	fed    *template.Template

	mu    sync.Mutex
	flows map[string]*flow
}

// phoneSlot serialises a phone's requests: keys that count their
// signatures (App Attest) must prove in the order the server sees them.
type phoneSlot struct {
	Phone
	mu sync.Mutex
}

// flow is one sign-in started on the page: the browser holds its random
// id, the backend the attempt.
type flow struct {
	username string
	method   string
	attempt  string
	created  time.Time
}

// NewPage returns the site of cfg.
func NewPage(cfg PageConfig) (*Page, error) {
	if cfg.Keybind == nil {
		return nil, errors.New("demo: PageConfig.Keybind is required")
	}
	if cfg.App == "" {
		cfg.App = "keybind demo"
	}
	if cfg.Location == "" {
		cfg.Location = "Loopback"
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 25 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Page{cfg: cfg, mux: http.NewServeMux(), phones: map[string]*phoneSlot{}, flows: map[string]*flow{}}
	for _, ph := range cfg.Phones {
		if !validID(ph.ID) || ph.Device == nil {
			return nil, fmt.Errorf("demo: phone %q: want an id of letters, digits and dashes and a device", ph.ID)
		}
		if _, dup := p.phones[ph.ID]; dup {
			return nil, fmt.Errorf("demo: phone %q twice", ph.ID)
		}
		p.phones[ph.ID] = &phoneSlot{Phone: ph}
	}
	fed, err := template.ParseFS(assets, "assets/federation.html")
	if err != nil {
		return nil, err
	}
	p.fed = fed
	p.mux.HandleFunc("GET /{$}", p.file("index.html"))
	p.mux.HandleFunc("GET /phone", p.file("phone.html"))
	p.mux.HandleFunc("GET /federation", p.federation)
	p.mux.HandleFunc("GET /static/{name}", p.static)
	p.mux.HandleFunc("POST /api/signin", p.startSignIn)
	p.mux.HandleFunc("GET /api/signin/{flow}/outcome", p.outcome)
	p.mux.HandleFunc("POST /api/signin/{flow}/password", p.usePassword)
	p.mux.HandleFunc("POST /api/password", p.password)
	p.mux.HandleFunc("GET /api/phones", p.listPhones)
	p.mux.HandleFunc("GET /api/phones/{phone}/pending", p.pending)
	p.mux.HandleFunc("POST /api/phones/{phone}/answer", p.answer)
	return p, nil
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ServeHTTP serves the site, with headers that keep its pages to their own
// origin's resources.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if _, pattern := p.mux.Handler(r); pattern == "" {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeProblem(w, http.StatusNotFound, CodeMethodNotFound, "no such route (or not with "+r.Method+")")
			return
		}
		http.NotFound(w, r)
		return
	}
	p.mux.ServeHTTP(w, r)
}

func (p *Page) file(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	}
}

func (p *Page) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "federation.html" || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(assets, "assets/"+path.Base(name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(b)
}

// federation is the federation server's sign-in page, where the federated
// domains' users are sent.
func (p *Page) federation(w http.ResponseWriter, r *http.Request) {
	hint := r.URL.Query().Get("login_hint")
	if len(hint) > maxUPNLen {
		hint = hint[:maxUPNLen]
	}
	domain := ""
	if at := strings.LastIndexByte(hint, '@'); at >= 0 {
		domain = hint[at+1:]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.fed.Execute(w, map[string]string{"LoginHint": hint, "Domain": domain}); err != nil {
		p.cfg.Logger.Error("federation page", "error", err.Error())
	}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeProblem answers an RFC 9457 problem with a stable code.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code, "detail": detail,
	})
}

// keybindProblem answers a failed call of the keybind server: its problem
// as it came (with Retry-After), or 502 when it could not be reached.
func (p *Page) keybindProblem(w http.ResponseWriter, r *http.Request, err error) {
	var pr *client.Problem
	if errors.As(err, &pr) {
		if pr.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(pr.RetryAfter/time.Second)))
		}
		status := pr.Status
		if status < 400 || status > 599 {
			status = http.StatusBadGateway
		}
		writeProblem(w, status, pr.Code, pr.Detail)
		return
	}
	if r.Context().Err() != nil {
		return // the browser went away
	}
	p.cfg.Logger.Error("keybind server unreachable", "error", err.Error())
	writeProblem(w, http.StatusBadGateway, CodeUnavailable, "the keybind server could not be reached")
}

// decode reads a JSON body of at most maxBody bytes into v, strictly: the
// content type must be JSON (which a cross-site form cannot send) and
// unknown members are refused.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeProblem(w, http.StatusUnsupportedMediaType, CodeBadRequest, "the body must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("the body is over %d bytes", maxBody))
		return false
	}
	if err := parseJSON(body, v); err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return false
	}
	return true
}

// parseJSON decodes exactly one JSON object into v, refusing unknown
// members and trailing data.
func parseJSON(body []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("the body is not the expected JSON object: %v", err)
	}
	if d.More() {
		return errors.New("the body has data after its JSON object")
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("the body has data after its JSON object")
	}
	return nil
}

// checkUsername refuses names that cannot be a UPN before they reach the
// server (which checks them again).
func checkUsername(s string) error {
	switch {
	case s == "":
		return errors.New("type a username (user@domain)")
	case len(s) > maxUPNLen:
		return fmt.Errorf("the username is over %d bytes", maxUPNLen)
	case !strings.Contains(s, "@"):
		return errors.New("a username looks like user@domain")
	}
	return nil
}

// newFlow records a flow and returns its id.
func (p *Page) newFlow(f *flow) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := p.cfg.Now()
	f.created = now
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.flows) >= maxFlows {
		for k, old := range p.flows {
			if now.Sub(old.created) > flowTTL {
				delete(p.flows, k)
			}
		}
		for k := range p.flows {
			if len(p.flows) < maxFlows {
				break
			}
			delete(p.flows, k) // still full: forget arbitrary ones
		}
	}
	p.flows[id] = f
	return id, nil
}

// lookupFlow returns the flow of the request's {flow} (or of id), or
// answers 404.
func (p *Page) lookupFlow(w http.ResponseWriter, id string) (*flow, bool) {
	p.mu.Lock()
	f, ok := p.flows[id]
	if ok && p.cfg.Now().Sub(f.created) > flowTTL {
		delete(p.flows, id)
		ok = false
	}
	p.mu.Unlock()
	if !ok {
		writeProblem(w, http.StatusNotFound, CodeFlowNotFound, "no such sign-in on this page (reload and start again)")
		return nil, false
	}
	return f, true
}

// startSignIn starts a sign-in for the typed username: the login hint is
// the username, as a login page that knows the name passes it on.
func (p *Page) startSignIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
	}
	if !decode(w, r, &req) {
		return
	}
	req.Username = strings.TrimSpace(req.Username)
	if err := checkUsername(req.Username); err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	start, err := p.cfg.Keybind.StartSignIn(r.Context(), client.SignInRequest{
		Username: req.Username, LoginHint: req.Username,
		Context: engine.SignInContext{App: p.cfg.App, IP: ip, Location: p.cfg.Location},
	})
	var pr *client.Problem
	if errors.As(err, &pr) && pr.Code == string(engine.CodeSignInBackoff) {
		// Too many unanswered attempts in a row: the password remains.
		id, err := p.newFlow(&flow{username: req.Username, method: engine.MethodPassword})
		if err != nil {
			writeProblem(w, http.StatusInternalServerError, CodeUnavailable, "no randomness")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"flow": id, "method": engine.MethodPassword, "username": req.Username,
			"reason": pr.Code, "detail": pr.Detail, "retry_after_seconds": int(pr.RetryAfter / time.Second)})
		return
	}
	if err != nil {
		p.keybindProblem(w, r, err)
		return
	}
	id, err := p.newFlow(&flow{username: req.Username, method: start.Method, attempt: start.Attempt})
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, CodeUnavailable, "no randomness")
		return
	}
	out := map[string]any{"flow": id, "method": start.Method, "username": req.Username}
	switch start.Method {
	case engine.MethodPhone:
		out["number"] = start.Number
		out["mode"] = start.Mode
		out["expires_at"] = start.ExpiresAt
		out["expires_in_ms"] = start.ExpiresAt.Sub(p.cfg.Now()).Milliseconds()
	case engine.MethodPassword:
		out["reason"] = start.Reason
	case engine.MethodFederate:
		out["federation_url"] = start.FederationURL
	}
	writeJSON(w, http.StatusOK, out)
}

// outcome waits (long poll) for the outcome of a phone sign-in.
func (p *Page) outcome(w http.ResponseWriter, r *http.Request) {
	f, ok := p.lookupFlow(w, r.PathValue("flow"))
	if !ok {
		return
	}
	if f.method != engine.MethodPhone {
		writeProblem(w, http.StatusConflict, CodeNotPhone, "this sign-in does not wait for a phone")
		return
	}
	o, err := p.cfg.Keybind.SignInOutcome(r.Context(), f.attempt, p.cfg.Wait)
	if err != nil {
		p.keybindProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": o.State, "reason": o.Reason, "username": f.username})
}

// usePassword is "use your password instead": a phone sign-in's attempt
// is cancelled, and the page asks for the password.
func (p *Page) usePassword(w http.ResponseWriter, r *http.Request) {
	f, ok := p.lookupFlow(w, r.PathValue("flow"))
	if !ok {
		return
	}
	if f.method == engine.MethodPhone {
		o, err := p.cfg.Keybind.CancelSignIn(r.Context(), f.attempt)
		var pr *client.Problem
		switch {
		case errors.As(err, &pr) && pr.Status == http.StatusConflict:
			// Already answered, expired or replaced: the password is still
			// the way in.
			writeJSON(w, http.StatusOK, map[string]any{"state": "password", "attempt_state": "ended"})
			return
		case err != nil:
			p.keybindProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"state": "password", "attempt_state": o.State, "reason": o.Reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": "password"})
}

// password checks the password of a flow's user.
func (p *Page) password(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Flow     string `json:"flow"`
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	f, ok := p.lookupFlow(w, req.Flow)
	if !ok {
		return
	}
	if f.method == engine.MethodFederate {
		writeProblem(w, http.StatusConflict, CodeBadRequest, "this user signs in on the federation server")
		return
	}
	want, known := p.cfg.Passwords[strings.ToLower(f.username)]
	if !known || !equalSecret(want, req.Password) {
		writeProblem(w, http.StatusUnauthorized, CodeWrongPassword, "that is not the password of "+f.username)
		return
	}
	if f.method == engine.MethodPhone {
		// The password wins over a phone sign-in still pending.
		if _, err := p.cfg.Keybind.CancelSignIn(r.Context(), f.attempt); err != nil {
			var pr *client.Problem
			if !errors.As(err, &pr) || pr.Status != http.StatusConflict {
				p.keybindProblem(w, r, err)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": "signed_in", "method": "password", "username": f.username})
}

// equalSecret compares in time that does not depend on where they differ.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (p *Page) listPhones(w http.ResponseWriter, r *http.Request) {
	type view struct {
		ID       string `json:"id"`
		Label    string `json:"label"`
		UPN      string `json:"upn"`
		Platform string `json:"platform"`
	}
	out := []view{}
	for _, ph := range p.cfg.Phones {
		out = append(out, view{ph.ID, ph.Label, ph.UPN, ph.Platform})
	}
	writeJSON(w, http.StatusOK, map[string]any{"phones": out})
}

func (p *Page) phone(w http.ResponseWriter, r *http.Request) (*phoneSlot, bool) {
	ph, ok := p.phones[r.PathValue("phone")]
	if !ok {
		writeProblem(w, http.StatusNotFound, CodePhoneNotFound, "no such phone on the panel")
	}
	return ph, ok
}

// pendingView is a pending sign-in as the phone panel shows it: what the
// phone received (never the right number).
type pendingView struct {
	Attempt     string               `json:"attempt"`
	UPN         string               `json:"upn"`
	Mode        string               `json:"mode"`
	Choices     []int                `json:"choices,omitempty"`
	Context     engine.SignInContext `json:"context"`
	ExpiresAt   time.Time            `json:"expires_at"`
	ExpiresInMS int64                `json:"expires_in_ms"`
}

// pending fetches what the phone has waiting, through the signed phone
// API.
func (p *Page) pending(w http.ResponseWriter, r *http.Request) {
	ph, ok := p.phone(w, r)
	if !ok {
		return
	}
	ph.mu.Lock()
	list, err := ph.Device.Pending(r.Context())
	ph.mu.Unlock()
	if err != nil {
		p.keybindProblem(w, r, err)
		return
	}
	out := map[string]any{"pending": nil}
	if len(list) > 0 {
		s := list[0]
		out["pending"] = pendingView{Attempt: s.Attempt, UPN: s.UPN, Mode: s.Mode, Choices: s.Choices, Context: s.Context,
			ExpiresAt: s.ExpiresAt, ExpiresInMS: s.ExpiresAt.Sub(p.cfg.Now()).Milliseconds()}
	}
	writeJSON(w, http.StatusOK, out)
}

// answer is the person's tap on the phone: a number (approve), deny or
// fraud. The phone signs the answer with its credential key.
func (p *Page) answer(w http.ResponseWriter, r *http.Request) {
	ph, ok := p.phone(w, r)
	if !ok {
		return
	}
	var req struct {
		Attempt  string `json:"attempt"`
		Decision string `json:"decision"`
		Number   int    `json:"number"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch req.Decision {
	case engine.DecisionApprove:
		if req.Number < 10 || req.Number > 99 {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, "an approval carries the 2-digit number tapped")
			return
		}
	case engine.DecisionDeny, engine.DecisionFraud:
		if req.Number != 0 {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, "only an approval carries a number")
			return
		}
	default:
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, "decision is approve, deny or fraud")
		return
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	list, err := ph.Device.Pending(r.Context())
	if err != nil {
		p.keybindProblem(w, r, err)
		return
	}
	var s *client.PendingSignIn
	for i := range list {
		if list[i].Attempt == req.Attempt {
			s = &list[i]
		}
	}
	if s == nil {
		writeProblem(w, http.StatusConflict, CodeNotPending, "this sign-in is no longer waiting on the phone (answered, cancelled, replaced or expired)")
		return
	}
	var o *engine.Outcome
	switch req.Decision {
	case engine.DecisionApprove:
		o, err = ph.Device.Approve(r.Context(), *s, req.Number)
	case engine.DecisionDeny:
		o, err = ph.Device.Deny(r.Context(), *s)
	default:
		o, err = ph.Device.Fraud(r.Context(), *s)
	}
	var pr *client.Problem
	if errors.As(err, &pr) && pr.Code == string(engine.CodeSignInWrongNum) {
		// The server refused the number and denied the attempt.
		writeJSON(w, http.StatusOK, map[string]any{"state": engine.StateDenied, "reason": pr.Code})
		return
	}
	if err != nil {
		p.keybindProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": o.State, "reason": o.Reason})
}
