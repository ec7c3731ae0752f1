package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
)

// TestAdminRoutes checks every administration route's answer and its
// refusals.
func TestAdminRoutes(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	te := env.tenant("contoso", testPolicy())
	base := "/v1/tenants/contoso"

	// Tenants: the operator creates and lists; an admin sees its own.
	env.call(operatorKey, "POST", "/v1/tenants", map[string]any{"id": "contoso"}).expectProblem(t, 409, "tenant.exists")
	env.call(operatorKey, "POST", "/v1/tenants", map[string]any{"id": "bad", "policy": map[string]any{"number_matching": "guess"}}).expectProblem(t, 400, "policy.invalid")
	env.call(operatorKey, "POST", "/v1/tenants", map[string]any{"id": "bad id!"}).expectProblem(t, 400, "input.invalid")
	env.call(operatorKey, "POST", "/v1/tenants", `{"id":"x","colour":"blue"}`).expectProblem(t, 400, CodeJSON)
	env.call(te.adminKey, "POST", "/v1/tenants", map[string]any{"id": "mine"}).expectProblem(t, 403, CodeForbidden)
	env.call("", "POST", "/v1/tenants", map[string]any{"id": "mine"}).expectProblem(t, 401, CodeUnauthenticated)
	env.call(te.authKey, "GET", base, nil).expectProblem(t, 403, CodeForbidden)
	if r := env.call(operatorKey, "POST", "/v1/tenants", map[string]any{"id": "fabrikam", "name": "Fabrikam"}); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if l := decode[map[string][]engine.Tenant](t, env.call(operatorKey, "GET", "/v1/tenants", nil)); len(l["tenants"]) != 2 {
		t.Errorf("operator's list: %+v", l)
	}
	if l := decode[map[string][]engine.Tenant](t, env.call(te.adminKey, "GET", "/v1/tenants", nil)); len(l["tenants"]) != 1 || l["tenants"][0].ID != "contoso" {
		t.Errorf("admin's list: %+v", l)
	}
	if tn := decode[engine.Tenant](t, env.call(te.adminKey, "GET", base, nil)); tn.ID != "contoso" || !tn.Policy.Enabled {
		t.Errorf("get: %+v", tn)
	}
	if tn := decode[engine.Tenant](t, env.call(te.adminKey, "PATCH", base, map[string]any{"name": "Contoso Ltd"})); tn.Name != "Contoso Ltd" || !tn.Policy.Enabled {
		t.Errorf("patch name: %+v", tn)
	}
	env.call(te.adminKey, "PATCH", base, map[string]any{"id": "other"}).expectProblem(t, 400, "input.invalid")
	env.call(te.adminKey, "GET", base+"?x=1", nil).expectProblem(t, 400, CodeQuery)
	env.call(te.adminKey, "GET", base, "{}").expectProblem(t, 400, CodeJSON)

	// Policy.
	pol := decode[TenantPolicy](t, env.call(te.adminKey, "GET", base+"/policy", nil))
	if !pol.Policy.Enabled || pol.Effective.NumberMatching != "type" || pol.Effective.AttemptLifetimeSeconds != 120 || pol.Policy.AttemptLifetimeSeconds != 0 {
		t.Errorf("policy: %+v", pol)
	}
	env.call(te.adminKey, "PUT", base+"/policy", map[string]any{"attempt_lifetime_seconds": 5}).expectProblem(t, 400, "policy.invalid")
	env.call(te.adminKey, "PUT", base+"/policy", map[string]any{"enabled": "yes"}).expectProblem(t, 400, CodeJSON)
	p := testPolicy()
	p.NumberMatching = "choose"
	p.Target = engine.Target{Groups: []string{"staff"}}
	if pol := decode[TenantPolicy](t, env.call(te.adminKey, "PUT", base+"/policy", p)); pol.Policy.NumberMatching != "choose" || pol.Effective.MaxInstalls != 5 {
		t.Errorf("set policy: %+v", pol)
	}

	// Users and groups.
	r := env.call(te.adminKey, "POST", base+"/users", map[string]any{"upn": "alice@contoso.com", "groups": []string{"staff"}, "mfa_push": true})
	alice := decode[engine.User](t, r)
	if r.status != 201 || !strings.HasPrefix(alice.ID, "u_") || alice.Tenant != "contoso" {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	env.call(te.adminKey, "POST", base+"/users", map[string]any{"id": "bob", "upn": "bob@contoso.com", "groups": []string{"staff", "ops"}, "mfa_push": true})
	env.call(te.adminKey, "POST", base+"/users", map[string]any{"id": "bob", "upn": "robert@contoso.com"}).expectProblem(t, 409, "user.exists")
	env.call(te.adminKey, "POST", base+"/users", map[string]any{"id": "bob2", "upn": "BOB@contoso.com"}).expectProblem(t, 409, "user.upn_taken")
	env.call(te.adminKey, "POST", base+"/users", map[string]any{"id": "x", "upn": "no-domain"}).expectProblem(t, 400, "input.invalid")
	if l := decode[map[string][]engine.User](t, env.call(te.adminKey, "GET", base+"/users", nil)); len(l["users"]) != 2 {
		t.Errorf("users: %+v", l)
	}
	if l := decode[map[string][]engine.User](t, env.call(te.adminKey, "GET", base+"/users?upn=Bob@Contoso.com", nil)); len(l["users"]) != 1 || l["users"][0].ID != "bob" {
		t.Errorf("by upn: %+v", l)
	}
	if l := decode[map[string][]engine.User](t, env.call(te.adminKey, "GET", base+"/users?upn=nobody@contoso.com", nil)); len(l["users"]) != 0 {
		t.Errorf("by unknown upn: %+v", l)
	}
	if l := decode[map[string][]engine.User](t, env.call(te.adminKey, "GET", base+"/users?group=ops", nil)); len(l["users"]) != 1 {
		t.Errorf("by group: %+v", l)
	}
	if g := decode[map[string][]Group](t, env.call(te.adminKey, "GET", base+"/groups", nil)); len(g["groups"]) != 2 || g["groups"][0].Name != "ops" || len(g["groups"][1].Members) != 2 {
		t.Errorf("groups: %+v", g)
	}
	if u := decode[engine.User](t, env.call(te.adminKey, "PATCH", base+"/users/bob", map[string]any{"display_name": "Bob", "groups": []string{"staff"}})); u.DisplayName != "Bob" || len(u.Groups) != 1 || !u.MFAPush || u.UPN != "bob@contoso.com" {
		t.Errorf("patch user: %+v", u)
	}
	env.call(te.adminKey, "PATCH", base+"/users/bob", map[string]any{"upn": "alice@contoso.com"}).expectProblem(t, 409, "user.upn_taken")
	env.call(te.adminKey, "PATCH", base+"/users/nobody", map[string]any{"display_name": "x"}).expectProblem(t, 404, "user.not_found")
	env.call(te.adminKey, "GET", base+"/users/nobody", nil).expectProblem(t, 404, "user.not_found")

	// Devices and credentials of an enrolled user.
	ph := env.mustEnroll(te, "bob")
	dev := ph.cred.Device
	if l := decode[map[string][]engine.Device](t, env.call(te.adminKey, "GET", base+"/devices", nil)); len(l["devices"]) != 1 || l["devices"][0].ID != dev || l["devices"][0].Platform != "android" {
		t.Errorf("devices: %+v", l)
	}
	if d := decode[engine.Device](t, env.call(te.adminKey, "GET", base+"/devices/"+dev, nil)); len(d.Creds) != 1 || d.Users[0] != "bob" {
		t.Errorf("device: %+v", d)
	}
	if d := decode[engine.Device](t, env.call(te.adminKey, "POST", base+"/devices/"+dev+"/disable", nil)); !d.Disabled {
		t.Errorf("disable device: %+v", d)
	}
	if s, _ := te.auth.StartSignIn(bg, client.SignInRequest{Username: "bob@contoso.com"}); s.Method != "password" {
		t.Errorf("sign-in on a disabled device: %+v", s)
	}
	_, err := ph.Pending(bg)
	wantProblem(t, err, 403, "device.disabled")
	if d := decode[engine.Device](t, env.call(te.adminKey, "POST", base+"/devices/"+dev+"/enable", nil)); d.Disabled {
		t.Errorf("enable device: %+v", d)
	}
	env.call(te.adminKey, "POST", base+"/devices/nodevice/disable", nil).expectProblem(t, 404, "device.not_found")
	if l, err := te.admin.ListCredentials(bg, "contoso", "bob"); err != nil || len(l) != 1 || l[0].ID != ph.cred.ID {
		t.Errorf("credentials of bob: %+v %v", l, err)
	}
	if l, _ := te.admin.ListCredentials(bg, "contoso", ""); len(l) != 1 {
		t.Errorf("credentials: %+v", l)
	}
	env.call(te.adminKey, "GET", base+"/credentials?user=nobody", nil).expectProblem(t, 404, "user.not_found")
	if c := decode[client.Credential](t, env.call(te.adminKey, "GET", base+"/credentials/"+ph.cred.ID, nil)); c.ID != ph.cred.ID || len(c.Facts) == 0 {
		t.Errorf("credential: %+v", c)
	}
	if rv := decode[Reverified](t, env.call(te.adminKey, "POST", base+"/credentials/"+ph.cred.ID+"/reverify", nil)); !rv.Valid || rv.Format != "android-key" {
		t.Errorf("reverify: %+v", rv)
	}
	// Re-verified under a policy that no longer takes the app: refused,
	// with the verifier's code.
	p2 := p
	p2.Attestation.Android = &engine.AndroidPolicy{Packages: []string{"com.other.app"}, ExtraRoots: []string{rootAndroid}}
	env.call(te.adminKey, "PUT", base+"/policy", p2)
	if rv := decode[Reverified](t, env.call(te.adminKey, "POST", base+"/credentials/"+ph.cred.ID+"/reverify", nil)); rv.Valid || rv.Code == "" {
		t.Errorf("reverify under another policy: %+v", rv)
	}
	env.call(te.adminKey, "PUT", base+"/policy", p)
	if c := decode[client.Credential](t, env.call(te.adminKey, "POST", base+"/credentials/"+ph.cred.ID+"/disable", nil)); !c.Disabled {
		t.Errorf("disable: %+v", c)
	}
	if c := decode[client.Credential](t, env.call(te.adminKey, "POST", base+"/credentials/"+ph.cred.ID+"/enable", nil)); c.Disabled {
		t.Errorf("enable: %+v", c)
	}
	if r := env.call(te.adminKey, "DELETE", base+"/credentials/"+ph.cred.ID, nil); r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete credential: %d %s", r.status, r.body)
	}
	env.call(te.adminKey, "DELETE", base+"/credentials/"+ph.cred.ID, nil).expectProblem(t, 404, "credential.not_found")
	_, err = ph.Pending(bg)
	wantProblem(t, err, 401, "request.unknown_credential")
	// A device deleted with its credentials; a user deleted with theirs.
	ph = env.mustEnroll(te, "bob")
	if r := env.call(te.adminKey, "DELETE", base+"/devices/"+ph.cred.Device, nil); r.status != 204 {
		t.Errorf("delete device: %d %s", r.status, r.body)
	}
	env.call(te.adminKey, "GET", base+"/credentials/"+ph.cred.ID, nil).expectProblem(t, 404, "credential.not_found")
	ph = env.mustEnroll(te, "bob")
	if r := env.call(te.adminKey, "DELETE", base+"/users/bob", nil); r.status != 204 {
		t.Errorf("delete user: %d %s", r.status, r.body)
	}
	env.call(te.adminKey, "GET", base+"/users/bob", nil).expectProblem(t, 404, "user.not_found")
	env.call(te.adminKey, "GET", base+"/credentials/"+ph.cred.ID, nil).expectProblem(t, 404, "credential.not_found")
	env.call(te.adminKey, "DELETE", base+"/users/bob", nil).expectProblem(t, 404, "user.not_found")

	// API keys: made, listed without the key, revoked at once.
	r = env.call(te.adminKey, "POST", base+"/keys", map[string]string{"role": "verify", "name": "bench"})
	nk := decode[NewAPIKey](t, r)
	if r.status != 201 || !strings.HasPrefix(nk.Key, "kb_") || nk.Role != "verify" || nk.Tenant != "contoso" || !strings.HasPrefix(nk.CreatedBy, "admin:") {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	env.call(te.adminKey, "POST", base+"/keys", map[string]string{"role": "operator"}).expectProblem(t, 400, "input.invalid")
	r = env.call(te.adminKey, "GET", base+"/keys", nil)
	if keys := decode[map[string][]engine.APIKey](t, r); len(keys["keys"]) != 3 || bytes.Contains(r.body, []byte(nk.Key)) {
		t.Errorf("keys: %s", r.body)
	}
	if codes := env.ts.verifyResults(nk.Key, newTestKeys(t).p256Item([]byte("m"))); codes[0] != "" {
		t.Errorf("verify with the new key: %v", codes)
	}
	env.call(nk.Key, "GET", base, nil).expectProblem(t, 403, CodeForbidden)
	if r := env.call(te.adminKey, "DELETE", base+"/keys/"+nk.ID, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	env.ts.verify(nk.Key, map[string]any{"items": []any{newTestKeys(t).p256Item([]byte("m"))}}).expectProblem(t, 401, CodeUnauthenticated)
	env.call(te.adminKey, "DELETE", base+"/keys/"+nk.ID, nil).expectProblem(t, 404, "apikey.not_found")

	// The audit log: by user, by time, a page at a time.
	all := decode[engine.AuditPage](t, env.call(te.adminKey, "GET", base+"/audit", nil))
	if len(all.Records) < 10 || all.Next != "" {
		t.Fatalf("audit: %d records, next %q", len(all.Records), all.Next)
	}
	var paged []engine.AuditRecord
	cursor := ""
	for i := 0; ; i++ {
		page, err := te.admin.Audit(bg, "contoso", client.AuditQuery{Limit: 3, Cursor: cursor})
		if err != nil || len(page.Records) > 3 || i > 100 {
			t.Fatalf("page %d: %+v %v", i, page, err)
		}
		paged = append(paged, page.Records...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(paged) != len(all.Records) || paged[len(paged)-1].Seq != all.Records[len(all.Records)-1].Seq {
		t.Errorf("paging gave %d records, one page %d", len(paged), len(all.Records))
	}
	byUser, err := te.admin.Audit(bg, "contoso", client.AuditQuery{User: "bob"})
	if err != nil || len(byUser.Records) == 0 {
		t.Fatalf("audit of bob: %+v %v", byUser, err)
	}
	for _, rec := range byUser.Records {
		if rec.User != "bob" || rec.Tenant != "contoso" {
			t.Errorf("record of another user: %+v", rec)
		}
	}
	// Administrative changes name the key that made them.
	keys := decode[struct {
		Keys []engine.APIKey `json:"keys"`
	}](t, env.call(te.adminKey, "GET", base+"/keys", nil))
	adminActors := map[string]bool{}
	for _, k := range keys.Keys {
		if k.Role == "admin" {
			adminActors["admin:"+k.ID] = true
		}
	}
	sawUserChange := false
	for _, rec := range byUser.Records {
		if rec.Event == "user.updated" || rec.Event == "user.created" {
			sawUserChange = true
			if !adminActors[rec.Actor] {
				t.Errorf("%s recorded as made by %q, want one of the admin keys %v", rec.Event, rec.Actor, adminActors)
			}
		}
	}
	if !sawUserChange {
		t.Error("no audit record of bob's creation or change")
	}
	mid := all.Records[len(all.Records)/2].Time
	later, _ := te.admin.Audit(bg, "contoso", client.AuditQuery{Since: mid})
	earlier, _ := te.admin.Audit(bg, "contoso", client.AuditQuery{Until: mid})
	if len(later.Records)+len(earlier.Records) != len(all.Records) || len(later.Records) == 0 || len(earlier.Records) == 0 {
		t.Errorf("since/until split %d records into %d and %d", len(all.Records), len(later.Records), len(earlier.Records))
	}
	if future, _ := te.admin.Audit(bg, "contoso", client.AuditQuery{Since: time.Now().Add(time.Hour)}); len(future.Records) != 0 {
		t.Errorf("records in the future: %+v", future)
	}
	env.call(te.adminKey, "GET", base+"/audit?since=yesterday", nil).expectProblem(t, 400, CodeQuery)
	env.call(te.adminKey, "GET", base+"/audit?limit=0", nil).expectProblem(t, 400, CodeQuery)
	env.call(te.adminKey, "GET", base+"/audit?cursor=zz", nil).expectProblem(t, 400, "input.invalid")
	env.call(te.adminKey, "GET", base+"/audit?usr=bob", nil).expectProblem(t, 400, CodeQuery)

	// Export: the operator's, a snapshot that imports.
	env.call(te.adminKey, "GET", "/v1/export", nil).expectProblem(t, 403, CodeForbidden)
	var buf bytes.Buffer
	n, err := env.op.Export(bg, &buf)
	if err != nil || n == 0 {
		t.Fatalf("export: %d %v", n, err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Import(&buf); err != nil {
		t.Fatalf("import of the export: %v", err)
	}
	var tn engine.Tenant
	if err := st.Get(store.TenantKey("fabrikam"), &tn); err != nil || tn.Name != "Fabrikam" {
		t.Errorf("imported tenant: %+v %v", tn, err)
	}
}

// TestRateLimit checks the per-key token bucket: a noisy key gets 429
// with Retry-After, another key does not.
func TestRateLimit(t *testing.T) {
	env := newEngineEnv(t, Config{RateLimit: RateLimit{Rate: 0.5, Burst: 3}}, EngineConfig{})
	te := env.tenant("contoso", testPolicy())
	other, err := te.admin.CreateKey(bg, "contoso", engine.RoleAdmin, "other")
	if err != nil {
		t.Fatal(err)
	}
	// te.adminKey has spent one token (creating the auth key) and this
	// one; the burst is 3.
	statuses := []int{}
	var last response
	for range 4 {
		last = env.call(te.adminKey, "GET", "/v1/tenants/contoso", nil)
		statuses = append(statuses, last.status)
	}
	if statuses[0] != 200 || statuses[3] != 429 {
		t.Fatalf("statuses %v", statuses)
	}
	last.expectProblem(t, 429, CodeRateLimited)
	if ra := last.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q", ra)
	}
	if r := env.call(other.Key, "GET", "/v1/tenants/contoso", nil); r.status != 200 {
		t.Errorf("another key: %d %s", r.status, r.body)
	}
	// The verify endpoint has its own limit (none here).
	for range 5 {
		if codes := env.ts.verifyResults(te.adminKey, newTestKeys(t).p256Item([]byte("m"))); codes[0] != "" {
			t.Fatalf("verify: %v", codes)
		}
	}
	if m := env.ts.get("/metrics"); !bytes.Contains(m.body, []byte("keybind_http_rate_limited_total ")) {
		t.Error("no rate-limit metric")
	}
}

// TestEngineStatuses checks the statuses the engine's kinds map to that
// the flows above do not reach: 429 with Retry-After for back-off, 410
// for an expired attempt, 503 for a closed store and while shutting down,
// and the store's metrics and readiness.
func TestEngineStatuses(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	p := testPolicy()
	p.Backoff = engine.Backoff{Free: 2, BaseSeconds: 90, MaxSeconds: 600}
	te := env.tenant("contoso", p)
	env.user(te, "u1", "alice@contoso.com")
	ph := env.mustEnroll(te, "u1")
	start, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	pend, _ := ph.Pending(bg)
	te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"}) // replaces the first, unanswered
	_, err = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	if pr := wantProblem(t, err, 429, "signin.backoff"); pr.RetryAfter < 80*time.Second || pr.RetryAfter > 90*time.Second {
		t.Errorf("Retry-After %v", pr.RetryAfter)
	}
	// The replaced attempt is no longer pending.
	_, err = ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number)
	wantProblem(t, err, 409, "signin.not_pending")

	// An attempt answered after its expiry: 410.
	env.clock.Advance(10 * time.Minute)
	start, _ = te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	pend, _ = ph.Pending(bg)
	env.clock.Advance(3 * time.Minute)
	_, err = ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number)
	wantProblem(t, err, 410, "signin.expired")

	m := env.ts.get("/metrics")
	for _, want := range []string{`keybind_store_operation_seconds_count{op="update"}`, `keybind_store_operation_seconds_count{op="commit"}`, `keybind_http_requests_total{route="signin.start",code="200"}`} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if r := env.ts.get("/readyz"); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	// While shutting down, the engine's routes answer 503.
	env.ts.s.draining.Store(true)
	env.call(te.adminKey, "GET", "/v1/tenants/contoso", nil).expectProblem(t, 503, CodeShuttingDown)
	env.ts.s.draining.Store(false)
	// With the store closed: 503 and not ready.
	env.st.Close()
	r := env.call(te.adminKey, "GET", "/v1/tenants/contoso", nil)
	r.expectProblem(t, 503, "store.unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	env.ts.get("/readyz").expectProblem(t, 503, CodeUnavailable)
	// Keys already authenticated stay cached; a new one cannot be looked up.
	env.call("kb_unknownkeyunknownkeyunknownkeyunknownkey12", "GET", "/v1/tenants/contoso", nil).expectProblem(t, 503, CodeUnavailable)
}

// TestPhoneRateLimit checks the phone routes' token buckets: one per
// credential for signed requests and one per enrollment for attestations,
// counted by the id the request names before anything is verified, so
// that a noisy phone (or a flood naming its id) gets 429 and the others
// do not.
func TestPhoneRateLimit(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{PhoneRateLimit: RateLimit{Rate: 0.5, Burst: 3}})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	env.user(te, "u2", "bob@contoso.com")
	noisy := env.mustEnroll(te, "u1")
	quiet := env.mustEnroll(te, "u2")

	for i := range 3 {
		if _, err := noisy.Pending(bg); err != nil {
			t.Fatalf("request %d of the burst: %v", i+1, err)
		}
	}
	_, err := noisy.Pending(bg)
	if p := wantProblem(t, err, 429, CodeRateLimited); p.RetryAfter != 2*time.Second {
		t.Errorf("Retry-After %v, want 2s", p.RetryAfter)
	}
	if _, err := quiet.Pending(bg); err != nil {
		t.Errorf("another credential: %v", err)
	}
	// A request naming the noisy credential is refused before its
	// signature is looked at, whoever signed it.
	forged := env.phone(noisy.cred, quiet.Prover)
	_, err = forged.Pending(bg)
	wantProblem(t, err, 429, CodeRateLimited)

	// Attestations: a flood of bad evidence for one enrollment is cut
	// off; another enrollment is not affected and enrolls.
	enr, err := te.auth.StartEnrollment(bg, "u1", false)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := env.anon.Attest(bg, enr.ID, engine.FormatAndroidKey, engine.Evidence{"chain": []byte("garbage")}, "")
		var p *client.Problem
		if !errors.As(err, &p) || p.Status == 429 {
			t.Fatalf("bad evidence within the burst: %v", err)
		}
	}
	_, err = env.anon.Attest(bg, enr.ID, engine.FormatAndroidKey, engine.Evidence{"chain": []byte("garbage")}, "")
	wantProblem(t, err, 429, CodeRateLimited)
	env.user(te, "u3", "carol@contoso.com")
	if _, err := env.enrollAndroid(te, "u3", ""); err != nil {
		t.Errorf("another enrollment: %v", err)
	}
}

// TestBoundedLimiter checks that a limiter of ids nobody vouched for
// forgets the buckets that filled up again, and lets new ids through
// untracked rather than growing past its bound.
func TestBoundedLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newBoundedLimiter(RateLimit{Rate: 1, Burst: 2}, 3)
	l.now = func() time.Time { return now }
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := l.allow(k); !ok {
			t.Fatalf("%s: refused", k)
		}
	}
	// Full, with every bucket in use: a new id goes through untracked.
	for range 5 {
		if _, ok := l.allow("d"); !ok {
			t.Fatal("an untracked id was refused")
		}
	}
	if n := l.size.Load(); n != 3 {
		t.Fatalf("%d buckets, want 3", n)
	}
	l.allow("a")
	if _, ok := l.allow("a"); ok {
		t.Fatal("a tracked id over its burst was allowed")
	}
	// Two seconds later every bucket has filled up again: the next new id
	// sweeps them and is counted.
	now = now.Add(2 * time.Second)
	l.allow("e")
	l.allow("e")
	if _, ok := l.allow("e"); ok {
		t.Fatal("e over its burst was allowed: it was not tracked after the sweep")
	}
	if n := l.size.Load(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}

// TestBoundedLimiterSweepsRarely checks that a full limiter flooded with
// new ids passes over its buckets at most once a second.
func TestBoundedLimiterSweepsRarely(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newBoundedLimiter(RateLimit{Rate: 1, Burst: 2}, 2)
	l.now = func() time.Time { return now }
	l.allow("a")
	l.allow("b")
	l.allow("c") // full: a sweep, which finds every bucket in use
	swept := l.lastSweep
	now = now.Add(3 * time.Second) // every bucket full again
	l.lastSweep = now.Add(-sweepEvery / 2)
	l.allow("d")
	if n := l.size.Load(); n != 2 {
		t.Fatalf("a sweep ran half a second after the last: %d buckets", n)
	}
	now = now.Add(sweepEvery)
	l.allow("e")
	if n := l.size.Load(); n != 1 || !l.lastSweep.After(swept) {
		t.Fatalf("no sweep a second later: %d buckets", n)
	}
}
