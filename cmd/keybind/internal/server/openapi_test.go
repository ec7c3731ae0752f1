package server

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keybind/keybind/engine"
)

// TestOpenAPIComplete checks that the OpenAPI document and the server
// agree: every registered route is documented (method and path), every
// documented operation is a registered route, each has a unique
// operationId and its error responses, routes without an API key say so
// (security [] or deviceRequest), and every schema reference resolves.
func TestOpenAPIComplete(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas         map[string]json.RawMessage `json:"schemas"`
			Responses       map[string]json.RawMessage `json:"responses"`
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	ids := map[string]string{}
	for _, rt := range env.ts.s.Routes() {
		name := rt.Method + " " + rt.Path
		if !documented[name] {
			t.Errorf("route %s is not in openapi.json", name)
			continue
		}
		delete(documented, name)
		var op struct {
			OperationID string                     `json:"operationId"`
			Security    *[]map[string][]string     `json:"security"`
			Responses   map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(doc.Paths[rt.Path][strings.ToLower(rt.Method)], &op); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if op.OperationID == "" || ids[op.OperationID] != "" {
			t.Errorf("%s: operationId %q missing or also used by %s", name, op.OperationID, ids[op.OperationID])
		}
		ids[op.OperationID] = name
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", name)
		}
		public := op.Security != nil && (len(*op.Security) == 0 || (*op.Security)[0]["deviceRequest"] != nil)
		if public != (len(rt.Roles) == 0) {
			t.Errorf("%s: documented without a key %v, roles %v", name, public, rt.Roles)
		}
		if len(rt.Roles) > 0 {
			for _, code := range []string{"401", "403"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: no %s response", name, code)
				}
			}
		}
		if strings.HasPrefix(rt.Path, "/v1/") && rt.Path != "/v1/openapi.json" && slices.Contains([]string{"POST", "PUT", "PATCH"}, rt.Method) {
			if _, ok := op.Responses["413"]; !ok {
				t.Errorf("%s: no 413 response", name)
			}
		}
	}
	for name := range documented {
		t.Errorf("openapi.json documents %s, which the server does not serve", name)
	}
	// Every reference resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, found := "", false
				switch {
				case strings.HasPrefix(ref, "#/components/schemas/"):
					name = strings.TrimPrefix(ref, "#/components/schemas/")
					_, found = doc.Components.Schemas[name]
				case strings.HasPrefix(ref, "#/components/responses/"):
					name = strings.TrimPrefix(ref, "#/components/responses/")
					_, found = doc.Components.Responses[name]
				}
				if !found {
					t.Errorf("reference %s does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	json.Unmarshal(OpenAPI, &all)
	walk(all)
	if _, ok := doc.Components.SecuritySchemes["deviceRequest"]; !ok {
		t.Error("no deviceRequest security scheme")
	}
}

// schemaChecker validates JSON values against the document's schemas (the
// subset the document uses: $ref, type, properties, required,
// additionalProperties, items, enum, const).
type schemaChecker struct {
	t       *testing.T
	schemas map[string]any
}

func newSchemaChecker(t *testing.T) *schemaChecker {
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	return &schemaChecker{t: t, schemas: doc.Components.Schemas}
}

// check validates a response body against the named schema.
func (sc *schemaChecker) check(name string, r response) {
	sc.t.Helper()
	if r.status >= 300 {
		sc.t.Fatalf("%s: %d %s", name, r.status, r.body)
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		sc.t.Fatalf("%s: %v", name, err)
	}
	for _, e := range sc.errors(map[string]any{"$ref": "#/components/schemas/" + name}, v, name) {
		sc.t.Errorf("%s", e)
	}
}

func (sc *schemaChecker) errors(s map[string]any, v any, at string) []string {
	if ref, ok := s["$ref"].(string); ok {
		target, ok := sc.schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		if !ok {
			return []string{at + ": unresolved " + ref}
		}
		return sc.errors(target, v, at)
	}
	var errs []string
	if c, ok := s["const"]; ok && v != c {
		errs = append(errs, at+": not the constant")
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, at+": not in the enum")
	}
	switch s["type"] {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			return append(errs, at+": not an object")
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := o[r.(string)]; !ok {
				errs = append(errs, at+": no "+r.(string))
			}
		}
		for k, x := range o {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, sc.errors(p, x, at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, at+": undocumented member "+k)
				}
			case map[string]any:
				errs = append(errs, sc.errors(ap, x, at+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return append(errs, at+": not an array")
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range a {
				errs = append(errs, sc.errors(items, x, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, at+": not a string")
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			errs = append(errs, at+": not an integer")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, at+": not a boolean")
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestOpenAPISchemas checks the answers of the engine's routes against the
// schemas the document gives them.
func TestOpenAPISchemas(t *testing.T) {
	sc := newSchemaChecker(t)
	env := newEngineEnv(t, Config{}, EngineConfig{})
	p := testPolicy()
	p.Target = engine.Target{Groups: []string{"staff"}}
	p.Attestation.WebAuthn = &engine.WebAuthnPolicy{RPID: "contoso.example", Origins: []string{"https://contoso.example"}}
	p.Attestation.TPM = &engine.TPMPolicy{EKTrust: "allow_list", EKAllowList: []string{strings.Repeat("ab", 32)}}
	te := env.tenant("contoso", p)
	base := "/v1/tenants/contoso"
	sc.check("Tenant", env.call(te.adminKey, "GET", base, nil))
	sc.check("TenantPolicy", env.call(te.adminKey, "GET", base+"/policy", nil))
	sc.check("User", env.call(te.adminKey, "POST", base+"/users", map[string]any{"id": "u1", "upn": "alice@contoso.com", "display_name": "Alice", "groups": []string{"staff"}, "mfa_push": true}))
	ph := env.mustEnroll(te, "u1")
	sc.check("Enrollment", env.call(te.authKey, "POST", "/v1/enrollments", map[string]string{"user": "u1"}))
	sc.check("Credential", env.call(te.adminKey, "GET", base+"/credentials/"+ph.cred.ID, nil))
	sc.check("Device", env.call(te.adminKey, "GET", base+"/devices/"+ph.cred.Device, nil))
	sc.check("NewAPIKey", env.call(te.adminKey, "POST", base+"/keys", map[string]string{"role": "verify", "name": "n"}))
	sc.check("Reverified", env.call(te.adminKey, "POST", base+"/credentials/"+ph.cred.ID+"/reverify", nil))
	r := env.call(te.authKey, "POST", "/v1/signins", map[string]any{"username": "alice@contoso.com", "context": map[string]string{"app": "Mail"}})
	sc.check("SignInStart", r)
	start := decode[SignInStart](t, r)
	sc.check("Outcome", env.call(te.authKey, "GET", "/v1/signins/"+start.Attempt, nil))
	req, _ := ph.NewRequest(bg, "GET", "/v1/phone/signins", "", nil)
	sc.check("PendingSignIns", env.ts.send(req))
	pend, _ := ph.Pending(bg)
	sig, _ := engine.SignAnswer(ph.key, pend[0].AnswerMessage(engine.DecisionApprove, start.Number))
	body, _ := json.Marshal(map[string]any{"decision": "approve", "number": start.Number, "signature": sig})
	req, _ = ph.NewRequest(bg, "POST", "/v1/phone/signins/"+start.Attempt+"/answer", "", body)
	sc.check("Outcome", env.ts.send(req))
	sc.check("AuditPage", env.call(te.adminKey, "GET", base+"/audit?limit=5", nil))
	for _, c := range []struct{ schema, member, path string }{
		{"Tenant", "tenants", "/v1/tenants"}, {"User", "users", base + "/users"}, {"Group", "groups", base + "/groups"},
		{"Device", "devices", base + "/devices"}, {"Credential", "credentials", base + "/credentials"}, {"APIKey", "keys", base + "/keys"},
	} {
		r := env.call(te.adminKey, "GET", c.path, nil)
		var list map[string][]json.RawMessage
		if err := json.Unmarshal(r.body, &list); err != nil || len(list[c.member]) == 0 {
			t.Fatalf("%s: %d %s", c.path, r.status, r.body)
		}
		for _, item := range list[c.member] {
			sc.check(c.schema, response{status: 200, body: item})
		}
	}
	// A problem.
	sc.check("Problem", response{status: 200, body: env.call(te.adminKey, "GET", base+"/users/nobody", nil).body})
}
