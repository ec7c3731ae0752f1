package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/verify"
)

const (
	keyA      = "tenant-a-verify-key-0001"
	keyB      = "tenant-b-verify-key-0002"
	keyAdminA = "tenant-a-admin-key-00003"
)

// testServer is a server on a free loopback port, driven by net/http.
type testServer struct {
	t      *testing.T
	s      *Server
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	client *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// mapResolver resolves credentials of a fixed table, by tenant.
type mapResolver struct {
	mu    sync.Mutex
	creds map[string][]byte // tenant + "/" + id → key
	calls int
}

func (m *mapResolver) ResolveKey(tenant string, id []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	k, ok := m.creds[tenant+"/"+string(id)]
	if !ok {
		return nil, ErrUnknownCredential
	}
	return k, nil
}

func (m *mapResolver) delete(tenant, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.creds, tenant+"/"+id)
}

func startServer(t *testing.T, cfg Config, setup func(*Server)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Authenticator == nil {
		keys, err := ParseStaticKeys([]string{"tenant-a:verify:" + keyA, "tenant-b:auth_server:" + keyB, "tenant-a:admin:" + keyAdminA})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Authenticator = keys
	}
	s := New(cfg)
	if setup != nil {
		setup(s)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, s: s, url: "http://" + addr.String(), logs: logs, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	go func() { ts.done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	return ts
}

func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err
		return err
	case <-time.After(20 * time.Second):
		ts.t.Fatal("server did not stop")
		return nil
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d, content type %q, body %s", r.status, ct, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem is not JSON: %v: %s", err, r.body)
	}
	for _, m := range []string{"type", "title", "status", "code"} {
		if _, ok := p[m]; !ok {
			t.Fatalf("problem without %q: %s", m, r.body)
		}
	}
	if int(p["status"].(float64)) != r.status {
		t.Fatalf("problem status %v, HTTP status %d", p["status"], r.status)
	}
	return p
}

// expectProblem checks that the response is a problem with status and code.
func (r response) expectProblem(t *testing.T, status int, code string) {
	t.Helper()
	p := r.problem(t)
	if r.status != status || p["code"] != code {
		t.Fatalf("got %d %v, want %d %s: %s", r.status, p["code"], status, code, r.body)
	}
}

func (ts *testServer) do(method, path, key, contentType string, body []byte) response {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (ts *testServer) get(path string) response { return ts.do("GET", path, "", "", nil) }

func (ts *testServer) verify(key string, body any) response {
	ts.t.Helper()
	var b []byte
	switch body := body.(type) {
	case []byte:
		b = body
	case string:
		b = []byte(body)
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			ts.t.Fatal(err)
		}
	}
	return ts.do("POST", "/v1/verify", key, "application/json", b)
}

