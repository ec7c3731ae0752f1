package server

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestFuzzingClientEngine throws random and mutated requests at every route
// of the engine's API — with real ids, keys of each role and signed phone
// headers — and checks that the server answers or closes each one, never
// panics, and still runs a sign-in afterwards.
func TestFuzzingClientEngine(t *testing.T) {
	env := newEngineEnv(t, Config{BodyLimit: 8192, ReadTimeout: 300 * time.Millisecond, MaxConnsPerIP: 64}, EngineConfig{MaxWait: time.Second, PhoneBodyLimit: 32 << 10})
	te := env.tenant("contoso", testPolicy())
	env.user(te, "u1", "alice@contoso.com")
	ph := env.mustEnroll(te, "u1")
	start, _ := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@contoso.com"})
	enr, _ := te.auth.StartEnrollment(bg, "u1", false)
	att, _ := env.android.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
	chain := engine.JoinDER(att.Chain)

	ids := map[string]string{"{tenant}": "contoso", "{user}": "u1", "{device}": ph.cred.Device, "{credential}": ph.cred.ID,
		"{attempt}": start.Attempt, "{enrollment}": enr.ID, "{key}": "nokey"}
	var routes []Route
	for _, rt := range env.ts.s.Routes() {
		if strings.HasPrefix(rt.Path, "/v1/") && rt.Path != "/v1/verify" && rt.Path != "/v1/export" {
			routes = append(routes, rt)
		}
	}
	fill := func(path string) string {
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		return path
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	seeds := [][]byte{
		js(map[string]any{"username": "alice@contoso.com", "login_hint": "a@b.c", "context": map[string]string{"app": "Mail", "ip": "192.0.2.1"}}),
		js(map[string]any{"user": "u1"}),
		js(map[string]any{"format": "android-key", "evidence": map[string][]byte{"chain": chain}}),
		forge.WebAuthnCBOR(map[string]any{"format": "android-key", "evidence": map[string]any{"chain": chain[:200]}}),
		js(map[string]any{"decision": "approve", "number": 42, "signature": []byte{0x30, 6, 2, 1, 1, 2, 1, 1}}),
		forge.WebAuthnCBOR(map[string]any{"decision": "deny", "signature": []byte{1, 2, 3}}),
		js(map[string]any{"id": "t2", "name": "T", "policy": testPolicy()}),
		js(testPolicy()),
		js(map[string]any{"id": "u9", "upn": "z@contoso.com", "groups": []string{"g"}, "mfa_push": true}),
		js(map[string]any{"role": "admin", "name": "k"}),
		js(map[string]any{"ek_public": []byte{1}, "ak": map[string][]byte{"public": {1}, "create_data": {1}, "create_attestation": {1}, "create_signature": {1}}}),
		js(map[string]any{"secret": []byte{1, 2}}),
	}
	// Phone headers, signed for the route (so the signature holds when
	// the body is empty).
	signed := func(method, target string) []string {
		req, _ := http.NewRequest(method, env.ts.url+target, nil)
		if err := client.SignRequest(req, nil, ph.cred.ID, ph.Prover, env.clock.Now()); err != nil {
			t.Fatal(err)
		}
		var h []string
		for k := range req.Header {
			h = append(h, k+": "+req.Header.Get(k))
		}
		return h
	}
	var paths []string
	for _, rt := range routes {
		paths = append(paths, fill(rt.Path), fill(rt.Path)+"?wait=1&user=u1&since=x&limit=2", strings.ReplaceAll(fill(rt.Path), "contoso", "other"))
	}
	fuzzServer(t, env.ts, fuzzTarget{
		seeds: seeds,
		paths: append(paths, "/v1/tenants/", "/v1/tenants//users", "/v1/phone", "/v1/enrollments/"+strings.Repeat("e", 300)+"/attestation"),
		headers: []string{"Content-Type: application/cbor", "Authorization: Bearer " + te.adminKey, "Authorization: Bearer " + te.authKey,
			"Keybind-Credential: " + ph.cred.ID, "Keybind-Timestamp: 99999999999999999999", "Keybind-Nonce: AAAAAAAAAAAAAAAAAAAAAA", "Keybind-Signature: !!"},
		auth: [][]string{
			{"Content-Type: application/json", "Authorization: Bearer " + te.adminKey},
			{"Content-Type: application/json", "Authorization: Bearer " + te.authKey},
			{"Content-Type: application/json", "Authorization: Bearer " + operatorKey},
			{"Content-Type: application/cbor"},
		},
		usual: func(rng *rand.Rand) (string, string, []string) {
			rt := routes[rng.IntN(len(routes))]
			path := fill(rt.Path)
			if rt.Roles == nil && rng.IntN(2) == 0 {
				return rt.Method, path, signed(rt.Method, path)
			}
			return rt.Method, path, nil
		},
	})

	// The server still runs the product.
	env.user(te, "u2", "bob@contoso.com")
	ph2 := env.mustEnroll(te, "u2")
	s, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "bob@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	pend, err := ph2.Pending(bg)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending after the fuzzing: %+v %v", pend, err)
	}
	if out, err := ph2.Answer(bg, pend[0], engine.DecisionApprove, s.Number); err != nil || out.State != "approved" {
		t.Fatalf("answer after the fuzzing: %+v %v", out, err)
	}
}
