package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Kind is the first byte of every key: it names the table the key belongs to
// and fixes the layout of the components after it.
type Kind byte

// The key schema. Every key is one Kind byte followed by the components of
// its layout, in order. A text or byte component is written as a 2-byte
// big-endian length and the bytes (so it is at most MaxComponent bytes); a
// number component (times, sequence numbers) is 8 bytes big-endian, so that
// keys of one table sort by it. Because every component either has a fixed
// width or carries its length, and the kind fixes how many components follow
// and of which type, no two different tuples encode to the same key, and
// DecodeKey reads any key back into exactly the tuple that made it.
//
//	kind  table                 components                               value
//	0x01  meta                  name                                     store metadata (schema version, import marker)
//	0x10  tenant                tenant                                   tenant record
//	0x11  user                  tenant, user                             user record
//	0x12  user name             tenant, user name (lower-cased UPN)      user id
//	0x13  device                device                                   device record
//	0x14  tenant device         tenant, device                           empty (index: the devices of a tenant)
//	0x15  credential            credential                               credential record
//	0x16  user credential       tenant, user, credential                 empty (index: the credentials of a user)
//	0x17  key id                key id (SHA-256 of the key's SPKI)       credential id (a key is registered once)
//	0x18  evidence              credential                               zstd-compressed attestation evidence
//	0x20  enrollment            enrollment                               enrollment (challenge, expiry, state)
//	0x21  attempt               attempt                                  sign-in attempt
//	0x22  sign-in state         tenant, user                             the user's pending attempt and back-off
//	0x23  TPM activation        enrollment                               pending TPM credential activation (taken once)
//	0x24  request nonce         credential, nonce                        empty (a device request's nonce, kept for its time window)
//	0x25  request counter       credential                               the highest signature counter of the credential's device requests
//	0x30  audit                 sequence                                 audit record
//	0x31  audit by tenant       tenant, time, sequence                   empty (index)
//	0x32  audit by user         tenant, user, time, sequence             empty (index)
//	0x40  session               session                                  session (data and expiry)
//	0x41  expiry                time, key                                empty (the key is deleted after time)
//	0x50  API key               SHA-256 of the key                       API key record (tenant, role, name; never the key)
//	0x51  tenant API key        tenant, key id                           SHA-256 of the key (index: the API keys of a tenant)
const (
	KindMeta           Kind = 0x01
	KindTenant         Kind = 0x10
	KindUser           Kind = 0x11
	KindUserName       Kind = 0x12
	KindDevice         Kind = 0x13
	KindTenantDevice   Kind = 0x14
	KindCredential     Kind = 0x15
	KindUserCredential Kind = 0x16
	KindKeyID          Kind = 0x17
	KindEvidence       Kind = 0x18
	KindEnrollment     Kind = 0x20
	KindAttempt        Kind = 0x21
	KindSignInState    Kind = 0x22
	KindTPMActivation  Kind = 0x23
	KindRequestNonce   Kind = 0x24
	KindRequestCounter Kind = 0x25
	KindAudit          Kind = 0x30
	KindAuditByTenant  Kind = 0x31
	KindAuditByUser    Kind = 0x32
	KindSession        Kind = 0x40
	KindExpiry         Kind = 0x41
	KindAPIKey         Kind = 0x50
	KindTenantAPIKey   Kind = 0x51
)

// MaxComponent is the largest text or byte component of a key.
const MaxComponent = 1<<16 - 1

// part is the type of one key component.
type part byte

const (
	partBytes part = iota // 2-byte length, then the bytes
	partU64               // 8 bytes, big-endian
)

