package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestAdminCommands runs `keybind serve` as a process (with the operator's
// key and a development root) and administers it with the `keybind admin`
// commands, as an operator does from a shell: a tenant, its policy, an
// admin key, users, groups, a phone's device and credential (enrolled
// through the API with a forged Android attestation), API keys, the audit
// log, and an export of the running server that imports.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "android-dev-root.pem")
	os.WriteFile(rootFile, ca.RootPEM(), 0o600)
	const operator = "operator-key-of-the-admin-test"
	p := startServe(t, []string{"KEYBIND_OPERATOR_KEY=" + operator}, "--root", "android-dev="+rootFile)
	t.Setenv("KEYBIND_SERVER", p.url)
	t.Setenv("KEYBIND_KEY", operator)
	t.Setenv("KEYBIND_TENANT", "")

	// admin runs a command and decodes its JSON answer.
	admin := func(want int, args ...string) map[string]any {
		t.Helper()
		st, out, errOut := keybind(t, append([]string{"admin"}, args...)...)
		if st != want {
			t.Fatalf("keybind admin %s: status %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), st, want, out, errOut)
		}
		if st != 0 || strings.TrimSpace(out) == "" {
			return map[string]any{"stderr": errOut}
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("keybind admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return v
	}

	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"enabled": false, "attestation": {"android": {"packages": ["`+forge.AndroidDefaultPackage+`"], "extra_roots": ["android-dev"]}}}`), 0o600)
	if v := admin(0, "tenant", "create", "contoso", "--name", "Contoso", "--policy", policy); v["id"] != "contoso" || v["name"] != "Contoso" {
		t.Fatalf("tenant create: %v", v)
	}
	if v := admin(1, "tenant", "create", "contoso"); !strings.Contains(v["stderr"].(string), "409 tenant.exists") {
		t.Errorf("second create: %v", v)
	}
	key := admin(0, "key", "create", "--tenant", "contoso", "--role", "admin", "--name", "helpdesk")
	adminKey, _ := key["key"].(string)
	if !strings.HasPrefix(adminKey, "kb_") {
		t.Fatalf("key create: %v", key)
	}
	// From here on, the tenant's admin key (its tenant is found from it).
	t.Setenv("KEYBIND_KEY", adminKey)
	if v := admin(0, "tenant", "get"); v["id"] != "contoso" {
		t.Errorf("tenant get: %v", v)
	}
	if v := admin(0, "tenant", "list"); len(v["tenants"].([]any)) != 1 {
		t.Errorf("tenant list: %v", v)
	}
	if v := admin(1, "tenant", "create", "fabrikam"); !strings.Contains(v["stderr"].(string), "403 auth.forbidden") {
		t.Errorf("an admin creating a tenant: %v", v)
	}
	v := admin(0, "tenant", "policy", "set", "--enabled", "--groups", "staff,it", "--number-matching", "choose")
	pol := v["policy"].(map[string]any)
	if pol["enabled"] != true || pol["number_matching"] != "choose" || len(pol["target"].(map[string]any)["groups"].([]any)) != 2 || pol["attestation"].(map[string]any)["android"] == nil {
		t.Errorf("policy set: %v", v)
	}
	if v := admin(0, "tenant", "policy", "get"); v["effective"].(map[string]any)["max_installs"].(float64) != 5 {
		t.Errorf("policy get: %v", v)
	}
	admin(2, "tenant", "policy", "set")
	if v := admin(1, "tenant", "policy", "set", "--number-matching", "guess"); !strings.Contains(v["stderr"].(string), "400 policy.invalid") {
		t.Errorf("bad policy: %v", v)
	}
	admin(0, "tenant", "update", "--name", "Contoso Ltd")

	if v := admin(0, "user", "create", "--id", "alice", "--upn", "alice@contoso.com", "--groups", "staff", "--mfa-push"); v["id"] != "alice" || v["mfa_push"] != true {
		t.Errorf("user create: %v", v)
	}
	admin(0, "user", "create", "--upn", "bob@contoso.com", "--groups", "it")
	admin(2, "user", "create", "--id", "x")
	if v := admin(0, "user", "list"); len(v["users"].([]any)) != 2 {
		t.Errorf("user list: %v", v)
	}
	if v := admin(0, "user", "list", "--group", "it"); len(v["users"].([]any)) != 1 {
		t.Errorf("user list --group: %v", v)
	}
	if v := admin(0, "user", "update", "alice", "--name", "Alice", "--groups", "staff,it"); v["display_name"] != "Alice" || len(v["groups"].([]any)) != 2 {
		t.Errorf("user update: %v", v)
	}
	if v := admin(0, "user", "get", "alice"); v["upn"] != "alice@contoso.com" {
		t.Errorf("user get: %v", v)
	}
	if v := admin(1, "user", "get", "nobody"); !strings.Contains(v["stderr"].(string), "404 user.not_found: no such user") {
		t.Errorf("unknown user: %v", v)
	}
	admin(2, "user", "get")
	if v := admin(0, "group", "list"); len(v["groups"].([]any)) != 2 {
		t.Errorf("group list: %v", v)
	}

	// A phone enrolls through the API: an auth server key opens the
	// enrollment, the phone sends a forged attestation.
	auth := admin(0, "key", "create", "--role", "auth_server")["key"].(string)
	ctx := context.Background()
	enr, err := client.New(p.url, auth).StartEnrollment(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := client.New(p.url, "").Attest(ctx, enr.ID, "android-key", engine.Evidence{"chain": engine.JoinDER(att.Chain)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if v := admin(0, "device", "list"); len(v["devices"].([]any)) != 1 {
		t.Errorf("device list: %v", v)
	}
	if v := admin(0, "device", "disable", cred.Device); v["disabled"] != true {
		t.Errorf("device disable: %v", v)
	}
	if v := admin(0, "device", "enable", cred.Device); v["disabled"] != false {
		t.Errorf("device enable: %v", v)
	}
	if v := admin(0, "credential", "list", "--user", "alice"); len(v["credentials"].([]any)) != 1 {
		t.Errorf("credential list: %v", v)
	}
	if v := admin(0, "credential", "reverify", cred.ID); v["valid"] != true {
		t.Errorf("credential reverify: %v", v)
	}
	if v := admin(0, "credential", "disable", cred.ID); v["disabled"] != true {
		t.Errorf("credential disable: %v", v)
	}
	admin(0, "credential", "delete", cred.ID)
	admin(1, "credential", "get", cred.ID)
	admin(0, "user", "delete", "alice")

	keys := admin(0, "key", "list")["keys"].([]any)
	if len(keys) != 2 {
		t.Errorf("key list: %v", keys)
	}
	authID := ""
	for _, k := range keys {
		if k.(map[string]any)["role"] == "auth_server" {
			authID = k.(map[string]any)["id"].(string)
		}
	}
	admin(0, "key", "revoke", authID)
	if _, err := client.New(p.url, auth).StartEnrollment(ctx, "bob", false); err == nil {
		t.Error("a revoked key still works")
	}

	page := admin(0, "audit", "--since", "1h", "--limit", "3")
	if len(page["records"].([]any)) != 3 || page["next"] == nil {
		t.Errorf("audit page: %v", page)
	}
	all := admin(0, "audit", "--all", "--since", "1h")
	if n := len(all["records"].([]any)); n < 10 {
		t.Errorf("audit --all: %d records", n)
	}
	if v := admin(0, "audit", "--user", "alice", "--all"); len(v["records"].([]any)) == 0 {
		t.Errorf("audit --user: %v", v)
	}
	admin(2, "audit", "--since", "last week")

	// The export of the running server (the operator's), which imports.
	if v := admin(1, "export", "--out", filepath.Join(dir, "x.zst")); !strings.Contains(v["stderr"].(string), "403 auth.forbidden") {
		t.Errorf("export with an admin key: %v", v)
	}
	t.Setenv("KEYBIND_KEY", operator)
	file := filepath.Join(dir, "export.zst")
	admin(0, "export", "--out", file)
	st, _, errOut := keybind(t, "admin", "import", "--data", filepath.Join(dir, "imported"), "--in", file)
	if st != 0 {
		t.Fatalf("import of the server's export: %d %s", st, errOut)
	}
	s, err := store.Open(filepath.Join(dir, "imported"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var tn engine.Tenant
	if err := s.Get(store.TenantKey("contoso"), &tn); err != nil || tn.Name != "Contoso Ltd" {
		t.Errorf("imported tenant: %+v %v", tn, err)
	}
	// No server at the address: a clear error.
	t.Setenv("KEYBIND_SERVER", "http://127.0.0.1:1")
	if v := admin(1, "tenant", "list"); !strings.Contains(v["stderr"].(string), "connection refused") {
		t.Errorf("no server: %v", v)
	}
	admin(2, "tenant", "list", "--server", "ftp://x")
}
