package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
)

// TestCrossTenant checks, route by route, that the keys (and phones) of
// tenant A never read or change anything of tenant B, and that an id of B
// is answered exactly like an absent one (no oracle). The cases are keyed
// by the registered routes: a route added without a case fails the test.
func TestCrossTenant(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	const A, B = "tenant-alpha", "tenant-bravo"
	ta, tb := env.tenant(A, testPolicy()), env.tenant(B, testPolicy())
	// The same user id in both tenants, and one only B has.
	env.user(ta, "u1", "alice@alpha.example")
	env.user(tb, "u1", "alice@bravo.example")
	env.user(tb, "bonly", "bob@bravo.example")
	phA := env.mustEnroll(ta, "u1")
	phB := env.mustEnroll(tb, "u1")
	startB, err := tb.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@bravo.example"})
	if err != nil || startB.Method != "phone" {
		t.Fatalf("B's sign-in: %+v %v", startB, err)
	}
	enrB, err := tb.auth.StartEnrollment(bg, "bonly", false)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := tb.admin.CreateKey(bg, B, engine.RoleVerify, "B's verify key")
	if err != nil {
		t.Fatal(err)
	}
	credB, devB, attemptB := phB.cred.ID, phB.cred.Device, startB.Attempt
	const absent = "no-such-id-0000000000"

	// snapshot is everything of B, as B's operator sees it.
	snapshot := func() string {
		t.Helper()
		var b strings.Builder
		for _, p := range []string{"", "/policy", "/users", "/groups", "/devices", "/credentials", "/keys", "/audit"} {
			r := env.call(operatorKey, "GET", "/v1/tenants/"+B+p, nil)
			if r.status != 200 {
				t.Fatalf("B%s: %d %s", p, r.status, r.body)
			}
			b.Write(r.body)
		}
		o, err := tb.auth.SignInOutcome(bg, attemptB, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v", o.Outcome)
		var enr engine.Enrollment
		if err := env.st.Get(store.EnrollmentKey(enrB.ID), &enr); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v", enr.State, enr.TPMAK)
		return b.String()
	}
	before := snapshot()

	// pair sends the same request for B's id and for an absent one and
	// checks both get the same problem.
	pair := func(t *testing.T, key, method, pathB, pathAbsent string, body any, status int, code string) {
		t.Helper()
		rb := env.call(key, method, pathB, body)
		rb.expectProblem(t, status, code)
		sameProblem(t, method+" "+pathB, rb, env.call(key, method, pathAbsent, body))
	}
	// otherTenant: a route of B's path, with A's admin key and with the
	// operator's for comparison of the bodies.
	otherTenant := func(method, rest string, body any) func(t *testing.T) {
		return func(t *testing.T) {
			pair(t, ta.adminKey, method, "/v1/tenants/"+B+rest, "/v1/tenants/"+absent+rest, body, 404, "tenant.not_found")
			if strings.Contains(rest, "{") {
				t.Fatalf("unfilled path %s", rest)
			}
		}
	}
	// ownPathForeignID: A's own path with an id of B, answered as an absent
	// id of its kind.
	ownPathForeignID := func(method, kind, idB, suffix string, body any, code string) func(t *testing.T) {
		return func(t *testing.T) {
			otherTenant(method, "/"+kind+"/"+idB+suffix, body)(t)
			pair(t, ta.adminKey, method, "/v1/tenants/"+A+"/"+kind+"/"+idB+suffix, "/v1/tenants/"+A+"/"+kind+"/"+absent+suffix, body, 404, code)
		}
	}
	noLeak := func(t *testing.T, r response) {
		t.Helper()
		for _, s := range []string{B, credB, devB, attemptB, "bravo.example"} {
			if bytes.Contains(r.body, []byte(s)) {
				t.Errorf("the answer names %q of tenant B: %.300s", s, r.body)
			}
		}
	}
	verifyItem := func(id string) map[string]any {
		return map[string]any{"algorithm": "ecdsa-p256", "credential_id": id, "message": b64([]byte("m")), "signature": b64([]byte{0x30, 6, 2, 1, 1, 2, 1, 1})}
	}
	cases := map[string]func(t *testing.T){
		// Operations: no tenant data at all.
		"GET /healthz":         func(t *testing.T) { noLeak(t, env.call(ta.adminKey, "GET", "/healthz", nil)) },
		"GET /readyz":          func(t *testing.T) { noLeak(t, env.call(ta.adminKey, "GET", "/readyz", nil)) },
		"GET /metrics":         func(t *testing.T) { noLeak(t, env.call(ta.adminKey, "GET", "/metrics", nil)) },
		"GET /v1/openapi.json": func(t *testing.T) { noLeak(t, env.call(ta.adminKey, "GET", "/v1/openapi.json", nil)) },
		"POST /v1/verify": func(t *testing.T) {
			codes := env.ts.verifyResults(ta.authKey, verifyItem(credB), verifyItem(absent))
			if codes[0] != string(CodeUnknownCredential) || codes[0] != codes[1] {
				t.Errorf("B's credential from A: %v", codes)
			}
			// B's verify key does not resolve A's credentials either.
			if codes := env.ts.verifyResults(keyB.Key, verifyItem(phA.cred.ID)); codes[0] != string(CodeUnknownCredential) {
				t.Errorf("A's credential from B: %v", codes)
			}
		},

		// The auth server: the tenant is the key's.
		"POST /v1/signins": func(t *testing.T) {
			s, err := ta.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@bravo.example"})
			if err != nil || s.Method != "password" || s.Reason != "user.not_found" {
				t.Errorf("A signs in B's user: %+v %v", s, err)
			}
		},
		"GET /v1/signins/{attempt}": func(t *testing.T) {
			pair(t, ta.authKey, "GET", "/v1/signins/"+attemptB, "/v1/signins/"+absent, nil, 404, "signin.not_found")
			pair(t, ta.authKey, "GET", "/v1/signins/"+attemptB+"?wait=1", "/v1/signins/"+absent+"?wait=1", nil, 404, "signin.not_found")
		},
		"POST /v1/signins/{attempt}/cancel": func(t *testing.T) {
			pair(t, ta.authKey, "POST", "/v1/signins/"+attemptB+"/cancel", "/v1/signins/"+absent+"/cancel", nil, 404, "signin.not_found")
		},
		"POST /v1/enrollments": func(t *testing.T) {
			pair(t, ta.authKey, "POST", "/v1/enrollments", "/v1/enrollments", map[string]string{"user": "bonly"}, 404, "user.not_found")
			pair(t, ta.authKey, "POST", "/v1/enrollments", "/v1/enrollments", map[string]string{"username": "bob@bravo.example"}, 404, "user.not_found")
			// The same user id is A's own user.
			if e, err := ta.auth.StartEnrollment(bg, "u1", false); err != nil || e.Tenant != A {
				t.Errorf("A's u1: %+v %v", e, err)
			}
		},

		// The phone: enrollment ids are capabilities; signed requests act
		// for their credential only.
		"POST /v1/enrollments/{enrollment}/attestation": func(t *testing.T) {
			// A's enrollment cannot join B's device.
			enr, _ := ta.auth.StartEnrollment(bg, "u1", false)
			att, _ := env.android.Attest(forgeAndroidKey(enr.Challenge))
			_, err := env.anon.Attest(bg, enr.ID, engine.FormatAndroidKey, engine.Evidence{"chain": engine.JoinDER(att.Chain)}, devB)
			wantProblem(t, err, 409, "enroll.device_other_tenant")
			r := env.call("", "POST", "/v1/enrollments/"+absent+"/attestation", map[string]any{"format": "android-key", "evidence": map[string][]byte{"chain": engine.JoinDER(att.Chain)}})
			r.expectProblem(t, 404, "enroll.not_found")
		},
		"POST /v1/enrollments/{enrollment}/tpm/activation": func(t *testing.T) {
			ak := map[string]any{"public": "AA", "create_data": "AA", "create_attestation": "AA", "create_signature": "AA"}
			env.call("", "POST", "/v1/enrollments/"+absent+"/tpm/activation", map[string]any{"ek_public": "AA", "ak": ak}).expectProblem(t, 404, "enroll.not_found")
		},
		"POST /v1/enrollments/{enrollment}/tpm/activation/answer": func(t *testing.T) {
			r := env.call("", "POST", "/v1/enrollments/"+absent+"/tpm/activation/answer", map[string]any{"secret": "AAAA"})
			if r.status != 404 {
				t.Errorf("answer of an unknown enrollment: %d %s", r.status, r.body)
			}
		},
		"GET /v1/phone/signins": func(t *testing.T) {
			req, _ := phA.NewRequest(bg, "GET", "/v1/phone/signins", "", nil)
			r := env.ts.send(req)
			if r.status != 200 || bytes.Contains(r.body, []byte(attemptB)) {
				t.Errorf("A's phone: %d %s", r.status, r.body)
			}
			noLeak(t, r)
		},
		"POST /v1/phone/signins/{attempt}/answer": func(t *testing.T) {
			// A's phone answers B's attempt, signing its fields as if it were
			// one of B's phones.
			fake := client.PendingSignIn{Attempt: attemptB, Tenant: B, User: "u1", Credential: phA.cred.ID, Nonce: make([]byte, 16)}
			_, errB := phA.Answer(bg, fake, engine.DecisionApprove, startB.Number)
			fake.Attempt = absent
			_, errAbsent := phA.Answer(bg, fake, engine.DecisionApprove, startB.Number)
			pb, pa := wantProblem(t, errB, 404, "signin.not_found"), wantProblem(t, errAbsent, 404, "signin.not_found")
			if pb.Detail != pa.Detail {
				t.Errorf("details differ: %q %q", pb.Detail, pa.Detail)
			}
		},

		// Administration: A's admin key on B's paths, and B's ids on A's
		// paths.
		"GET /v1/tenants": func(t *testing.T) {
			r := env.call(ta.adminKey, "GET", "/v1/tenants", nil)
			if l := decode[map[string][]engine.Tenant](t, r); len(l["tenants"]) != 1 || l["tenants"][0].ID != A {
				t.Errorf("A's list: %s", r.body)
			}
			noLeak(t, r)
		},
		"POST /v1/tenants": func(t *testing.T) {
			env.call(ta.adminKey, "POST", "/v1/tenants", map[string]any{"id": B}).expectProblem(t, 403, CodeForbidden)
		},
		"GET /v1/tenants/{tenant}":         otherTenant("GET", "", nil),
		"PATCH /v1/tenants/{tenant}":       otherTenant("PATCH", "", map[string]any{"name": "taken over"}),
		"GET /v1/tenants/{tenant}/policy":  otherTenant("GET", "/policy", nil),
		"PUT /v1/tenants/{tenant}/policy":  otherTenant("PUT", "/policy", map[string]any{"enabled": false}),
		"GET /v1/tenants/{tenant}/users":   otherTenant("GET", "/users", nil),
		"POST /v1/tenants/{tenant}/users":  otherTenant("POST", "/users", map[string]any{"id": "intruder", "upn": "x@bravo.example"}),
		"GET /v1/tenants/{tenant}/groups":  otherTenant("GET", "/groups", nil),
		"GET /v1/tenants/{tenant}/devices": otherTenant("GET", "/devices", nil),
		"GET /v1/tenants/{tenant}/keys":    otherTenant("GET", "/keys", nil),
		"POST /v1/tenants/{tenant}/keys":   otherTenant("POST", "/keys", map[string]any{"role": "admin"}),
		"GET /v1/tenants/{tenant}/audit":   otherTenant("GET", "/audit", nil),
		"GET /v1/tenants/{tenant}/users/{user}": func(t *testing.T) {
			ownPathForeignID("GET", "users", "bonly", "", nil, "user.not_found")(t)
			// The id both tenants have: A's own user.
			if u := decode[engine.User](t, env.call(ta.adminKey, "GET", "/v1/tenants/"+A+"/users/u1", nil)); u.UPN != "alice@alpha.example" {
				t.Errorf("A's u1: %+v", u)
			}
		},
		"PATCH /v1/tenants/{tenant}/users/{user}":            ownPathForeignID("PATCH", "users", "bonly", "", map[string]any{"mfa_push": false}, "user.not_found"),
		"DELETE /v1/tenants/{tenant}/users/{user}":           ownPathForeignID("DELETE", "users", "bonly", "", nil, "user.not_found"),
		"GET /v1/tenants/{tenant}/devices/{device}":          ownPathForeignID("GET", "devices", devB, "", nil, "device.not_found"),
		"POST /v1/tenants/{tenant}/devices/{device}/disable": ownPathForeignID("POST", "devices", devB, "/disable", nil, "device.not_found"),
		"POST /v1/tenants/{tenant}/devices/{device}/enable":  ownPathForeignID("POST", "devices", devB, "/enable", nil, "device.not_found"),
		"DELETE /v1/tenants/{tenant}/devices/{device}":       ownPathForeignID("DELETE", "devices", devB, "", nil, "device.not_found"),
		"GET /v1/tenants/{tenant}/credentials": func(t *testing.T) {
			otherTenant("GET", "/credentials", nil)(t)
			pair(t, ta.adminKey, "GET", "/v1/tenants/"+A+"/credentials?user=bonly", "/v1/tenants/"+A+"/credentials?user="+absent, nil, 404, "user.not_found")
			r := env.call(ta.adminKey, "GET", "/v1/tenants/"+A+"/credentials", nil)
			if l := decode[map[string][]client.Credential](t, r); len(l["credentials"]) != 1 || l["credentials"][0].ID != phA.cred.ID {
				t.Errorf("A's credentials: %s", r.body)
			}
		},
		"GET /v1/tenants/{tenant}/credentials/{credential}":           ownPathForeignID("GET", "credentials", credB, "", nil, "credential.not_found"),
		"POST /v1/tenants/{tenant}/credentials/{credential}/disable":  ownPathForeignID("POST", "credentials", credB, "/disable", nil, "credential.not_found"),
		"POST /v1/tenants/{tenant}/credentials/{credential}/enable":   ownPathForeignID("POST", "credentials", credB, "/enable", nil, "credential.not_found"),
		"POST /v1/tenants/{tenant}/credentials/{credential}/reverify": ownPathForeignID("POST", "credentials", credB, "/reverify", nil, "credential.not_found"),
		"DELETE /v1/tenants/{tenant}/credentials/{credential}":        ownPathForeignID("DELETE", "credentials", credB, "", nil, "credential.not_found"),
		"DELETE /v1/tenants/{tenant}/keys/{key}":                      ownPathForeignID("DELETE", "keys", keyB.ID, "", nil, "apikey.not_found"),
		"GET /v1/export": func(t *testing.T) {
			env.call(ta.adminKey, "GET", "/v1/export", nil).expectProblem(t, 403, CodeForbidden)
		},
	}
	for _, rt := range env.ts.s.Routes() {
		name := rt.Method + " " + rt.Path
		c, ok := cases[name]
		if !ok {
			t.Errorf("route %s has no cross-tenant case", name)
			continue
		}
		delete(cases, name)
		t.Run(strings.ReplaceAll(name, "/", "_"), c)
	}
	for name := range cases {
		t.Errorf("case %s names no registered route", name)
	}

	// Nothing of B changed, and B works.
	if after := snapshot(); after != before {
		t.Errorf("tenant B changed:\nbefore %s\nafter  %s", before, after)
	}
	pend, err := phB.Pending(bg)
	if err != nil || len(pend) != 1 || pend[0].Attempt != attemptB {
		t.Fatalf("B's phone: %+v %v", pend, err)
	}
	if out, err := phB.Answer(bg, pend[0], engine.DecisionApprove, startB.Number); err != nil || out.State != "approved" {
		t.Fatalf("B's answer: %+v %v", out, err)
	}
	if codes := env.ts.verifyResults(keyB.Key, verifyItem(credB)); codes[0] == string(CodeUnknownCredential) {
		t.Errorf("B's key does not resolve B's credential: %v", codes)
	}
	var doc json.RawMessage
	if err := tb.admin.Do(bg, "GET", "/v1/tenants/"+B+"/users/bonly", nil, &doc); err != nil {
		t.Errorf("B's user: %v", err)
	}
}