// layouts gives, for every kind, the types of its components in order. It is
// the schema above in machine form (a constant table: never modified).
var layouts = map[Kind][]part{
	KindMeta:           {partBytes},
	KindTenant:         {partBytes},
	KindUser:           {partBytes, partBytes},
	KindUserName:       {partBytes, partBytes},
	KindDevice:         {partBytes},
	KindTenantDevice:   {partBytes, partBytes},
	KindCredential:     {partBytes},
	KindUserCredential: {partBytes, partBytes, partBytes},
	KindKeyID:          {partBytes},
	KindEvidence:       {partBytes},
	KindEnrollment:     {partBytes},
	KindAttempt:        {partBytes},
	KindSignInState:    {partBytes, partBytes},
	KindTPMActivation:  {partBytes},
	KindRequestNonce:   {partBytes, partBytes},
	KindRequestCounter: {partBytes},
	KindAudit:          {partU64},
	KindAuditByTenant:  {partBytes, partU64, partU64},
	KindAuditByUser:    {partBytes, partBytes, partU64, partU64},
	KindSession:        {partBytes},
	KindExpiry:         {partU64, partBytes},
	KindAPIKey:         {partBytes},
	KindTenantAPIKey:   {partBytes, partBytes},
}

// Key is an encoded key of the schema.
type Key []byte

// Kind returns the table of the key (0 for an empty key).
func (k Key) Kind() Kind {
	if len(k) == 0 {
		return 0
	}
	return Kind(k[0])
}

// Component is one decoded component of a key: Bytes for a text or byte
// component, U64 for a number.
type Component struct {
	Bytes []byte
	U64   uint64
}

// Tuple is a key in decoded form: its kind and its components.
type Tuple struct {
	Kind       Kind
	Components []Component
}

// ErrKey is returned (wrapped) by DecodeKey and EncodeTuple for a key that
// does not follow the schema.
var ErrKey = errors.New("store: key does not follow the schema")

// EncodeTuple encodes t. It fails when the kind is unknown, the number or
// type of components does not match its layout, or a component is longer
// than MaxComponent.
func EncodeTuple(t Tuple) (Key, error) {
	layout, ok := layouts[t.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kind 0x%02x", ErrKey, byte(t.Kind))
	}
	if len(t.Components) != len(layout) {
		return nil, fmt.Errorf("%w: kind 0x%02x has %d components, got %d", ErrKey, byte(t.Kind), len(layout), len(t.Components))
	}
	k := Key{byte(t.Kind)}
	for i, p := range layout {
		c := t.Components[i]
		switch p {
		case partBytes:
			if c.U64 != 0 {
				return nil, fmt.Errorf("%w: component %d is bytes, not a number", ErrKey, i)
			}
			if len(c.Bytes) > MaxComponent {
				return nil, fmt.Errorf("%w: component %d is %d bytes (at most %d)", ErrKey, i, len(c.Bytes), MaxComponent)
			}
			k = appendBytes(k, c.Bytes)
		case partU64:
			if c.Bytes != nil {
				return nil, fmt.Errorf("%w: component %d is a number, not bytes", ErrKey, i)
			}
			k = binary.BigEndian.AppendUint64(k, c.U64)
		}
	}
	return k, nil
}

// DecodeKey decodes a key into its tuple. Any byte string that is not
// exactly the encoding of one tuple is refused with ErrKey.
func DecodeKey(k []byte) (Tuple, error) {
	if len(k) == 0 {
		return Tuple{}, fmt.Errorf("%w: empty key", ErrKey)
	}
	t := Tuple{Kind: Kind(k[0])}
	layout, ok := layouts[t.Kind]
	if !ok {
		return Tuple{}, fmt.Errorf("%w: unknown kind 0x%02x", ErrKey, k[0])
	}
	rest := k[1:]
	for i, p := range layout {
		switch p {
		case partBytes:
			if len(rest) < 2 {
				return Tuple{}, fmt.Errorf("%w: component %d truncated", ErrKey, i)
			}
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n {
				return Tuple{}, fmt.Errorf("%w: component %d truncated", ErrKey, i)
			}
			t.Components = append(t.Components, Component{Bytes: slices.Clone(rest[2 : 2+n])})
			rest = rest[2+n:]
		case partU64:
			if len(rest) < 8 {
				return Tuple{}, fmt.Errorf("%w: component %d truncated", ErrKey, i)
			}
			t.Components = append(t.Components, Component{U64: binary.BigEndian.Uint64(rest)})
			rest = rest[8:]
		}
	}
	if len(rest) != 0 {
		return Tuple{}, fmt.Errorf("%w: %d bytes after the last component", ErrKey, len(rest))
	}
	return t, nil
}