// verifyResults posts items and returns each item's code ("" when valid).
func (ts *testServer) verifyResults(key string, items ...map[string]any) []string {
	ts.t.Helper()
	r := ts.verify(key, map[string]any{"items": items})
	if r.status != 200 {
		ts.t.Fatalf("verify: %d %s", r.status, r.body)
	}
	var out struct {
		Results []struct {
			Valid *bool  `json:"valid"`
			Code  string `json:"code"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		ts.t.Fatalf("verify response: %v: %s", err, r.body)
	}
	if len(out.Results) != len(items) {
		ts.t.Fatalf("%d results for %d items: %s", len(out.Results), len(items), r.body)
	}
	codes := make([]string, len(items))
	for i, res := range out.Results {
		if res.Valid == nil || *res.Valid != (res.Code == "") {
			ts.t.Fatalf("result %d inconsistent: %s", i, r.body)
		}
		codes[i] = res.Code
	}
	return codes
}

// keys for the tests.
type testKeys struct {
	p256     *ecdsa.PrivateKey
	p256SPKI []byte
	ed       ed25519.PrivateKey
	edPub    ed25519.PublicKey
}

func newTestKeys(t testing.TB) *testKeys {
	p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&p.PublicKey)
	pub, ed, _ := ed25519.GenerateKey(rand.Reader)
	return &testKeys{p256: p, p256SPKI: spki, ed: ed, edPub: pub}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (k *testKeys) p256Item(msg []byte) map[string]any {
	h := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, k.p256, h[:])
	return map[string]any{"algorithm": "ecdsa-p256", "public_key": b64(k.p256SPKI), "message": b64(msg), "signature": b64(sig)}
}

func (k *testKeys) p256RawItem(msg []byte) map[string]any {
	h := sha256.Sum256(msg)
	r, s, _ := ecdsa.Sign(rand.Reader, k.p256, h[:])
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	point, _ := k.p256.PublicKey.Bytes()
	return map[string]any{"algorithm": "ecdsa-p256-raw", "public_key": base64.RawURLEncoding.EncodeToString(point), "digest": base64.RawURLEncoding.EncodeToString(h[:]), "signature": base64.RawURLEncoding.EncodeToString(raw)}
}

func (k *testKeys) edItem(msg []byte) map[string]any {
	return map[string]any{"algorithm": "ed25519", "public_key": b64(k.edPub), "message": b64(msg), "signature": b64(ed25519.Sign(k.ed, msg))}
}

func with(item map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range item {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func verifyServer(t *testing.T, resolver KeyResolver, cfg Config) *testServer {
	return startServer(t, cfg, func(s *Server) {
		s.EnableVerify(VerifyConfig{Pipeline: verify.New(verify.Options{}), Keys: resolver, MaxItems: 32, BodyLimit: 64 << 10})
	})
}

func TestOperationsRoutes(t *testing.T) {
	var broken error
	var mu sync.Mutex
	ts := verifyServer(t, nil, Config{Version: "test-1"})
	ts.s.ReadyCheck("store", func() error { mu.Lock(); defer mu.Unlock(); return broken })

	r := ts.get("/healthz")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"version":"test-1"`)) {
		t.Fatalf("/healthz: %d %s", r.status, r.body)
	}
	if r = ts.get("/readyz"); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	mu.Lock()
	broken = errors.New("store closed")
	mu.Unlock()
	r = ts.get("/readyz")
	r.expectProblem(t, 503, CodeUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	r = ts.get("/v1/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("/v1/openapi.json: %d %.200s", r.status, r.body)
	}
	for _, p := range []string{"/v1/verify", "/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		if doc.Paths[p] == nil {
			t.Errorf("the OpenAPI document lacks %s", p)
		}
	}

	// A verification, then the metrics that count it.
	k := newTestKeys(t)
	if codes := ts.verifyResults(keyA, k.p256Item([]byte("m")), with(k.edItem([]byte("m")), "message", b64([]byte("x")))); codes[0] != "" || codes[1] != "assert.signature" {
		t.Fatalf("verify: %v", codes)
	}
	ts.get("/nowhere")
	r = ts.get("/metrics")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`keybind_http_requests_total{route="verify",code="200"} 1`,
		`keybind_http_requests_total{route="unmatched",code="404"} 1`,
		`keybind_http_request_duration_seconds_count{route="verify"} 1`,
		`keybind_verify_items_total{algorithm="ecdsa-p256",result="valid"} 1`,
		`keybind_verify_items_total{algorithm="ed25519",result="assert.signature"} 1`,
		"keybind_verify_batch_size_count ",
		"keybind_verify_queue_depth 0",
		"keybind_http_panics_total 0",
		"process_cpu_seconds_total ",
		"go_goroutines ",
		"# TYPE keybind_verify_batch_size histogram",
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	checkExposition(t, r.body)
}

// checkExposition checks the text format: every sample belongs to the
// family announced by the preceding # TYPE, and no family appears twice.
func checkExposition(t *testing.T, body []byte) {
	t.Helper()
	seen := map[string]bool{}
	family, typ := "", ""
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "# HELP "):
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			family, typ = f[2], f[3]
			if seen[family] {
				t.Errorf("family %s appears twice", family)
			}
			seen[family] = true
		case line == "":
			t.Error("empty line in the exposition")
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			base := name
			if typ == "histogram" {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					base = strings.TrimSuffix(base, suf)
					if base != name {
						break
					}
				}
			}
			if base != family {
				t.Errorf("sample %q outside its family (current %s)", line, family)
			}
			v := line[strings.LastIndexByte(line, ' ')+1:]
			if _, ok := new(big.Float).SetString(v); !ok && v != "+Inf" && v != "NaN" {
				t.Errorf("sample %q: bad value", line)
			}
		}
	}
}

