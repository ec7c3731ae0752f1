package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestEngineFlow runs the product end to end over HTTP: the operator
// creates a tenant, its admin sets the policy and adds a user, the auth
// server opens an enrollment, the phone attests (a real Android chain),
// then sign-ins: approved with the right number (a long poll wakes on the
// answer), denied on a wrong number, denied, reported as fraud, cancelled,
// federated, and the password when phone sign-in does not apply.
func TestEngineFlow(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{PollInterval: 3 * time.Second})
	te := env.tenant("contoso", engine.Policy{})
	p := testPolicy()
	p.Federation = engine.Federation{Domains: []string{"fed.contoso.com"}, SignInURL: "https://sts.contoso.com/adfs/ls", HonorLoginHint: true}
	if err := te.admin.SetPolicy(bg, "contoso", p); err != nil {
		t.Fatal(err)
	}
	env.user(te, "u1", "alice@contoso.com")
	ph := env.mustEnroll(te, "u1")
	if ph.cred.Tenant != "contoso" || ph.cred.User != "u1" || ph.cred.Format != "android-key" || ph.cred.Trust != "hardware" || ph.cred.Device == "" {
		t.Fatalf("credential %+v", ph.cred)
	}
	ctxInfo := engine.SignInContext{App: "Mail", IP: "192.0.2.7", Location: "Lyon"}

	// Approved with the right number; a long poll wakes on the answer.
	start, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "Alice@contoso.com", Context: ctxInfo})
	if err != nil {
		t.Fatal(err)
	}
	if start.Method != "phone" || start.Attempt == "" || start.Number < 10 || start.Number > 99 || !start.PasswordFallback || start.PollIntervalSeconds != 3 || start.Mode != "type" {
		t.Fatalf("start %+v", start)
	}
	out, err := te.auth.SignInOutcome(bg, start.Attempt, 0)
	if err != nil || out.State != "pending" || out.PollIntervalSeconds != 3 {
		t.Fatalf("outcome %+v %v", out, err)
	}
	r := env.call("", "GET", "/v1/phone/signins", nil)
	r.expectProblem(t, 401, CodeUnauthenticated)
	req, _ := ph.NewRequest(bg, "GET", "/v1/phone/signins", "", nil)
	resp, err := env.ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if len(raw["attempts"]) != 1 || raw["attempts"][0]["attempt"] != start.Attempt {
		t.Fatalf("pending: %v", raw)
	}
	if _, ok := raw["attempts"][0]["number"]; ok {
		t.Fatal("the phone was sent the number in type mode")
	}
	pend, err := ph.Pending(bg)
	if err != nil || len(pend) != 1 || pend[0].Context != ctxInfo || pend[0].UPN != "alice@contoso.com" || len(pend[0].Nonce) != 16 {
		t.Fatalf("pending %+v %v", pend, err)
	}
	polled := make(chan *client.Outcome, 1)
	pollStart := time.Now()
	go func() {
		o, err := te.auth.SignInOutcome(bg, start.Attempt, 25*time.Second)
		if err != nil {
			t.Error(err)
		}
		polled <- o
	}()
	time.Sleep(200 * time.Millisecond) // the poll is waiting
	answered, err := ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number)
	if err != nil || answered.State != "approved" || answered.Credential != ph.cred.ID {
		t.Fatalf("answer: %+v %v", answered, err)
	}
	select {
	case o := <-polled:
		if o.State != "approved" || o.PollIntervalSeconds != 0 || time.Since(pollStart) > 10*time.Second {
			t.Fatalf("long poll: %+v after %v", o, time.Since(pollStart))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not wake on the answer")
	}
	// The attempt is answered once.
	_, err = ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number)
	wantProblem(t, err, 409, "signin.not_pending")
	if pend, _ := ph.Pending(bg); len(pend) != 0 {
		t.Fatalf("still pending: %+v", pend)
	}

	// A wrong number denies the attempt.
	start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ = ph.Pending(bg)
	_, err = ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number%99+10)
	wantProblem(t, err, 403, "signin.wrong_number")
	if out, _ := te.auth.SignInOutcome(bg, start.Attempt, 0); out.State != "denied" || out.Reason != "signin.wrong_number" {
		t.Fatalf("after a wrong number: %+v", out)
	}
	// Deny, and fraud.
	for decision, state := range map[string]string{engine.DecisionDeny: "denied", engine.DecisionFraud: "fraud"} {
		start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
		pend, _ = ph.Pending(bg)
		if out, err := ph.Answer(bg, pend[0], decision, 0); err != nil || out.State != state {
			t.Fatalf("%s: %+v %v", decision, out, err)
		}
	}
	if u := decode[engine.User](t, env.call(te.adminKey, "GET", "/v1/tenants/contoso/users/u1", nil)); u.FraudReports != 1 {
		t.Errorf("fraud reports %d", u.FraudReports)
	}

	// Cancel: "use your password instead". Cancelling again answers the
	// same; the phone sees nothing and cannot answer it.
	start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ = ph.Pending(bg)
	if out, err := te.auth.CancelSignIn(bg, start.Attempt); err != nil || out.State != "cancelled" || out.Reason != "signin.cancelled" {
		t.Fatalf("cancel: %+v %v", out, err)
	}
	if out, err := te.auth.CancelSignIn(bg, start.Attempt); err != nil || out.State != "cancelled" {
		t.Fatalf("cancel again: %+v %v", out, err)
	}
	if p, _ := ph.Pending(bg); len(p) != 0 {
		t.Fatalf("pending after cancel: %+v", p)
	}
	_, err = ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number)
	wantProblem(t, err, 409, "signin.not_pending")
	// An answered attempt cannot be cancelled.
	start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ = ph.Pending(bg)
	ph.Answer(bg, pend[0], engine.DecisionDeny, 0)
	_, err = te.auth.CancelSignIn(bg, start.Attempt)
	wantProblem(t, err, 409, "signin.not_pending")

	// Federated: to the federation server with the hint.
	start, err = te.auth.StartSignIn(bg, client.SignInRequest{Username: "bob@fed.contoso.com", LoginHint: "bob@fed.contoso.com"})
	if err != nil || start.Method != "federate" || start.Attempt != "" || !start.PasswordFallback {
		t.Fatalf("federate: %+v %v", start, err)
	}
	if u, _ := url.Parse(start.FederationURL); u.Host != "sts.contoso.com" || u.Query().Get("login_hint") != "bob@fed.contoso.com" {
		t.Errorf("federation URL %q", start.FederationURL)
	}
	// Password: an unknown user, a user without a credential.
	env.user(te, "u2", "bob@contoso.com")
	for upn, reason := range map[string]string{"zed@contoso.com": "user.not_found", "bob@contoso.com": "signin.no_credential"} {
		start, err = te.auth.StartSignIn(bg, client.SignInRequest{Username: upn})
		if err != nil || start.Method != "password" || string(start.Reason) != reason || start.PollIntervalSeconds != 0 {
			t.Errorf("%s: %+v %v", upn, start, err)
		}
	}
	// Bad input.
	env.call(te.authKey, "POST", "/v1/signins", `{"username":"alice@contoso.com","extra":1}`).expectProblem(t, 400, CodeJSON)
	env.call(te.authKey, "POST", "/v1/signins", `{"username":"no-at-sign"}`).expectProblem(t, 400, "input.invalid")
	env.call(te.authKey, "POST", "/v1/signins?x=1", `{"username":"alice@contoso.com"}`).expectProblem(t, 400, CodeQuery)
	env.ts.do("POST", "/v1/signins", te.authKey, "text/plain", []byte(`{}`)).expectProblem(t, 415, CodeMediaType)
	env.call(te.authKey, "GET", "/v1/signins/x?wait=soon", nil).expectProblem(t, 400, CodeQuery)
	env.call(te.authKey, "GET", "/v1/signins/no-such-attempt", nil).expectProblem(t, 404, "signin.not_found")
	env.call(te.authKey, "POST", "/v1/signins/no-such-attempt/cancel", nil).expectProblem(t, 404, "signin.not_found")
	env.call(te.authKey, "POST", "/v1/signins/x/cancel", `{}`).expectProblem(t, 400, CodeJSON)
	// Over the route's body limit.
	env.call(te.authKey, "POST", "/v1/signins", `{"username":"`+strings.Repeat("a", 70<<10)+`"}`).expectProblem(t, 413, CodeBodyTooLarge)

	// The verify endpoint resolves the tenant's credentials; a disabled
	// one is unknown at once.
	msg := []byte("approve sign-in 42")
	h := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(nil, ph.key.(*ecdsa.PrivateKey), h[:])
	item := map[string]any{"algorithm": "ecdsa-p256", "credential_id": ph.cred.ID, "message": b64(msg), "signature": b64(sig)}
	if codes := env.ts.verifyResults(te.authKey, item); codes[0] != "" {
		t.Fatalf("verify by credential id: %v", codes)
	}
	if r := env.call(te.adminKey, "POST", "/v1/tenants/contoso/credentials/"+ph.cred.ID+"/disable", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"disabled":true`)) {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if codes := env.ts.verifyResults(te.authKey, item); codes[0] != string(CodeUnknownCredential) {
		t.Fatalf("verify with a disabled credential: %v", codes)
	}
	// A disabled credential gets no sign-in, and its requests are refused.
	if start, _ := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"}); start.Method != "password" || start.Reason != "signin.no_credential" {
		t.Fatalf("sign-in with the credential disabled: %+v", start)
	}
	_, err = ph.Pending(bg)
	wantProblem(t, err, 403, "credential.disabled")
}

// TestEnrollmentRoutes checks the enrollment routes' answers and refusals,
// in JSON and CBOR.
func TestEnrollmentRoutes(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{PhoneBodyLimit: 32 << 10})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	env.user(te, "u2", "bob@contoso.com")
	noPush := "carol@contoso.com"
	te.admin.CreateUser(bg, "contoso", client.UserRequest{ID: "u3", UPN: &noPush})

	// By UPN; the answer has the challenge.
	r := env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"username": "bob@contoso.com"})
	enr := decode[Enrollment](t, r)
	if r.status != 201 || enr.User != "u2" || len(enr.Challenge) != 32 || enr.ExpiresAt.Before(time.Now()) {
		t.Fatalf("enrollment: %d %s", r.status, r.body)
	}
	env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"user": "u1", "username": "alice@contoso.com"}).expectProblem(t, 400, "input.invalid")
	env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"user": "nobody"}).expectProblem(t, 404, "user.not_found")
	env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"username": "nobody@contoso.com"}).expectProblem(t, 404, "user.not_found")
	env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"user": "u3"}).expectProblem(t, 403, "enroll.mfa_push_required")

	// CBOR: the same request as a CBOR map.
	att, err := env.android.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	body := forge.WebAuthnCBOR(map[string]any{"format": "android-key", "evidence": map[string]any{"chain": engine.JoinDER(att.Chain)}})
	r = env.ts.do("POST", "/v1/enrollments/"+enr.ID+"/attestation", "", "application/cbor", body)
	cred := decode[client.Credential](t, r)
	if r.status != 201 || cred.User != "u2" || cred.Format != "android-key" || len(cred.PublicKey) == 0 || bytes.Contains(r.body, []byte("challenge")) {
		t.Fatalf("CBOR attestation: %d %s", r.status, r.body)
	}
	// Used once.
	r = env.ts.do("POST", "/v1/enrollments/"+enr.ID+"/attestation", "", "application/cbor", body)
	r.expectProblem(t, 409, "enroll.used")
	// Malformed CBOR, an unknown member, the wrong media type, an unknown
	// enrollment, bad evidence, an attestation over another challenge.
	enr2, _ := te.auth.StartEnrollment(bg, "u1", false)
	path := "/v1/enrollments/" + enr2.ID + "/attestation"
	env.ts.do("POST", path, "", "application/cbor", []byte{0xa1, 0x61}).expectProblem(t, 400, "cbor.malformed")
	env.ts.do("POST", path, "", "application/cbor", forge.WebAuthnCBOR(map[string]any{"format": "android-key", "color": "red"})).expectProblem(t, 400, "cbor.type")
	env.ts.do("POST", path, "", "application/cbor", append(bytes.Clone(body), 0)).expectProblem(t, 400, "cbor.trailing_bytes")
	env.ts.do("POST", path, "", "text/plain", []byte("{}")).expectProblem(t, 415, CodeMediaType)
	env.call("", "POST", "/v1/enrollments/no-such-enrollment/attestation", map[string]any{"format": "android-key", "evidence": map[string]string{"chain": "AAAA"}}).expectProblem(t, 404, "enroll.not_found")
	env.call("", "POST", path, `{"format":"android-key","evidence":{"chain":"not base64!"}}`).expectProblem(t, 400, CodeJSON)
	env.call("", "POST", path, map[string]any{"format": "android-key", "evidence": map[string][]byte{"chain": {1, 2, 3}}}).expectProblem(t, 400, "input.evidence")
	enr3, _ := te.auth.StartEnrollment(bg, "u1", false)
	env.call("", "POST", "/v1/enrollments/"+enr3.ID+"/attestation", map[string]any{"format": "android-key", "evidence": map[string][]byte{"chain": engine.JoinDER(att.Chain)}}).expectProblem(t, 403, "android.challenge_mismatch")
	// Over the route's limit.
	env.call("", "POST", path, map[string]any{"format": "android-key", "evidence": map[string][]byte{"chain": make([]byte, 40<<10)}}).expectProblem(t, 413, CodeBodyTooLarge)

	// A second enrollment of the same device for another user of the tenant
	// is refused: one account per device.
	enr4, _ := te.auth.StartEnrollment(bg, "u1", false)
	att4, _ := env.android.Attest(forge.AndroidKey{Challenge: enr4.Challenge, UserAuth: true})
	_, err = env.anon.Attest(bg, enr4.ID, "android-key", engine.Evidence{"chain": engine.JoinDER(att4.Chain)}, cred.Device)
	wantProblem(t, err, 409, "enroll.device_has_account")
	// A phone without user authentication is refused by the default policy.
	enr5, _ := te.auth.StartEnrollment(bg, "u1", false)
	att5, _ := env.android.Attest(forge.AndroidKey{Challenge: enr5.Challenge})
	_, err = env.anon.Attest(bg, enr5.ID, "android-key", engine.Evidence{"chain": engine.JoinDER(att5.Chain)}, "")
	wantProblem(t, err, 403, "policy.user_auth")
	// The install limit.
	p := testPolicy()
	p.MaxInstalls = 1
	te.admin.SetPolicy(bg, "contoso", p)
	env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"user": "u2"}).expectProblem(t, 403, "enroll.install_limit")
}

// TestAppAttestOverHTTP enrolls an App Attest key and signs in with
// assertions: requests and answers share the key's rising counter.
func TestAppAttestOverHTTP(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	ph, prover := env.enrollApple(te, "u1")
	if ph.cred.Format != "apple-appattest" || ph.cred.AppID != testAppID {
		t.Fatalf("credential %+v", ph.cred)
	}
	for range 3 {
		start, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
		if err != nil {
			t.Fatal(err)
		}
		pend, err := ph.Pending(bg)
		if err != nil || len(pend) != 1 {
			t.Fatalf("pending %+v %v", pend, err)
		}
		if out, err := ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number); err != nil || out.State != "approved" {
			t.Fatalf("answer: %+v %v", out, err)
		}
	}
	// An assertion made before the last one (a lower counter) signs no
	// request, even with a new nonce.
	prover.mu.Lock()
	prover.counter -= 3
	prover.mu.Unlock()
	_, err := ph.Pending(bg)
	wantProblem(t, err, 401, "request.replay")
}

// TestSignedRequests checks the phone's request signing: a bad signature,
// a stale or future timestamp, a replayed nonce (also after a restart),
// another credential's key, missing and malformed headers.
func TestSignedRequests(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	env.user(te, "u2", "bob@contoso.com")
	ph := env.mustEnroll(te, "u1")
	other := env.mustEnroll(te, "u2")

	send := func(edit func(h map[string]string)) response {
		t.Helper()
		req, err := ph.NewRequest(bg, "GET", "/v1/phone/signins", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		for k := range req.Header {
			h[k] = req.Header.Get(k)
		}
		edit(h)
		hreq, _ := newRequest("GET", env.ts.url+"/v1/phone/signins", h)
		return env.ts.send(hreq)
	}
	if r := send(func(map[string]string) {}); r.status != 200 {
		t.Fatalf("signed request: %d %s", r.status, r.body)
	}
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)-4] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	send(func(h map[string]string) { h["Keybind-Signature"] = flip(h["Keybind-Signature"]) }).expectProblem(t, 401, "request.bad_signature")
	send(func(h map[string]string) { h["Keybind-Credential"] = other.cred.ID }).expectProblem(t, 401, "request.bad_signature")
	send(func(h map[string]string) { h["Keybind-Credential"] = "no-such-credential" }).expectProblem(t, 401, "request.unknown_credential")
	send(func(h map[string]string) { delete(h, "Keybind-Nonce") }).expectProblem(t, 401, CodeUnauthenticated)
	send(func(h map[string]string) { h["Keybind-Timestamp"] = "yesterday" }).expectProblem(t, 400, CodeHeader)
	send(func(h map[string]string) { h["Keybind-Nonce"] = "!!" }).expectProblem(t, 400, CodeHeader)
	send(func(h map[string]string) { h["Keybind-Nonce"] = "AAAA" }).expectProblem(t, 400, "input.invalid")
	// The timestamp is signed: changing it breaks the signature.
	send(func(h map[string]string) { h["Keybind-Timestamp"] = fmt.Sprint(env.clock.Now().Unix() - 1) }).expectProblem(t, 401, "request.bad_signature")

	// Timestamps out of the window, signed.
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		stale := &client.Phone{BaseURL: env.ts.url, Credential: ph.cred.ID, Prover: ph.Prover, Now: func() time.Time { return env.clock.Now().Add(skew) }}
		_, err := stale.Pending(bg)
		wantProblem(t, err, 401, "request.timestamp")
	}

	// A replayed request, before and after a restart.
	req, _ := ph.NewRequest(bg, "GET", "/v1/phone/signins", "", nil)
	replay := map[string]string{}
	for k := range req.Header {
		replay[k] = req.Header.Get(k)
	}
	again := func() response {
		hreq, _ := newRequest("GET", env.ts.url+"/v1/phone/signins", replay)
		return env.ts.send(hreq)
	}
	if r := again(); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	again().expectProblem(t, 401, "request.replay")
	env.restart()
	again().expectProblem(t, 401, "request.replay")

	// The signed target includes the query, the body is hashed: a request
	// signed for one target does not serve another.
	hreq, _ := newRequest("GET", env.ts.url+"/v1/phone/signins?x=1", replay)
	env.ts.send(hreq).expectProblem(t, 401, "request.bad_signature")

	// An answer signed by the phone's key but sent in another phone's
	// request is refused; so is a proof over another message.
	start, _ := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ := ph.Pending(bg)
	sig, _ := engine.SignAnswer(ph.key, pend[0].AnswerMessage(engine.DecisionApprove, start.Number))
	_, err := other.SendAnswer(bg, pend[0].Attempt, client.Answer{Decision: engine.DecisionApprove, Number: start.Number, Signature: sig})
	wantProblem(t, err, 404, "signin.not_found")
	bad, _ := engine.SignAnswer(ph.key, pend[0].AnswerMessage(engine.DecisionApprove, start.Number+1))
	_, err = ph.SendAnswer(bg, pend[0].Attempt, client.Answer{Decision: engine.DecisionApprove, Number: start.Number, Signature: bad})
	wantProblem(t, err, 403, "signin.bad_signature")
	if out, err := ph.SendAnswer(bg, pend[0].Attempt, client.Answer{Decision: engine.DecisionApprove, Number: start.Number, Signature: sig}); err != nil || out.State != "approved" {
		t.Fatalf("answer: %+v %v", out, err)
	}
	// A CBOR answer.
	start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ = ph.Pending(bg)
	sig, _ = engine.SignAnswer(ph.key, pend[0].AnswerMessage(engine.DecisionDeny, 0))
	body := forge.WebAuthnCBOR(map[string]any{"decision": "deny", "signature": sig})
	req, _ = ph.NewRequest(bg, "POST", "/v1/phone/signins/"+pend[0].Attempt+"/answer", "application/cbor", body)
	if r := env.ts.send(req); r.status != 200 || !bytes.Contains(r.body, []byte(`"state":"denied"`)) {
		t.Fatalf("CBOR answer: %d %s", r.status, r.body)
	}
	_ = start
}

// TestLongPoll checks the wait parameter: bounded by the server's cap, the
// pending outcome when nothing happens, woken by a cancel and ended by a
// shutdown.
func TestLongPoll(t *testing.T) {
	env := newEngineEnv(t, Config{ShutdownTimeout: 10 * time.Second}, EngineConfig{MaxWait: time.Second})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	env.mustEnroll(te, "u1")
	start, _ := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	t0 := time.Now()
	out, err := te.auth.SignInOutcome(bg, start.Attempt, time.Hour) // capped at 1s
	if err != nil || out.State != "pending" || out.PollIntervalSeconds != 2 {
		t.Fatalf("capped poll: %+v %v", out, err)
	}
	if d := time.Since(t0); d < 900*time.Millisecond || d > 8*time.Second {
		t.Errorf("a poll capped at 1s took %v", d)
	}
	// Expiry ends the wait: the engine's clock passes the attempt's expiry.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		o, err := te.auth.SignInOutcome(bg, start.Attempt, 30*time.Second)
		if err != nil || o.State != "expired" {
			t.Errorf("poll through the expiry: %+v %v", o, err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	env.clock.Advance(3 * time.Minute)
	wg.Wait()

	// A shutdown ends a long poll early (answered with the pending
	// outcome), and the store closes after the drain.
	env2 := newEngineEnv(t, Config{ShutdownTimeout: 10 * time.Second}, EngineConfig{MaxWait: 30 * time.Second})
	te2 := env2.tenant("contoso", testPolicy())
	env2.user(te2, "u1", "alice@contoso.com")
	env2.mustEnroll(te2, "u1")
	start, _ = te2.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	done := make(chan error, 1)
	go func() {
		o, err := te2.auth.SignInOutcome(bg, start.Attempt, 30*time.Second)
		if err == nil && o.State != "pending" {
			err = fmt.Errorf("state %s", o.State)
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	t0 = time.Now()
	if err := env2.ts.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 8*time.Second {
		t.Errorf("shutdown took %v with a long poll in flight", d)
	}
	if err := <-done; err != nil {
		t.Errorf("long poll at shutdown: %v", err)
	}
	if _, err := env2.st.Has([]byte{0x10, 0, 1, 'x'}); err == nil {
		t.Error("the store is still open after the shutdown")
	}
}

// newRequest makes a request with headers.
func newRequest(method, url string, h map[string]string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	return req, nil
}