func appendBytes(k Key, b []byte) Key {
	k = binary.BigEndian.AppendUint16(k, uint16(len(b)))
	return append(k, b...)
}

// key builds a key of kind from text components. A component longer than
// MaxComponent cannot be encoded: key then returns nil, which every Store
// operation refuses with ErrKey (the engine bounds identifiers far below
// that, so this is a last guard, never a silent truncation).
func key(kind Kind, parts ...string) Key {
	n := 1
	for _, p := range parts {
		if len(p) > MaxComponent {
			return nil
		}
		n += 2 + len(p)
	}
	k := make(Key, 1, n)
	k[0] = byte(kind)
	for _, p := range parts {
		k = binary.BigEndian.AppendUint16(k, uint16(len(p)))
		k = append(k, p...)
	}
	return k
}

// Keys of each table. Identifiers are opaque text (the engine makes them);
// the arguments are the components in the order of the schema.

func TenantKey(tenant string) Key               { return key(KindTenant, tenant) }
func UserKey(tenant, user string) Key           { return key(KindUser, tenant, user) }
func UserNameKey(tenant, name string) Key       { return key(KindUserName, tenant, name) }
func DeviceKey(device string) Key               { return key(KindDevice, device) }
func TenantDeviceKey(tenant, device string) Key { return key(KindTenantDevice, tenant, device) }
func CredentialKey(credential string) Key       { return key(KindCredential, credential) }
func UserCredentialKey(tenant, user, credential string) Key {
	return key(KindUserCredential, tenant, user, credential)
}
func KeyIDKey(keyID []byte) Key              { return key(KindKeyID, string(keyID)) }
func EvidenceKey(credential string) Key      { return key(KindEvidence, credential) }
func EnrollmentKey(enrollment string) Key    { return key(KindEnrollment, enrollment) }
func AttemptKey(attempt string) Key          { return key(KindAttempt, attempt) }
func SignInStateKey(tenant, user string) Key { return key(KindSignInState, tenant, user) }
func SessionKey(session string) Key          { return key(KindSession, session) }
func TPMActivationKey(enrollment string) Key { return key(KindTPMActivation, enrollment) }
func RequestNonceKey(credential string, nonce []byte) Key {
	return key(KindRequestNonce, credential, string(nonce))
}
func RequestCounterKey(credential string) Key { return key(KindRequestCounter, credential) }
func APIKeyKey(hash []byte) Key               { return key(KindAPIKey, string(hash)) }
func TenantAPIKeyKey(tenant, id string) Key   { return key(KindTenantAPIKey, tenant, id) }
func metaKey(name string) Key                 { return key(KindMeta, name) }
func auditKey(seq uint64) Key                 { return binary.BigEndian.AppendUint64(Key{byte(KindAudit)}, seq) }
func expiryKey(at uint64, target Key) Key {
	return appendBytes(binary.BigEndian.AppendUint64(Key{byte(KindExpiry)}, at), target)
}
func auditByTenantPrefix(tenant string) Key     { return key(KindAuditByTenant, tenant) }
func auditByUserPrefix(tenant, user string) Key { return key(KindAuditByUser, tenant, user) }

// Prefix returns the key prefix shared by every key of kind whose first
// components are parts: Prefix(KindUser, "t1") is the prefix of all the users
// of tenant t1, Prefix(KindTenant) of all tenants. Only text components can be
// given.
func Prefix(kind Kind, parts ...string) Key { return key(kind, parts...) }

// LastComponent returns the last text component of a key of the schema (the
// credential of a user-credential index key, the device of a tenant-device
// key, …), or "" when the key does not decode or ends with a number.
func LastComponent(k Key) string {
	t, err := DecodeKey(k)
	if err != nil || len(t.Components) == 0 {
		return ""
	}
	return string(t.Components[len(t.Components)-1].Bytes)
}