func TestVerifyEndpoint(t *testing.T) {
	res := &mapResolver{creds: map[string][]byte{}}
	ts := verifyServer(t, res, Config{})
	k := newTestKeys(t)
	other := newTestKeys(t)
	msg := []byte("approve sign-in, number 42")
	point, _ := k.p256.PublicKey.Bytes()
	res.creds["tenant-a/cred-p256"] = point
	res.creds["tenant-a/cred-ed"] = k.edPub
	res.creds["tenant-b/cred-b"] = other.p256SPKI

	p256 := k.p256Item(msg)
	raw := k.p256RawItem(msg)
	ed := k.edItem(msg)
	byCred := with(p256, "public_key", nil, "credential_id", "cred-p256")
	edByCred := with(ed, "public_key", nil, "credential_id", "cred-ed")

	cases := []struct {
		name string
		item map[string]any
		want string
	}{
		{"P-256 DER over a message", p256, ""},
		{"P-256 r‖s over a digest, URL-safe base64", raw, ""},
		{"P-256 over a digest", with(p256, "message", nil, "digest", b64(sha256Sum(msg))), ""},
		{"Ed25519", ed, ""},
		{"P-256 by credential id", byCred, ""},
		{"Ed25519 by credential id", edByCred, ""},
		{"P-256, padded base64 without padding", with(p256, "message", strings.TrimRight(b64(msg), "=")), ""},
		{"P-256, other message", with(p256, "message", b64([]byte("approve sign-in, number 43"))), "assert.signature"},
		{"P-256, other key", with(p256, "public_key", b64(other.p256SPKI)), "assert.signature"},
		{"P-256 r‖s, wrong digest", with(raw, "digest", b64(sha256Sum([]byte("x")))), "assert.signature"},
		{"Ed25519, other message", with(ed, "message", b64([]byte("y"))), "assert.signature"},
		{"no algorithm", with(p256, "algorithm", nil), "input.algorithm"},
		{"unknown algorithm", with(p256, "algorithm", "rsa-pss"), "input.algorithm"},
		{"no key", with(p256, "public_key", nil), "input.key"},
		{"key and credential", with(p256, "credential_id", "cred-p256"), "input.key"},
		{"bad public key", with(p256, "public_key", b64([]byte("not a key"))), "input.public_key"},
		{"public key not base64", with(p256, "public_key", "!!!"), "input.public_key"},
		{"message not base64", with(p256, "message", "a b"), "input.encoding"},
		{"signature not base64", with(p256, "signature", "@@@@"), "input.encoding"},
		{"no message", with(p256, "message", nil), "input.message"},
		{"message and digest", with(p256, "digest", b64(sha256Sum(msg))), "input.message"},
		{"short digest", with(p256, "message", nil, "digest", b64(make([]byte, 31))), "input.digest"},
		{"Ed25519 with a digest", with(ed, "message", nil, "digest", b64(sha256Sum(msg))), "input.digest"},
		{"Ed25519 key for P-256", with(p256, "public_key", b64(k.edPub)), "input.key_algorithm"},
		{"signature not DER", with(p256, "signature", b64(make([]byte, 64))), "input.signature"},
		{"no signature", with(p256, "signature", nil), "input.signature"},
		{"field of another algorithm", with(p256, "previous_counter", 3), "input.field"},
		{"unknown credential", with(byCred, "credential_id", "cred-none"), "input.unknown_credential"},
		{"credential of another tenant", with(byCred, "credential_id", "cred-b"), "input.unknown_credential"},
	}
	items := make([]map[string]any, len(cases))
	for i, c := range cases {
		items[i] = c.item
	}
	// All at once (in order) …
	codes := ts.verifyResults(keyA, items...)
	for i, c := range cases {
		if codes[i] != c.want {
			t.Errorf("%s: got %q, want %q", c.name, codes[i], c.want)
		}
	}
	// … and one by one.
	for _, c := range cases {
		if got := ts.verifyResults(keyA, c.item)[0]; got != c.want {
			t.Errorf("%s alone: got %q, want %q", c.name, got, c.want)
		}
	}

	// Tenant B sees its own credential, never tenant A's.
	if codes := ts.verifyResults(keyB, byCred, with(byCred, "credential_id", "cred-b")); codes[0] != "input.unknown_credential" || codes[1] != "assert.signature" {
		t.Errorf("tenant B: %v", codes)
	}
	// A deleted credential stops verifying once invalidated.
	calls := res.calls
	if ts.verifyResults(keyA, byCred)[0] != "" || res.calls != calls {
		t.Error("a cached credential was resolved again")
	}
	res.delete("tenant-a", "cred-p256")
	ts.s.InvalidateCredential([]byte("cred-p256"))
	if got := ts.verifyResults(keyA, byCred)[0]; got != "input.unknown_credential" {
		t.Errorf("deleted credential: %q", got)
	}
}

