package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/demo"
	"github.com/keybind/keybind/engine"
)

// pageCall calls the demo site's backend and decodes its JSON answer.
func pageCall(t *testing.T, d *runningDemo, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, d.pageURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s answered %d with %q: not JSON", method, path, resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s answered %d as %s, not a problem", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

// approveOnPhone starts a sign-in of user on the page and answers it on
// the user's phone through the panel's backend, with the right number
// (or a wrong one); it returns the outcome the page's long poll reports.
func approveOnPhone(t *testing.T, d *runningDemo, phone, user string, right bool) map[string]any {
	t.Helper()
	st, start := pageCall(t, d, "POST", "/api/signin", `{"username":"`+user+`"}`)
	if st != 200 || start["method"] != "phone" {
		t.Fatalf("starting %s: %d %v", user, st, start)
	}
	number := int(start["number"].(float64))
	st, pend := pageCall(t, d, "GET", "/api/phones/"+phone+"/pending", "")
	p, _ := pend["pending"].(map[string]any)
	if st != 200 || p == nil {
		t.Fatalf("the phone has nothing pending: %d %v", st, pend)
	}
	choice := number
	for _, c := range p["choices"].([]any) {
		if n := int(c.(float64)); !right && n != number {
			choice = n
		}
	}
	body, _ := json.Marshal(map[string]any{"attempt": p["attempt"], "decision": "approve", "number": choice})
	if st, out := pageCall(t, d, "POST", "/api/phones/"+phone+"/answer", string(body)); st != 200 {
		t.Fatalf("answering: %d %v", st, out)
	}
	st, out := pageCall(t, d, "GET", "/api/signin/"+start["flow"].(string)+"/outcome", "")
	if st != 200 {
		t.Fatalf("outcome: %d %v", st, out)
	}
	return out
}

func TestDemoHelpAndFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if st := run(&env{stdout: &out, stderr: &errb}, []string{"demo", "--help"}); st != 0 {
		t.Fatalf("demo --help: %d %s", st, errb.String())
	}
	for _, want := range []string{"Usage: keybind demo", "-addr", "-api-addr", "-data", "-attempt-lifetime", "alice@demo.test", "pat@demo.test", "bob@federated.test", "Ctrl-C"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo --help lacks %q", want)
		}
	}
	out.Reset()
	run(&env{stdout: &out, stderr: &errb}, []string{"help"})
	if !strings.Contains(out.String(), "demo") {
		t.Errorf("keybind help does not list demo:\n%s", out.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--attempt-lifetime", "5s"}, "--attempt-lifetime 5s: want whole seconds from 30s to 10m0s"},
		{[]string{"demo", "--attempt-lifetime", "11m"}, "want whole seconds"},
		{[]string{"demo", "--attempt-lifetime", "45500ms"}, "want whole seconds"},
		{[]string{"demo", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "--log-level", "loud", "--data", t.TempDir()}, "--log-level"},
	} {
		errb.Reset()
		if st := run(&env{stdout: io.Discard, stderr: &errb}, c.args); st != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, st)
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: %q lacks %q", c.args, errb.String(), c.want)
		}
	}
}

func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, flag := range []string{"--addr", "--api-addr"} {
		var errb bytes.Buffer
		st := run(&env{stdout: io.Discard, stderr: &errb}, []string{"demo", "--data", t.TempDir(), flag, ln.Addr().String()})
		if st != 1 {
			t.Errorf("%s on a taken port: exit %d, want 1", flag, st)
		}
		want := flag + " " + ln.Addr().String() + ": the address is already in use"
		if !strings.Contains(errb.String(), want) {
			t.Errorf("%s on a taken port says %q, want %q", flag, errb.String(), want)
		}
	}
}

