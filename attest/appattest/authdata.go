package appattest

import (
	"encoding/binary"
	"fmt"

	"github.com/keybind/keybind/attest"
)

// Layout of the authenticator data (WebAuthn's, as App Attest uses it):
//
//	rpIdHash (32) | flags (1) | counter (4, big-endian)
//	| aaguid (16) | credentialIdLength (2) | credentialId | credentialPublicKey (COSE)   attestation only
//	| extension map (CBOR)                                                          iOS 27 and later
const (
	rpIDHashLen   = 32
	authHeaderLen = rpIDHashLen + 1 + 4 // rpIdHash, flags, counter
	aaguidLen     = 16

	flagAT = 0x40 // attested credential data included
	flagED = 0x80 // extension data included
)

// Keys of the extension map that iOS 27 appends to the authenticator data.
const (
	extBundleVersion      = "apple_bundle_version_01"
	extValidationCategory = "apple_validation_category_01"
)

// Extensions are the values that iOS 27 and later append to the
// authenticator data of attestations and assertions, as a CBOR map after
// the fixed fields (Apple sets it without the ED flag). Devices before iOS 27
// append nothing; the zero value says so.
type Extensions struct {
	present          bool
	bundleVersion    []byte
	hasBundleVersion bool
	category         uint32
	hasCategory      bool
	unknown          int
}

// Present reports whether the authenticator data carried an extension map.
func (e Extensions) Present() bool { return e.present }

// BundleVersion returns apple_bundle_version_01: the version (the bundle's
// CFBundleVersion) of the app that made the key or the assertion.
func (e Extensions) BundleVersion() (string, bool) {
	return string(e.bundleVersion), e.hasBundleVersion
}

// ValidationCategory returns apple_validation_category_01: how the running
// app was signed and distributed (Apple's launch validation categories, for
// example App Store, TestFlight, development signing).
func (e Extensions) ValidationCategory() (uint32, bool) { return e.category, e.hasCategory }

// Unknown returns the number of keys of the map that this version of
// keybind does not know. They are covered by the signature like the rest
// of the authenticator data, and otherwise ignored.
func (e Extensions) Unknown() int { return e.unknown }

// facts adds the extension values to a verdict's facts.
func (e Extensions) facts(f map[string]any) {
	if v, ok := e.BundleVersion(); ok {
		f["bundle_version"] = v
	}
	if v, ok := e.ValidationCategory(); ok {
		f["validation_category"] = v
	}
	if e.unknown > 0 {
		f["unknown_extensions"] = e.unknown
	}
}

// parseExtensions reads the bytes after the fixed fields of the
// authenticator data: nothing, or exactly one CBOR map with text keys. The
// two keys Apple defines must have their types (the bundle version a text
// string; the category a 4-byte little-endian byte string, or an unsigned
// integer); other keys are counted and skipped. ed is the ED flag: when it
// is set the map must be there. It does not allocate.
func parseExtensions(b []byte, ed bool) (Extensions, error) {
	const what = "authenticator data extensions"
	if len(b) == 0 {
		if ed {
			return Extensions{}, fmt.Errorf("the ED flag is set but no extension map follows")
		}
		return Extensions{}, nil
	}
	major, n, off, err := cborHead(what, b, 0)
	if err != nil {
		return Extensions{}, err
	}
	if major != majorMap {
		return Extensions{}, fmt.Errorf("%d bytes follow the fixed fields and they are not a CBOR map (found %s)", len(b), majorName(major))
	}
	// The whole map must be well-formed and within the profile (this also
	// rejects repeated keys) before any value is read.
	end, err := cborSkip(what, b, 0, 1)
	if err != nil {
		return Extensions{}, err
	}
	if end != len(b) {
		return Extensions{}, fmt.Errorf("%d bytes after the extension map", len(b)-end)
	}
	e := Extensions{present: true}
	for i := uint64(0); i < n; i++ {
		key, next, err := cborString(what, b, off, majorText)
		if err != nil {
			return Extensions{}, fmt.Errorf("map key %d is not a text string", i)
		}
		off = next
		switch string(key) {
		case extBundleVersion:
			v, next, err := cborString(what, b, off, majorText)
			if err != nil {
				return Extensions{}, fmt.Errorf("%s is not a text string", extBundleVersion)
			}
			e.bundleVersion, e.hasBundleVersion, off = v, true, next
		case extValidationCategory:
			m, arg, next, _ := cborHead(what, b, off)
			switch m {
			case majorBytes:
				if arg != 4 {
					return Extensions{}, fmt.Errorf("%s is a byte string of %d bytes, not 4", extValidationCategory, arg)
				}
				e.category = binary.LittleEndian.Uint32(b[next : next+4])
				next += 4
			case majorUint:
				if arg > 0xffffffff {
					return Extensions{}, fmt.Errorf("%s is %d, larger than 32 bits", extValidationCategory, arg)
				}
				e.category = uint32(arg)
			default:
				return Extensions{}, fmt.Errorf("%s is %s, not a 4-byte string", extValidationCategory, majorName(m))
			}
			e.hasCategory, off = true, next
		default:
			e.unknown++
			off, _ = cborSkip(what, b, off, 2)
		}
	}
	return e, nil
}

// authData is the authenticator data of an attestation, parsed.
type authData struct {
	rpIDHash     []byte
	flags        byte
	counter      uint32
	aaguid       []byte
	credentialID []byte
	coseKey      []byte // the encoded credential public key
	extensions   Extensions
}

// parseAttestedAuthData splits the authenticator data of an attestation
// into its fields (step 7 of the checklist). The credential public key is
// only delimited here, as one well-formed CBOR item; parseAttestationObject
// decodes it.
func parseAttestedAuthData(b []byte) (authData, error) {
	const fixed = authHeaderLen + aaguidLen + 2
	if len(b) < fixed {
		return authData{}, attest.Errorf(CodeAuthData, "%d bytes, shorter than the %d bytes of its fixed fields", len(b), fixed)
	}
	a := authData{rpIDHash: b[:rpIDHashLen], flags: b[rpIDHashLen], counter: binary.BigEndian.Uint32(b[rpIDHashLen+1:])}
	if a.flags&flagAT == 0 {
		return authData{}, attest.Errorf(CodeAuthData, "flags %#02x: the AT flag (attested credential data) is clear", a.flags)
	}
	a.aaguid = b[authHeaderLen : authHeaderLen+aaguidLen]
	n := int(binary.BigEndian.Uint16(b[authHeaderLen+aaguidLen:]))
	if len(b)-fixed < n {
		return authData{}, attest.Errorf(CodeAuthData, "credential id of %d bytes runs past the end of the data", n)
	}
	a.credentialID = b[fixed : fixed+n]
	off := fixed + n
	end, err := cborSkip("credential public key", b, off, 1)
	if err != nil {
		return authData{}, attest.Errorf(CodeAuthData, "credential public key: %w", err)
	}
	a.coseKey = b[off:end]
	if a.extensions, err = parseExtensions(b[end:], a.flags&flagED != 0); err != nil {
		return authData{}, attest.Errorf(CodeAuthDataTrailing, "after the credential public key: %w", err)
	}
	return a, nil
}
