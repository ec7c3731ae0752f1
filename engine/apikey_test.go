package engine

import (
	"strings"
	"testing"

	"github.com/keybind/keybind/store"
)

func TestAPIKeys(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.tenant("fabrikam", testPolicy())

	rec, key, err := env.e.CreateAPIKey(ctx, "contoso", RoleAdmin, "helpdesk", "operator")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) != len(APIKeyPrefix)+43 || rec.Tenant != "contoso" || rec.Role != RoleAdmin || rec.ID == "" {
		t.Fatalf("CreateAPIKey: %+v %q", rec, key)
	}
	got, err := env.e.APIKeyByHash(HashAPIKey([]byte(key)))
	if err != nil || got.ID != rec.ID || got.Tenant != "contoso" || got.Role != RoleAdmin || got.CreatedBy != "operator" {
		t.Fatalf("APIKeyByHash: %+v %v", got, err)
	}
	// Only the hash is stored: no stored value holds the key.
	if err := env.st.Scan(store.Prefix(store.KindAPIKey), func(k store.Key, v []byte) error {
		if strings.Contains(string(k)+string(v), key) {
			t.Errorf("the key is stored in clear")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.APIKeyByHash(HashAPIKey([]byte(key + "x")))
	wantCode(t, err, CodeAPIKeyNotFound)

	_, _, err = env.e.CreateAPIKey(ctx, "contoso", "root", "", "")
	wantCode(t, err, CodeInvalid)
	_, _, err = env.e.CreateAPIKey(ctx, "nobody", RoleAdmin, "", "")
	wantCode(t, err, CodeTenantNotFound)

	rec2, _, err := env.e.CreateAPIKey(ctx, "contoso", RoleAuthServer, "login page", "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := env.e.ListAPIKeys(ctx, "contoso")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListAPIKeys: %+v %v", list, err)
	}
	if list, _ := env.e.ListAPIKeys(ctx, "fabrikam"); len(list) != 0 {
		t.Fatalf("fabrikam sees %+v", list)
	}
	// Another tenant cannot revoke it; its own tenant can, once.
	_, err = env.e.RevokeAPIKey(ctx, "fabrikam", rec.ID, "")
	wantCode(t, err, CodeAPIKeyNotFound)
	if _, err := env.e.RevokeAPIKey(ctx, "contoso", rec.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.RevokeAPIKey(ctx, "contoso", rec.ID, "")
	wantCode(t, err, CodeAPIKeyNotFound)
	_, err = env.e.APIKeyByHash(HashAPIKey([]byte(key)))
	wantCode(t, err, CodeAPIKeyNotFound)
	if list, _ := env.e.ListAPIKeys(ctx, "contoso"); len(list) != 1 || list[0].ID != rec2.ID {
		t.Fatalf("after revoke: %+v", list)
	}
	events := strings.Join(env.auditEvents("contoso", ""), " ")
	if !strings.Contains(events, "apikey.created") || !strings.Contains(events, "apikey.revoked") {
		t.Errorf("audit: %s", events)
	}
}

func TestAPIKeyLimit(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	for i := range MaxAPIKeys {
		if _, _, err := env.e.CreateAPIKey(ctx, "contoso", RoleVerify, "", ""); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	_, _, err := env.e.CreateAPIKey(ctx, "contoso", RoleVerify, "", "")
	wantCode(t, err, CodeAPIKeyLimit)
}
