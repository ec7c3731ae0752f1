package webauthn

import (
	"encoding/binary"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
)

// Flags of the authenticator data.
const (
	FlagUP = 0x01 // user present
	FlagUV = 0x04 // user verified
	FlagBE = 0x08 // backup eligible
	FlagBS = 0x10 // backup state
	FlagAT = 0x40 // attested credential data included
	FlagED = 0x80 // extension data included
)

// MaxCredentialID is the longest credential id WebAuthn allows.
const MaxCredentialID = 1023

// MaxAuthData bounds the authenticator data keybind reads.
const MaxAuthData = 8 << 10

// AuthenticatorData is parsed authenticator data.
type AuthenticatorData struct {
	RPIDHash [32]byte
	Flags    byte
	Counter  uint32
	// Attested credential data, when AT is set.
	AAGUID           [16]byte
	CredentialID     []byte
	CredentialKey    *COSEKey
	RawCredentialKey []byte
	// Extensions are the identifiers of the extension outputs, when ED is
	// set.
	Extensions []string
}

// ParseAuthenticatorData decodes authenticator data strictly, one code per
// check: the fixed fields present (webauthn.auth_data_short); backup state
// only on a backup-eligible credential (webauthn.flag_bs); with AT, the
// attested credential data present (webauthn.flag_at) and complete
// (webauthn.auth_data_short), a credential id of 1 to 1023 bytes
// (webauthn.credential_id), a COSE key (ParseCOSEKey); with ED, exactly one
// non-empty CBOR map with text keys (webauthn.flag_ed, webauthn.extensions); nothing
// after what the flags announce (webauthn.auth_data_trailing).
func ParseAuthenticatorData(b []byte) (*AuthenticatorData, error) {
	const header = 32 + 1 + 4
	if len(b) < header {
		return nil, attest.Errorf(CodeAuthDataShort, "authenticator data of %d bytes (at least %d)", len(b), header)
	}
	if len(b) > MaxAuthData {
		return nil, attest.Errorf(CodeAuthDataTrail, "authenticator data of %d bytes (at most %d)", len(b), MaxAuthData)
	}
	a := &AuthenticatorData{Flags: b[32], Counter: binary.BigEndian.Uint32(b[33:37])}
	copy(a.RPIDHash[:], b[:32])
	if a.Flags&FlagBS != 0 && a.Flags&FlagBE == 0 {
		return nil, attest.Errorf(CodeFlagBS, "flags %#02x: backup state set on a credential that is not backup eligible", a.Flags)
	}
	rest := b[header:]
	if a.Flags&FlagAT != 0 {
		if len(rest) == 0 {
			return nil, attest.Errorf(CodeFlagAT, "the AT flag is set and no attested credential data follows")
		}
		if len(rest) < 18 {
			return nil, attest.Errorf(CodeAuthDataShort, "attested credential data of %d bytes (at least 18)", len(rest))
		}
		copy(a.AAGUID[:], rest[:16])
		n := int(binary.BigEndian.Uint16(rest[16:18]))
		rest = rest[18:]
		if n == 0 || n > MaxCredentialID {
			return nil, attest.Errorf(CodeCredentialID, "credential id of %d bytes (1 to %d)", n, MaxCredentialID)
		}
		if len(rest) < n {
			return nil, attest.Errorf(CodeAuthDataShort, "credential id of %d bytes, %d left", n, len(rest))
		}
		a.CredentialID = rest[:n:n]
		rest = rest[n:]
		if len(rest) == 0 {
			return nil, attest.Errorf(CodeAuthDataShort, "no credential public key")
		}
		var raw cbor.RawMessage
		after, err := cbor.UnmarshalFirst(rest, &raw)
		if err != nil {
			// Not one well-formed CBOR item: the strict decoder names why.
			if serr := attest.UnmarshalCBOR("credential public key", rest, &raw); serr != nil && attest.CodeOf(serr) != attest.CodeCBORTrailingBytes {
				return nil, serr
			}
			return nil, attest.Errorf(attest.CodeCBORMalformed, "credential public key: %v", err)
		}
		a.RawCredentialKey = rest[: len(rest)-len(after) : len(rest)-len(after)]
		if a.CredentialKey, err = ParseCOSEKey(a.RawCredentialKey); err != nil {
			return nil, err
		}
		rest = after
	}
	if a.Flags&FlagED != 0 {
		if len(rest) == 0 {
			return nil, attest.Errorf(CodeFlagED, "the ED flag is set and no extensions follow")
		}
		var raw cbor.RawMessage
		after, err := cbor.UnmarshalFirst(rest, &raw)
		if err != nil || len(raw) == 0 || raw[0]>>5 != 5 {
			return nil, attest.Errorf(CodeExtensions, "the extensions are not a CBOR map")
		}
		var ext map[string]cbor.RawMessage
		if err := attest.UnmarshalCBOR("authenticator data extensions", raw, &ext); err != nil {
			if c := attest.CodeOf(err); c == attest.CodeCBORType {
				return nil, attest.Errorf(CodeExtensions, "the extensions' keys are not text: %v", err)
			}
			return nil, err
		}
		if len(ext) == 0 {
			return nil, attest.Errorf(CodeFlagED, "the ED flag is set and the extension map is empty")
		}
		for id := range ext {
			a.Extensions = append(a.Extensions, id)
		}
		slices.Sort(a.Extensions)
		rest = after
	}
	if len(rest) != 0 {
		return nil, attest.Errorf(CodeAuthDataTrail, "%d bytes after the data the flags announce (flags %#02x)", len(rest), a.Flags)
	}
	return a, nil
}