// TestDemoRestart runs the demo twice on one data directory: the second
// run reuses the tenant, the users and the enrolled phones, issues a new
// page key (revoking the first), applies the new attempt lifetime, and
// signs in as the first did. A second demo on a data directory in use is
// refused.
func TestDemoRestart(t *testing.T) {
	data := t.TempDir()
	d1, _, err := startDemo(context.Background(), &env{stdout: io.Discard, stderr: io.Discard}, &demoOptions{
		addr: "127.0.0.1:0", apiAddr: "127.0.0.1:0", data: data, attemptLifetime: time.Minute, logLevel: "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := d1.site.Enrolled; !slices.Equal(got, []string{"alice@demo.test", "carol@demo.test"}) {
		t.Errorf("first run enrolled %v", got)
	}
	if out := approveOnPhone(t, d1, "alice", "alice@demo.test", true); out["state"] != "approved" {
		t.Errorf("first run: %v", out)
	}
	var errb bytes.Buffer
	_, st, err := startDemo(context.Background(), &env{stdout: io.Discard, stderr: &errb}, &demoOptions{
		addr: "127.0.0.1:0", apiAddr: "127.0.0.1:0", data: data, attemptLifetime: time.Minute, logLevel: "error",
	})
	if err == nil || st != 1 || !strings.Contains(err.Error(), "another keybind demo") {
		t.Errorf("a second demo on the same data: %d %v", st, err)
	}
	oldKey, oldAPI := d1.site.AuthKey, d1.apiURL
	if err := d1.stop(); err != nil {
		t.Fatal(err)
	}

	d2 := startTestDemo(t, data, 45*time.Second)
	if len(d2.site.Enrolled) != 0 {
		t.Errorf("second run enrolled %v again", d2.site.Enrolled)
	}
	if d2.apiURL == oldAPI {
		t.Logf("the API port was reused: %s", oldAPI)
	}
	ctx := context.Background()
	op := client.New(d2.apiURL, d2.operatorKey)
	tenant, err := op.GetTenant(ctx, demo.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if tenant.Policy.AttemptLifetimeSeconds != 45 || tenant.Policy.Federation.SignInURL != d2.pageURL+"/federation" {
		t.Errorf("second run's policy: lifetime %d, federation %q", tenant.Policy.AttemptLifetimeSeconds, tenant.Policy.Federation.SignInURL)
	}
	_, err = client.New(d2.apiURL, oldKey).StartSignIn(ctx, client.SignInRequest{Username: "alice@demo.test"})
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 401 {
		t.Errorf("the first run's page key still works: %v", err)
	}
	keys, err := op.ListKeys(ctx, demo.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys); n != 1 {
		t.Errorf("the tenant has %d keys after two runs, want 1: %v", n, keys)
	}
	for _, u := range []string{"alice", "carol"} {
		creds, err := op.ListCredentials(ctx, demo.Tenant, u)
		if err != nil || len(creds) != 1 {
			t.Errorf("%s has credentials %v (%v), want one", u, creds, err)
		}
	}
	if out := approveOnPhone(t, d2, "carol", "carol@demo.test", true); out["state"] != "approved" {
		t.Errorf("second run, carol: %v", out)
	}
	if out := approveOnPhone(t, d2, "alice", "alice@demo.test", false); out["state"] != "denied" || out["reason"] != "signin.wrong_number" {
		t.Errorf("second run, a wrong number: %v", out)
	}
}

// TestDemoPageAPI checks the site backend's answers to bad requests over
// HTTP: a stable code, and nothing started.
func TestDemoPageAPI(t *testing.T) {
	d := startTestDemo(t, t.TempDir(), time.Minute)
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/api/signin", `{"username":""}`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"no-at-sign"}`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"` + strings.Repeat("a", 300) + `@demo.test"}`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"alice@demo.test","extra":1}`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"alice@demo.test"} {}`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `[1]`, 400, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"alice@demo.test"` + strings.Repeat(" ", 5000) + `}`, 413, demo.CodeBadRequest},
		{"POST", "/api/signin", `{"username":"al\u0000ice@demo.test"}`, 400, "input.invalid"},
		{"GET", "/api/signin/nope/outcome", "", 404, demo.CodeFlowNotFound},
		{"POST", "/api/signin/nope/password", "", 404, demo.CodeFlowNotFound},
		{"POST", "/api/password", `{"flow":"nope","password":"demo"}`, 404, demo.CodeFlowNotFound},
		{"GET", "/api/phones/nope/pending", "", 404, demo.CodePhoneNotFound},
		{"POST", "/api/phones/alice/answer", `{"attempt":"x","decision":"maybe"}`, 400, demo.CodeBadRequest},
		{"POST", "/api/phones/alice/answer", `{"attempt":"x","decision":"approve","number":7}`, 400, demo.CodeBadRequest},
		{"POST", "/api/phones/alice/answer", `{"attempt":"x","decision":"deny","number":42}`, 400, demo.CodeBadRequest},
		{"POST", "/api/phones/alice/answer", `{"attempt":"x","decision":"deny"}`, 409, demo.CodeNotPending},
		{"DELETE", "/api/signin", "", 404, demo.CodeMethodNotFound},
	}
	for _, c := range cases {
		st, out := pageCall(t, d, c.method, c.path, c.body)
		if st != c.status || out["code"] != c.code {
			t.Errorf("%s %s %.60q: %d %v, want %d %s", c.method, c.path, c.body, st, out, c.status, c.code)
		}
	}
	// A form post (not JSON) is refused before anything starts.
	resp, err := http.Post(d.pageURL+"/api/signin", "application/x-www-form-urlencoded", strings.NewReader("username=alice@demo.test"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("a form post: %d, want 415", resp.StatusCode)
	}
	// None of the above started a sign-in: the phones have nothing.
	for _, ph := range []string{"alice", "carol"} {
		if _, out := pageCall(t, d, "GET", "/api/phones/"+ph+"/pending", ""); out["pending"] != nil {
			t.Errorf("%s's phone has a pending sign-in after bad requests: %v", ph, out)
		}
	}

	// Methods: phone, password (no phone, unknown user), federate.
	for user, want := range map[string][2]string{
		"pat@demo.test":          {"password", "signin.no_credential"},
		"nobody@demo.test":       {"password", "user.not_found"},
		"bob@federated.test":     {"federate", ""},
		"Alice@Demo.Test":        {"phone", ""},
		"someone@elsewhere.test": {"password", "user.not_found"},
	} {
		st, out := pageCall(t, d, "POST", "/api/signin", `{"username":"`+user+`"}`)
		reason, _ := out["reason"].(string)
		if st != 200 || out["method"] != want[0] || reason != want[1] {
			t.Errorf("%s: %d %v, want %s %s", user, st, out, want[0], want[1])
		}
		if want[0] == "federate" && out["federation_url"] != d.pageURL+"/federation?login_hint=bob%40federated.test" {
			t.Errorf("federation URL %v", out["federation_url"])
		}
		if want[0] != "phone" {
			if st, o := pageCall(t, d, "GET", "/api/signin/"+out["flow"].(string)+"/outcome", ""); st != 409 || o["code"] != demo.CodeNotPhone {
				t.Errorf("%s: the outcome of a %s sign-in: %d %v", user, want[0], st, o)
			}
		}
	}
	// A federated user has no password here.
	_, out := pageCall(t, d, "POST", "/api/signin", `{"username":"bob@federated.test"}`)
	if st, o := pageCall(t, d, "POST", "/api/password", `{"flow":"`+out["flow"].(string)+`","password":"demo"}`); st != 409 {
		t.Errorf("a password for a federated user: %d %v", st, o)
	}

	// "Use your password instead" cancels the attempt; the password then
	// signs in, and the attempt's outcome is cancelled.
	_, start := pageCall(t, d, "POST", "/api/signin", `{"username":"carol@demo.test"}`)
	flow := start["flow"].(string)
	if st, o := pageCall(t, d, "POST", "/api/signin/"+flow+"/password", ""); st != 200 || o["attempt_state"] != engine.StateCancelled {
		t.Errorf("use the password: %d %v", st, o)
	}
	if _, o := pageCall(t, d, "GET", "/api/signin/"+flow+"/outcome", ""); o["state"] != engine.StateCancelled || o["reason"] != "signin.cancelled" {
		t.Errorf("outcome after the password: %v", o)
	}
	if _, o := pageCall(t, d, "GET", "/api/phones/carol/pending", ""); o["pending"] != nil {
		t.Errorf("the phone still has the cancelled sign-in: %v", o)
	}
	if st, o := pageCall(t, d, "POST", "/api/password", `{"flow":"`+flow+`","password":"Demo"}`); st != 401 || o["code"] != demo.CodeWrongPassword {
		t.Errorf("a wrong password: %d %v", st, o)
	}
	if st, o := pageCall(t, d, "POST", "/api/password", `{"flow":"`+flow+`","password":"demo"}`); st != 200 || o["state"] != "signed_in" {
		t.Errorf("the password: %d %v", st, o)
	}
	// Cancelling again is harmless.
	if st, o := pageCall(t, d, "POST", "/api/signin/"+flow+"/password", ""); st != 200 || o["state"] != "password" || o["attempt_state"] != engine.StateCancelled {
		t.Errorf("use the password twice: %d %v", st, o)
	}

	// Deny and fraud from the phone.
	for _, decision := range []string{"deny", "fraud"} {
		_, start := pageCall(t, d, "POST", "/api/signin", `{"username":"alice@demo.test"}`)
		_, pend := pageCall(t, d, "GET", "/api/phones/alice/pending", "")
		attempt := pend["pending"].(map[string]any)["attempt"].(string)
		st, o := pageCall(t, d, "POST", "/api/phones/alice/answer", `{"attempt":"`+attempt+`","decision":"`+decision+`"}`)
		want := map[string]string{"deny": engine.StateDenied, "fraud": engine.StateFraud}[decision]
		if st != 200 || o["state"] != want {
			t.Errorf("%s: %d %v", decision, st, o)
		}
		if _, o := pageCall(t, d, "GET", "/api/signin/"+start["flow"].(string)+"/outcome", ""); o["state"] != want {
			t.Errorf("%s: the page sees %v", decision, o)
		}
		// The answered attempt cannot be answered again.
		if st, o := pageCall(t, d, "POST", "/api/phones/alice/answer", `{"attempt":"`+attempt+`","decision":"deny"}`); st != 409 || o["code"] != demo.CodeNotPending {
			t.Errorf("answering twice: %d %v", st, o)
		}
	}

	// Unanswered sign-ins in a row bring the back-off: the page offers
	// the password, with how long to wait.
	backoff := false
	for i := 0; i < 4 && !backoff; i++ {
		st, out := pageCall(t, d, "POST", "/api/signin", `{"username":"carol@demo.test"}`)
		if st != 200 {
			t.Fatalf("start %d: %d %v", i, st, out)
		}
		if out["method"] == "password" {
			backoff = true
			if out["reason"] != "signin.backoff" || out["detail"] == "" || out["retry_after_seconds"].(float64) <= 0 {
				t.Errorf("back-off: %v", out)
			}
			if st, o := pageCall(t, d, "POST", "/api/password", `{"flow":"`+out["flow"].(string)+`","password":"demo"}`); st != 200 || o["state"] != "signed_in" {
				t.Errorf("the password during the back-off: %d %v", st, o)
			}
		}
	}
	if !backoff {
		t.Error("four unanswered sign-ins in a row, and no back-off")
	}

	// The pages.
	for path, want := range map[string]string{
		"/":                                     `id="signin-form"`,
		"/phone":                                `id="phones"`,
		"/federation?login_hint=%3Cb%3E@x.test": "&lt;b&gt;@x.test",
		"/static/app.js":                        "use strict",
		"/static/style.css":                     "--accent",
	} {
		resp, err := http.Get(d.pageURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	for _, path := range []string{"/nope", "/static/nope.js", "/static/federation.html", "/static/index.html"} {
		resp, err := http.Get(d.pageURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestDemoStopDuringLongPoll stops the demo while the page waits for a
// phone: the stop is prompt, and the wait ends.
func TestDemoStopDuringLongPoll(t *testing.T) {
	d, _, err := startDemo(context.Background(), &env{stdout: io.Discard, stderr: io.Discard}, &demoOptions{
		addr: "127.0.0.1:0", apiAddr: "127.0.0.1:0", data: t.TempDir(), attemptLifetime: time.Minute, logLevel: "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, start := pageCall(t, d, "POST", "/api/signin", `{"username":"alice@demo.test"}`)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(d.pageURL + "/api/signin/" + start["flow"].(string) + "/outcome")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the long poll is under way
	began := time.Now()
	if err := d.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if took := time.Since(began); took > 8*time.Second {
		t.Errorf("stopping took %v with a long poll in flight", took)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the long poll is still waiting after the demo stopped")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(d.pageURL, "http://"), time.Second); err == nil {
		t.Error("the page still accepts connections after the stop")
	}
}

// FuzzDemoPageAPI sends arbitrary requests to the running demo's backend
// (real keybind server, real phones): every answer is JSON, a refusal is
// a problem with a code, and none is a server error.
func FuzzDemoPageAPI(f *testing.F) {
	for _, s := range []struct {
		route       uint8
		param, body string
		json        bool
	}{
		{0, "", `{"username":"alice@demo.test"}`, true},
		{0, "", `{"username":"pat@demo.test"}`, true},
		{0, "", `{"username":"bob@federated.test"}`, true},
		{0, "", `{"username":"x"}`, false},
		{1, "nope", "", false},
		{2, "nope", "", false},
		{3, "", `{"flow":"nope","password":"demo"}`, true},
		{4, "", "", false},
		{5, "alice", "", false},
		{5, "../alice", "", false},
		{6, "carol", `{"attempt":"x","decision":"approve","number":42}`, true},
		{6, "alice", `{"attempt":"x","decision":"fraud","number":0}`, true},
		{7, "<b>@federated.test", "", false},
	} {
		f.Add(s.route, s.param, []byte(s.body), s.json)
	}
	d := startTestDemo(f, f.TempDir(), time.Minute)
	hc := &http.Client{Timeout: 40 * time.Second}
	f.Fuzz(func(t *testing.T, route uint8, param string, body []byte, isJSON bool) {
		routes := []struct{ method, path string }{
			{"POST", "/api/signin"},
			{"GET", "/api/signin/{}/outcome"},
			{"POST", "/api/signin/{}/password"},
			{"POST", "/api/password"},
			{"GET", "/api/phones"},
			{"GET", "/api/phones/{}/pending"},
			{"POST", "/api/phones/{}/answer"},
			{"GET", "/federation?login_hint={}"},
		}
		r := routes[int(route)%len(routes)]
		path := strings.ReplaceAll(r.path, "{}", url.PathEscape(param))
		if strings.HasPrefix(r.path, "/federation") {
			path = strings.ReplaceAll(r.path, "{}", url.QueryEscape(param))
		}
		req, err := http.NewRequest(r.method, d.pageURL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if isJSON {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, path, body, resp.StatusCode, b)
		}
		if strings.HasPrefix(path, "/federation") {
			if resp.StatusCode != 200 || strings.Contains(string(b), "<b>@") {
				t.Fatalf("federation page for %q: %d, unescaped", param, resp.StatusCode)
			}
			return
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON", r.method, path, resp.StatusCode, b)
		}
		if resp.StatusCode >= 400 {
			if code, _ := out["code"].(string); code == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s: %d %s is not a problem with a code", r.method, path, resp.StatusCode, b)
			}
		}
	})
}
