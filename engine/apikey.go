package engine

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/keybind/keybind/store"
)

// API keys authenticate the callers of a tenant's HTTP API: auth servers
// and the tenant's administrators. A key belongs to one tenant and has one
// role. The engine keeps only the SHA-256 of a key: the key itself is
// returned once, when it is created, and cannot be read again.

// Roles of API keys.
const (
	// RoleVerify may only call the stateless verify endpoint.
	RoleVerify = "verify"
	// RoleAuthServer is an auth server: sign-ins, enrollments, verify.
	RoleAuthServer = "auth_server"
	// RoleAdmin administers its tenant (and may do what an auth server
	// does).
	RoleAdmin = "admin"
)

// MaxAPIKeys bounds the API keys of one tenant.
const MaxAPIKeys = 256

// APIKeyPrefix starts every API key the engine makes ("kb_" and 43
// base64url characters: 256 random bits), so that a leaked key is easy to
// recognise in logs and by secret scanners.
const APIKeyPrefix = "kb_"

// APIKey is an API key's record. It never holds the key.
type APIKey struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
	// Name says what the key is for ("login page", "helpdesk script").
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy names the key (or operator) that created it.
	CreatedBy string `json:"created_by,omitempty"`
}

// HashAPIKey returns the SHA-256 of an API key: the form in which keys are
// stored and looked up.
func HashAPIKey(key []byte) [32]byte { return sha256.Sum256(key) }

func checkRole(role string) error {
	switch role {
	case RoleVerify, RoleAuthServer, RoleAdmin:
		return nil
	}
	return invalid("role %q is not %s, %s or %s", role, RoleVerify, RoleAuthServer, RoleAdmin)
}

// CreateAPIKey makes a new API key for a tenant and returns its record and
// the key, which is shown this once (only its hash is stored). createdBy
// names the caller for the record and the audit log. Codes: input.invalid,
// tenant.not_found, apikey.limit.
func (e *Engine) CreateAPIKey(ctx context.Context, tenant, role, name, createdBy string) (*APIKey, string, error) {
	if err := checkRole(role); err != nil {
		return nil, "", err
	}
	if err := checkText("key name", name, MaxNameLength); err != nil {
		return nil, "", err
	}
	if err := checkText("created_by", createdBy, MaxNameLength); err != nil {
		return nil, "", err
	}
	if _, err := e.tenant(tenant); err != nil {
		return nil, "", err
	}
	id, err := e.newID()
	if err != nil {
		return nil, "", err
	}
	var secret [32]byte
	if err := e.random(secret[:]); err != nil {
		return nil, "", err
	}
	key := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	hash := HashAPIKey([]byte(key))
	rec := APIKey{ID: id, Tenant: tenant, Role: role, Name: name, CreatedAt: e.now(), CreatedBy: createdBy}
	hk, ik := store.APIKeyKey(hash[:]), store.TenantAPIKeyKey(tenant, id)
	// The tenant's count is decided under the tenant's lock, so that
	// concurrent creations cannot pass the limit together.
	tk := store.TenantKey(tenant)
	err = e.st.Update([]store.Key{tk, hk, ik}, func(tx *store.Tx) error {
		n := 0
		if err := tx.Scan(store.Prefix(store.KindTenantAPIKey, tenant), func(store.Key, []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n >= MaxAPIKeys {
			return errorf(CodeAPIKeyLimit, KindConflict, "tenant %q has %d API keys, the most allowed: revoke one first", tenant, n)
		}
		if err := tx.Create(hk, rec); err != nil {
			return err
		}
		if err := tx.Create(ik, hash[:]); err != nil {
			return err
		}
		return e.audit(tx, tenant, "", "apikey.created", "", actorOf(ctx), map[string]string{"key": id, "role": role, "by": createdBy})
	})
	if err != nil {
		return nil, "", storeError(err)
	}
	return &rec, key, nil
}

// ListAPIKeys returns the API keys of a tenant, by id. Codes:
// input.invalid, tenant.not_found.
func (e *Engine) ListAPIKeys(ctx context.Context, tenant string) ([]APIKey, error) {
	if _, err := e.tenant(tenant); err != nil {
		return nil, err
	}
	var hashes [][]byte
	err := e.st.Scan(store.Prefix(store.KindTenantAPIKey, tenant), func(k store.Key, v []byte) error {
		var hash []byte
		if err := store.Unmarshal(v, &hash); err != nil {
			return err
		}
		hashes = append(hashes, hash)
		return nil
	})
	if err != nil {
		return nil, storeError(err)
	}
	out := []APIKey{}
	for _, hash := range hashes {
		var rec APIKey
		if err := e.st.Get(store.APIKeyKey(hash), &rec); errors.Is(err, store.ErrNotFound) {
			continue // revoked meanwhile
		} else if err != nil {
			return nil, storeError(err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// RevokeAPIKey deletes an API key of a tenant: from the moment it returns,
// the key authenticates nobody. Codes: input.invalid, apikey.not_found.
func (e *Engine) RevokeAPIKey(ctx context.Context, tenant, id, revokedBy string) (*APIKey, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("key id", id); err != nil {
		return nil, err
	}
	ik := store.TenantAPIKeyKey(tenant, id)
	var hash []byte
	if err := e.st.Get(ik, &hash); errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeAPIKeyNotFound, KindNotFound, "no API key %q", id)
	} else if err != nil {
		return nil, storeError(err)
	}
	hk := store.APIKeyKey(hash)
	var rec APIKey
	err := e.st.Update([]store.Key{ik, hk}, func(tx *store.Tx) error {
		if err := tx.Get(hk, &rec); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeAPIKeyNotFound, KindNotFound, "no API key %q", id)
		} else if err != nil {
			return err
		}
		if err := tx.Delete(hk); err != nil {
			return err
		}
		if err := tx.Delete(ik); err != nil {
			return err
		}
		return e.audit(tx, tenant, "", "apikey.revoked", "", actorOf(ctx), map[string]string{"key": id, "role": rec.Role, "by": revokedBy})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &rec, nil
}

// APIKeyByHash returns the record of the API key whose SHA-256 is hash
// (HashAPIKey). Codes: apikey.not_found, store.unavailable.
func (e *Engine) APIKeyByHash(hash [32]byte) (*APIKey, error) {
	var rec APIKey
	if err := e.st.Get(store.APIKeyKey(hash[:]), &rec); errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeAPIKeyNotFound, KindNotFound, "unknown API key")
	} else if err != nil {
		return nil, storeError(err)
	}
	return &rec, nil
}
