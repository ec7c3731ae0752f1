package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Role is what an API key may do within its tenant.
type Role string

const (
	// RoleVerify may only call the stateless verify endpoint.
	RoleVerify Role = "verify"
	// RoleAuthServer is an auth server: sign-in flows, enrollments and
	// the verify endpoint.
	RoleAuthServer Role = "auth_server"
	// RoleAdmin administers its tenant (and may do what an auth server
	// does).
	RoleAdmin Role = "admin"
	// RoleOperator runs the server: it creates tenants, issues their first
	// keys and administers any tenant. Its keys are configured on the
	// server (ParseOperatorKey), never stored, and belong to no tenant.
	RoleOperator Role = "operator"
)

// Principal is the authenticated caller of a request: the tenant its API
// key belongs to, the key's role, and a non-secret name of the key for logs
// and audit.
type Principal struct {
	Tenant string
	Role   Role
	KeyID  string
}

// ErrUnauthenticated is what an Authenticator returns for a key it does not
// know; the server answers 401 without saying more.
var ErrUnauthenticated = errors.New("unknown API key")

// Authenticator resolves the API key a request presents (the token of its
// "Authorization: Bearer …" header) to its principal. Keys are stored
// hashed; an implementation compares hashes, never keys. It returns
// ErrUnauthenticated for an unknown, revoked or expired key, and any other
// error when it cannot tell (the store is down: the server answers 503).
// Authenticate is called on every authenticated request and must be safe
// for concurrent use; the hot path should not allocate.
type Authenticator interface {
	Authenticate(key []byte) (Principal, error)
}

// Authenticators tries each authenticator in turn; the first that knows the
// key wins.
type Authenticators []Authenticator

func (as Authenticators) Authenticate(key []byte) (Principal, error) {
	for _, a := range as {
		p, err := a.Authenticate(key)
		if errors.Is(err, ErrUnauthenticated) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrUnauthenticated
}

// StaticKeys is an Authenticator for keys an operator configures (flags,
// environment): only their SHA-256 hashes are kept in memory.
type StaticKeys struct {
	byHash map[[32]byte]Principal
}

// HashKey returns the SHA-256 of an API key, the form in which keys are
// stored and configured ("sha256:" + hex).
func HashKey(key []byte) [32]byte { return sha256.Sum256(key) }

// ParseStaticKeys parses key specifications of the form
// "TENANT:ROLE:KEY" or "TENANT:ROLE:sha256:HEX" (the SHA-256 of the key, so
// that the key itself need not appear in any configuration). ROLE is
// "verify", "auth_server" or "admin". The key id reported in logs is
// "static:" followed by the first 8 hex digits of the key's hash.
func ParseStaticKeys(specs []string) (*StaticKeys, error) {
	sk := &StaticKeys{byHash: map[[32]byte]Principal{}}
	for i, spec := range specs {
		tenant, rest, ok1 := strings.Cut(spec, ":")
		role, key, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || tenant == "" || key == "" {
			return nil, fmt.Errorf("key %d: want TENANT:ROLE:KEY or TENANT:ROLE:sha256:HEX", i+1)
		}
		switch Role(role) {
		case RoleVerify, RoleAuthServer, RoleAdmin:
		default:
			return nil, fmt.Errorf("key %d: unknown role %q (verify, auth_server, admin)", i+1, role)
		}
		var h [32]byte
		if hx, ok := strings.CutPrefix(key, "sha256:"); ok {
			b, err := hex.DecodeString(hx)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("key %d: sha256: wants 64 hex digits", i+1)
			}
			copy(h[:], b)
		} else {
			if len(key) < 16 {
				return nil, fmt.Errorf("key %d: a key must have at least 16 characters", i+1)
			}
			h = HashKey([]byte(key))
		}
		if _, dup := sk.byHash[h]; dup {
			return nil, fmt.Errorf("key %d: the same key is configured twice", i+1)
		}
		sk.byHash[h] = Principal{Tenant: tenant, Role: Role(role), KeyID: "static:" + hex.EncodeToString(h[:4])}
	}
	return sk, nil
}

// ParseOperatorKey parses the operator's key: the key itself (at least 16
// characters) or "sha256:HEX", its SHA-256. The key id reported in logs is
// "operator:" followed by the first 8 hex digits of the key's hash.
func ParseOperatorKey(spec string) (*StaticKeys, error) {
	var h [32]byte
	if hx, ok := strings.CutPrefix(spec, "sha256:"); ok {
		b, err := hex.DecodeString(hx)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("operator key: sha256: wants 64 hex digits")
		}
		copy(h[:], b)
	} else {
		if len(spec) < 16 {
			return nil, fmt.Errorf("operator key: a key must have at least 16 characters")
		}
		h = HashKey([]byte(spec))
	}
	return &StaticKeys{byHash: map[[32]byte]Principal{h: {Role: RoleOperator, KeyID: "operator:" + hex.EncodeToString(h[:4])}}}, nil
}

// Len returns the number of keys.
func (sk *StaticKeys) Len() int { return len(sk.byHash) }

func (sk *StaticKeys) Authenticate(key []byte) (Principal, error) {
	h := HashKey(key)
	if p, ok := sk.byHash[h]; ok {
		return p, nil
	}
	return Principal{}, ErrUnauthenticated
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(h []byte) ([]byte, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	tok := bytes.TrimSpace(h[len(scheme):])
	return tok, len(tok) > 0
}

// KeyResolver returns the public key of a credential for the verify
// endpoint's "credential_id" items. It must only find credentials of the
// given tenant, and answer ErrUnknownCredential alike for a credential that
// does not exist, belongs to another tenant, or is disabled — the caller
// learns nothing more. The key is returned encoded (SubjectPublicKeyInfo,
// X9.62 point or raw Ed25519); the server parses it once and caches it by
// credential id until Server.InvalidateCredential.
type KeyResolver interface {
	ResolveKey(tenant string, credentialID []byte) ([]byte, error)
}

// ErrUnknownCredential is what a KeyResolver returns for a credential the
// tenant does not have (or has disabled).
var ErrUnknownCredential = errors.New("unknown credential")