func sha256Sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// TestVerifyAppAttest checks App Attest assertions through the endpoint.
func TestVerifyAppAttest(t *testing.T) {
	res := &mapResolver{creds: map[string][]byte{}}
	ts := verifyServer(t, res, Config{})
	dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	point, _ := dev.PublicKey.Bytes()
	res.creds["tenant-a/iphone"] = point
	const appID = "8YE23NZS57.com.example.keybind"
	clientData := []byte(`{"challenge":"c-77","number":42}`)
	a, err := forge.AppAssert(dev, forge.AppAssertOptions{AppID: appID, ClientData: clientData, Counter: 8})
	if err != nil {
		t.Fatal(err)
	}
	item := map[string]any{"algorithm": "appattest", "credential_id": "iphone", "assertion": b64(a.Marshal()),
		"client_data": b64(clientData), "app_id": appID, "previous_counter": 7, "challenge": b64([]byte("c-77"))}
	r := ts.verify(keyA, map[string]any{"items": []any{item, with(item, "public_key", b64(point), "credential_id", nil)}})
	if r.status != 200 || string(r.body) != `{"results":[{"valid":true,"counter":8},{"valid":true,"counter":8}]}`+"\n" {
		t.Fatalf("valid assertion: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		name string
		item map[string]any
		want string
	}{
		{"other client data", with(item, "client_data", b64([]byte(`{"challenge":"c-77","number":43}`))), "assert.signature"},
		{"counter not greater", with(item, "previous_counter", 8), "assert.counter"},
		{"other App ID", with(item, "app_id", "8YE23NZS57.com.example.other"), "assert.app_id_mismatch"},
		{"no App ID", with(item, "app_id", nil), "input.app_ids"},
		{"challenge absent", with(item, "challenge", b64([]byte("c-78"))), "assert.challenge"},
		{"not a CBOR map", with(item, "assertion", b64([]byte("junk"))), "cbor.type"},
		{"no assertion", with(item, "assertion", nil), "input.signature"},
		{"no client data", with(item, "client_data", nil), "input.message"},
		{"a message too", with(item, "message", b64(clientData)), "input.field"},
		{"another tenant's credential", with(item, "credential_id", "iphone"), "input.unknown_credential"},
	} {
		key := keyA
		if c.name == "another tenant's credential" {
			key = keyB
		}
		if got := ts.verifyResults(key, c.item)[0]; got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if m := ts.get("/metrics"); !bytes.Contains(m.body, []byte(`keybind_verify_items_total{algorithm="appattest",result="valid"} 2`)) {
		t.Errorf("App Attest verdicts not counted")
	}
}

func TestVerifyRequestProblems(t *testing.T) {
	ts := verifyServer(t, nil, Config{})
	k := newTestKeys(t)
	item, _ := json.Marshal(k.p256Item([]byte("m")))
	many := `{"items":[` + strings.Repeat(string(item)+",", 32) + string(item) + `]}`

	for _, c := range []struct {
		name        string
		key, ct     string
		body        string
		status      int
		code        string
		contains    string
		wwwAuthAlso bool
	}{
		{"no key", "", "application/json", `{"items":[]}`, 401, CodeUnauthenticated, "", true},
		{"unknown key", "nobody-knows-this-key", "application/json", `{}`, 401, CodeUnauthenticated, "", true},
		{"not JSON", keyA, "application/json", `items`, 400, CodeJSON, "", false},
		{"truncated JSON", keyA, "application/json", `{"items":[` + string(item), 400, CodeJSON, "", false},
		{"trailing data", keyA, "application/json", `{"items":[` + string(item) + `]} {}`, 400, CodeJSON, "", false},
		{"no items", keyA, "application/json", `{}`, 400, CodeItems, "", false},
		{"empty items", keyA, "application/json", `{"items":[]}`, 400, CodeItems, "", false},
		{"items not an array", keyA, "application/json", `{"items":{}}`, 400, CodeJSON, "", false},
		{"too many items", keyA, "application/json", many, 400, CodeItems, "more than 32", false},
		{"unknown member", keyA, "application/json", `{"items":[` + string(item) + `],"x":1}`, 400, CodeJSON, `"x"`, false},
		{"unknown item member", keyA, "application/json", `{"items":[{"algorithm":"ed25519","sig":""}]}`, 400, CodeJSON, `items[0]: unknown member "sig"`, false},
		{"duplicate member", keyA, "application/json", `{"items":[{"algorithm":"ed25519","algorithm":"ed25519"}]}`, 400, CodeJSON, "duplicate", false},
		{"number for a string", keyA, "application/json", `{"items":[{"algorithm":1}]}`, 400, CodeJSON, "", false},
		{"negative counter", keyA, "application/json", `{"items":[{"previous_counter":-1}]}`, 400, CodeJSON, "", false},
		{"text/plain", keyA, "text/plain", `{"items":[` + string(item) + `]}`, 415, CodeMediaType, "", false},
		{"no content type", keyA, "", `{"items":[` + string(item) + `]}`, 415, CodeMediaType, "", false},
	} {
		r := ts.do("POST", "/v1/verify", c.key, c.ct, []byte(c.body))
		p := r.problem(t)
		if r.status != c.status || p["code"] != c.code || !strings.Contains(fmt.Sprint(p["detail"]), c.contains) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if c.wwwAuthAlso && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	// Oversized: over the route's 64 KiB limit.
	big := `{"items":[{"algorithm":"ed25519","message":"` + strings.Repeat("A", 70<<10) + `"}]}`
	ts.do("POST", "/v1/verify", keyA, "application/json", []byte(big)).expectProblem(t, 413, CodeBodyTooLarge)
	// Wrong method, unknown route.
	r := ts.do("GET", "/v1/verify", keyA, "", nil)
	r.expectProblem(t, 405, CodeMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Errorf("405 Allow %q", r.header.Get("Allow"))
	}
	ts.get("/v1/nothing").expectProblem(t, 404, CodeNotFound)
	ts.get("/v1/verify/").expectProblem(t, 404, CodeNotFound)
	// JSON escapes are decoded: "\u0065d25519" is "ed25519", "\/" is "/".
	esc := `{"items":[{"algorithm":"\u0065d25519","public_key":"` + strings.ReplaceAll(b64(k.edPub), "/", `\/`) + `","message":"` + b64([]byte("m")) + `","signature":"` + strings.ReplaceAll(b64(ed25519.Sign(k.ed, []byte("m"))), "/", `\/`) + `"}]}`
	if r := ts.verify(keyA, esc); r.status != 200 || !bytes.Equal(r.body, []byte(`{"results":[{"valid":true}]}`+"\n")) {
		t.Errorf("escaped strings: %d %s", r.status, r.body)
	}
}

func TestRoutesAndRoles(t *testing.T) {
	var order []string
	var mu sync.Mutex
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	ts := startServer(t, Config{BodyLimit: 1024}, func(s *Server) {
		s.Handle(Route{Method: "GET", Path: "/v1/tenants/{tenant}/users/{user}", Roles: []Role{RoleAdmin}, Handler: func(c *Ctx) error {
			if c.Param("tenant") != c.Principal.Tenant {
				return Problemf(404, "tenant.not_found", "no such tenant")
			}
			return c.JSON(200, map[string]string{"tenant": c.Param("tenant"), "user": c.Param("user"), "key": c.Principal.KeyID})
		}})
		s.Handle(Route{Method: "GET", Path: "/v1/tenants/{tenant}/static", Handler: func(c *Ctx) error {
			return c.JSON(200, "static")
		}})
		s.Handle(Route{Method: "POST", Path: "/v1/echo", Handler: func(c *Ctx) error {
			var v map[string]any
			if err := c.DecodeJSON(&v); err != nil {
				return err
			}
			return c.JSON(200, v)
		}})
		s.Handle(Route{Method: "GET", Path: "/v1/panic", Handler: func(c *Ctx) error { panic("handler bug") }})
		s.Handle(Route{Method: "GET", Path: "/v1/panic-after-write", Handler: func(c *Ctx) error {
			c.Raw(200, "text/plain", []byte("partial"))
			var m map[string]int
			m["x"]++ // nil map write
			return nil
		}})
		s.Handle(Route{Method: "GET", Path: "/v1/error", Handler: func(c *Ctx) error { return errors.New("disk on fire") }})
		s.Handle(Route{Method: "GET", Path: "/v1/attest-error", Handler: func(c *Ctx) error {
			return fmt.Errorf("enrolling: %w", attest.Errorf("chain.expired", "leaf expired"))
		}})
		s.Handle(Route{Method: "GET", Path: "/v1/mapped", Handler: func(c *Ctx) error {
			return attest.Errorf("enrollment.gone", "enrollment expired")
		}})
		s.MapCode("enrollment.gone", 410)
		s.OnShutdown(func() error { record("first registered"); return nil })
		s.OnShutdown(func() error { record("second registered"); return nil })
	})

	r := ts.do("GET", "/v1/tenants/tenant-a/users/alice", keyAdminA, "", nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"user":"alice"`)) || !bytes.Contains(r.body, []byte(`"key":"static:`)) {
		t.Fatalf("param route: %d %s", r.status, r.body)
	}
	ts.do("GET", "/v1/tenants/tenant-b/users/alice", keyAdminA, "", nil).expectProblem(t, 404, "tenant.not_found")
	ts.do("GET", "/v1/tenants/tenant-a/users/alice", keyA, "", nil).expectProblem(t, 403, CodeForbidden)
	ts.do("GET", "/v1/tenants/tenant-a/users/alice", "", "", nil).expectProblem(t, 401, CodeUnauthenticated)
	ts.do("GET", "/v1/tenants/tenant-a/users/", keyAdminA, "", nil).expectProblem(t, 404, CodeNotFound)
	if r := ts.get("/v1/tenants/x/static"); r.status != 200 {
		t.Errorf("static segment under a parameter: %d", r.status)
	}
	if r := ts.do("HEAD", "/v1/tenants/x/static", "", "", nil); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}

	if r := ts.do("POST", "/v1/echo", "", "application/json", []byte(`{"a":1}`)); r.status != 200 || string(r.body) != "{\"a\":1}\n" {
		t.Errorf("echo: %d %s", r.status, r.body)
	}
	ts.do("POST", "/v1/echo", "", "application/json", []byte(`{"a":`)).expectProblem(t, 400, CodeJSON)
	ts.do("POST", "/v1/echo", "", "application/json; charset=utf-8", []byte(`{"a":1} 2`)).expectProblem(t, 400, CodeJSON)
	ts.do("POST", "/v1/echo", "", "text/csv", []byte(`a,b`)).expectProblem(t, 415, CodeMediaType)
	ts.do("POST", "/v1/echo", "", "application/json", bytes.Repeat([]byte(" "), 2048)).expectProblem(t, 413, CodeBodyTooLarge)

	// A panic is a 500 and a logged bug; the server stays up.
	for _, path := range []string{"/v1/panic", "/v1/panic-after-write"} {
		r := ts.get(path)
		r.expectProblem(t, 500, CodeInternal)
		if bytes.Contains(r.body, []byte("partial")) {
			t.Errorf("%s: the partial response leaked: %s", path, r.body)
		}
	}
	if !strings.Contains(ts.logs.String(), `"msg":"handler panic"`) || !strings.Contains(ts.logs.String(), "handler bug") {
		t.Error("the panic was not logged")
	}
	ts.get("/v1/error").expectProblem(t, 500, CodeInternal)
	if strings.Contains(string(ts.get("/v1/error").body), "disk on fire") {
		t.Error("an internal error's text reached the client")
	}
	if !strings.Contains(ts.logs.String(), "disk on fire") {
		t.Error("an internal error was not logged")
	}
	ts.get("/v1/attest-error").expectProblem(t, 422, "chain.expired")
	ts.get("/v1/mapped").expectProblem(t, 410, "enrollment.gone")
	if r := ts.get("/healthz"); r.status != 200 {
		t.Fatal("server down after panics")
	}
	if m := ts.get("/metrics"); !bytes.Contains(m.body, []byte("keybind_http_panics_total 2")) {
		t.Error("panics not counted")
	}

	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "second registered,first registered" {
		t.Errorf("resources closed in order %v", order)
	}
}

func TestStatusOf(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for code, want := range map[string]int{
		"input.json": 400, "cbor.tag": 400, "asn1.malformed": 400, "chain.expired": 422, "assert.signature": 422,
		"policy.security_level": 422, "auth.unauthenticated": 401, "auth.forbidden": 403, "tenant.not_found": 404,
		"input.unknown_credential": 404, "device.conflict": 409, "state.answered": 409, "mystery": 500,
	} {
		if got := s.StatusOf(code); got != want {
			t.Errorf("StatusOf(%q) = %d, want %d", code, got, want)
		}
	}
	s.MapCode("tenant.", 400)
	s.MapCode("tenant.not_", 404)
	if s.StatusOf("tenant.not_found") != 404 || s.StatusOf("tenant.disabled") != 400 {
		t.Error("MapCode: the longest prefix must win")
	}
}

func TestStaticKeys(t *testing.T) {
	h := HashKey([]byte("a-key-of-sufficient-length"))
	keys, err := ParseStaticKeys([]string{"acme:verify:a-key-of-sufficient-length", fmt.Sprintf("beta:admin:sha256:%x", sha256.Sum256([]byte("beta-admin-key-0000001")))})
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.Authenticate([]byte("a-key-of-sufficient-length"))
	if err != nil || p.Tenant != "acme" || p.Role != RoleVerify || p.KeyID != fmt.Sprintf("static:%x", h[:4]) {
		t.Errorf("%+v %v", p, err)
	}
	if p, err := keys.Authenticate([]byte("beta-admin-key-0000001")); err != nil || p.Tenant != "beta" || p.Role != RoleAdmin {
		t.Errorf("hashed key: %+v %v", p, err)
	}
	if _, err := keys.Authenticate([]byte("a-key-of-sufficient-lengtH")); !errors.Is(err, ErrUnauthenticated) {
		t.Error("a wrong key authenticated")
	}
	for _, bad := range []string{"acme", "acme:verify", "acme:root:a-key-of-sufficient-length", ":verify:a-key-of-sufficient-length", "acme:verify:short", "acme:verify:sha256:abcd"} {
		if _, err := ParseStaticKeys([]string{bad}); err == nil {
			t.Errorf("ParseStaticKeys(%q) accepted", bad)
		}
	}
	if _, err := ParseStaticKeys([]string{"a:verify:a-key-of-sufficient-length", "b:admin:a-key-of-sufficient-length"}); err == nil {
		t.Error("the same key twice was accepted")
	}
	if _, err := (Authenticators{keys}).Authenticate([]byte("nobody")); !errors.Is(err, ErrUnauthenticated) {
		t.Error("Authenticators")
	}
	for _, h := range []string{"Bearer abc", "bearer abc", "BEARER  abc "} {
		if tok, ok := bearer([]byte(h)); !ok || string(tok) != "abc" {
			t.Errorf("bearer(%q) = %q %v", h, tok, ok)
		}
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic abc", "Bearerabc"} {
		if _, ok := bearer([]byte(h)); ok {
			t.Errorf("bearer(%q) accepted", h)
		}
	}
}

func TestConnectionLimits(t *testing.T) {
	ts := verifyServer(t, nil, Config{MaxConnsPerIP: 2})
	addr := strings.TrimPrefix(ts.url, "http://")
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The two held connections work.
	for _, c := range conns {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		line, err := readStatusLine(c)
		if err != nil || !strings.Contains(line, " 200 ") {
			t.Fatalf("held connection: %q %v", line, err)
		}
	}
	// A third is refused with a problem.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 429 ")) || !bytes.Contains(b, []byte(CodeTooManyConns)) || !bytes.Contains(b, []byte("Retry-After: 1")) {
		t.Errorf("third connection: %q", b)
	}
	// A refused client that sends its request at once still gets the
	// answer (the refusal lingers instead of answering with a reset that
	// fails the client's write).
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	postEveryTime(t, cl, ts.url+"/v1/verify", "", bytes.Repeat([]byte("A"), 256<<10), 10, 429, CodeTooManyConns, "refused connection that sent a request")
	// Closing one frees its slot.
	conns[0].Close()
	time.Sleep(100 * time.Millisecond)
	if r := ts.get("/healthz"); r.status != 200 {
		t.Errorf("after a close: %d", r.status)
	}
	conns[1].Close()
}

func readStatusLine(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line, err
}

func TestReadTimeout(t *testing.T) {
	ts := startServer(t, Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half a request, then silence: the server gives up on the connection.
	fmt.Fprintf(c, "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the connection was not closed: %v (%q)", err, b)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	if len(b) > 0 && !bytes.Contains(b, []byte(CodeTimeout)) {
		t.Errorf("answer to a timed-out request: %q", b)
	}
}

// TestGracefulShutdown starts a slow request, shuts the server down while
// it runs, and checks that it completes, that new connections are refused,
// and that resources close only after the drain.
func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	var closedAt, finishedAt time.Time
	var mu sync.Mutex
	ts := startServer(t, Config{}, func(s *Server) {
		s.Handle(Route{Method: "GET", Path: "/v1/slow", Handler: func(c *Ctx) error {
			close(started)
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			finishedAt = time.Now()
			mu.Unlock()
			return c.JSON(200, "done")
		}})
		s.OnShutdown(func() error { mu.Lock(); closedAt = time.Now(); mu.Unlock(); return nil })
	})
	done := make(chan response, 1)
	go func() { done <- ts.get("/v1/slow") }()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	r := <-done
	if r.status != 200 || string(r.body) != "\"done\"\n" {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if closedAt.IsZero() || closedAt.Before(finishedAt) {
		t.Errorf("resources closed at %v, request finished at %v", closedAt, finishedAt)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.url, "http://"), time.Second); err == nil {
		t.Error("the server still accepts connections")
	}
}

// TestCopyBody checks that a body copied for work outliving the handler
// survives the connection's next requests.
func TestCopyBody(t *testing.T) {
	got := make(chan []byte, 1)
	release := make(chan struct{})
	ts := startServer(t, Config{}, func(s *Server) {
		s.Handle(Route{Method: "POST", Path: "/v1/later", Handler: func(c *Ctx) error {
			body := c.CopyBody()
			go func() {
				<-release
				got <- body
			}()
			return c.JSON(202, "accepted")
		}})
		s.Handle(Route{Method: "POST", Path: "/v1/other", Handler: func(c *Ctx) error { return c.JSON(200, len(c.Body())) }})
	})
	first := bytes.Repeat([]byte("first-body."), 100)
	ts.do("POST", "/v1/later", "", "application/json", first)
	for range 5 {
		ts.do("POST", "/v1/other", "", "application/json", bytes.Repeat([]byte("X"), len(first)))
	}
	close(release)
	if b := <-got; !bytes.Equal(b, first) {
		t.Errorf("the copied body changed: %.40q", b)
	}
}

func TestGlobalConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{MaxConns: 1}, nil)
	addr := strings.TrimPrefix(ts.url, "http://")
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintf(held, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := readStatusLine(held); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("held connection: %q %v", line, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 503 ")) || !bytes.Contains(b, []byte(CodeTooManyConns)) {
		t.Errorf("connection over the limit: %q", b)
	}
}

func TestTLS(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ts := startServer(t, Config{}, func(s *Server) {
		s.UseTLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}, MinVersion: tls.VersionTLS12})
	})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := strings.Replace(ts.url, "http://", "https://", 1)
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("/healthz over TLS: %d %v", resp.StatusCode, resp.TLS)
	}
	// A body over the limit, refused before it is read, is answered over
	// TLS too: the lingering close sits under the TLS connection.
	postEveryTime(t, client, url+"/healthz", "", bytes.Repeat([]byte("A"), 512<<10), 5, 413, CodeBodyTooLarge, "oversized body over TLS")
	if resp, err := http.Get(ts.url + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS port")
		}
	}
}

// TestOversizedBodyAnswered: a body over the route's limit is refused
// from its Content-Length, before it is read; the client, still sending
// it, must nevertheless receive the 413 every time (the server's side
// ends with a lingering close, not a reset), and each lingering
// connection gives its place in the connection limits back.
func TestOversizedBodyAnswered(t *testing.T) {
	ts := verifyServer(t, nil, Config{})
	big := []byte(`{"items":[{"algorithm":"ed25519","message":"` + strings.Repeat("A", 512<<10) + `"}]}`)
	postEveryTime(t, ts.client, ts.url+"/v1/verify", keyA, big, 20, 413, CodeBodyTooLarge, "oversized body")
	ts.client.CloseIdleConnections()
	ln := ts.s.ln.(*limitListener)
	deadline := time.Now().Add(5 * time.Second)
	for ln.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still hold their places", ln.open.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postEveryTime posts body (JSON, with the API key when given) n times and
// fails unless every answer arrives with the status and the problem code:
// for answers the server writes before it has read the whole request.
func postEveryTime(t *testing.T, c *http.Client, url, key string, body []byte, n, status int, code, what string) {
	t.Helper()
	for i := range n {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s, attempt %d: the answer was lost: %v", what, i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || !bytes.Contains(b, []byte(code)) {
			t.Fatalf("%s, attempt %d: %d %s", what, i, resp.StatusCode, b)
		}
	}
}
