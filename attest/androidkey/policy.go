package androidkey

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Policy is what a caller demands of an attested key beyond a valid
// attestation. Its zero value is the safe default: at least a TEE, verified
// boot and a locked bootloader required, user authentication not required,
// any package, expiry policy "google".
type Policy struct {
	// MinSecurityLevel is the weakest acceptable security level (zero:
	// TrustedEnvironment). Software is never accepted unless named here.
	MinSecurityLevel SecurityLevel
	// AllowUnverifiedBoot accepts a verified boot state other than
	// Verified (self-signed, unverified, failed).
	AllowUnverifiedBoot bool
	// AllowUnlockedDevice accepts an unlocked bootloader.
	AllowUnlockedDevice bool
	// RequireUserAuth demands that the key can only be used after the
	// person authenticates (biometric or PIN): in the enforcing list,
	// noAuthRequired absent and userAuthType naming a password or a
	// biometric.
	RequireUserAuth bool
	// Packages, when not empty, lists the allowed package names: every
	// package of the attestation application id must be in it.
	Packages []string
	// SigningDigests, when not empty, lists the allowed SHA-256 digests of
	// app signing certificates: every digest of the attestation
	// application id must be in it.
	SigningDigests [][]byte
	// MinOSPatchLevel, when not zero, is the oldest acceptable OS patch
	// level, YYYYMM.
	MinOSPatchLevel int
	// Expiry says how certificate validity periods are checked.
	Expiry Expiry
}

// Expiry is a policy for certificate validity periods.
type Expiry int

const (
	// ExpiryGoogle (the default): remotely provisioned chains (Google's
	// "Droid CA" intermediates, short-lived attestation keys) must be
	// inside their validity; factory-provisioned chains are accepted past
	// their certificates' expiry (devices keep their factory keys for
	// life), though a certificate not yet valid is refused; the leaf's
	// validity is never checked (the device sets it) and the anchor is
	// trusted by its key, not by its certificate's dates.
	ExpiryGoogle Expiry = iota
	// ExpiryStrict: every certificate of the chain, leaf and root
	// certificate included, must be inside its validity.
	ExpiryStrict
	// ExpiryIgnore: validity periods are not checked.
	ExpiryIgnore
)

// String returns "google", "strict" or "ignore".
func (e Expiry) String() string {
	switch e {
	case ExpiryGoogle:
		return "google"
	case ExpiryStrict:
		return "strict"
	case ExpiryIgnore:
		return "ignore"
	}
	return fmt.Sprintf("Expiry(%d)", int(e))
}

// ParseExpiry parses "google", "strict" or "ignore".
func ParseExpiry(s string) (Expiry, error) {
	for _, e := range []Expiry{ExpiryGoogle, ExpiryStrict, ExpiryIgnore} {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown expiry policy %q (want google, strict or ignore)", s)
}

// Validate reports a policy that cannot be applied (an unknown level or
// expiry policy, a digest that is not 32 bytes, an impossible patch level).
func (p *Policy) Validate() error {
	switch p.MinSecurityLevel {
	case 0, Software, TrustedEnvironment, StrongBox:
	default:
		return fmt.Errorf("min_security_level: unknown level %d", int(p.MinSecurityLevel))
	}
	switch p.Expiry {
	case ExpiryGoogle, ExpiryStrict, ExpiryIgnore:
	default:
		return fmt.Errorf("expiry: unknown policy %d", int(p.Expiry))
	}
	for i, d := range p.SigningDigests {
		if len(d) != 32 {
			return fmt.Errorf("signing_digests[%d]: %d bytes, a SHA-256 digest has 32", i, len(d))
		}
	}
	for i, name := range p.Packages {
		if name == "" {
			return fmt.Errorf("packages[%d]: empty package name", i)
		}
	}
	if p.MinOSPatchLevel != 0 {
		if err := checkPatchLevel(p.MinOSPatchLevel); err != nil {
			return fmt.Errorf("min_os_patch_level: %v", err)
		}
	}
	return nil
}

func checkPatchLevel(v int) error {
	if y, m := v/100, v%100; y < 1970 || y > 9999 || m < 1 || m > 12 {
		return fmt.Errorf("%d is not a YYYYMM patch level", v)
	}
	return nil
}

func (p *Policy) minLevel() SecurityLevel {
	if p.MinSecurityLevel == 0 {
		return TrustedEnvironment
	}
	return p.MinSecurityLevel
}

// policyJSON is the JSON form of a Policy, in the field names of the test
// vector format. Pointers tell an absent field (the default) from a given
// one.
type policyJSON struct {
	MinSecurityLevel    *string  `json:"min_security_level,omitempty"`
	RequireVerifiedBoot *bool    `json:"require_verified_boot,omitempty"`
	RequireDeviceLocked *bool    `json:"require_device_locked,omitempty"`
	RequireUserAuth     *bool    `json:"require_user_auth,omitempty"`
	Packages            []string `json:"packages,omitempty"`
	SigningDigests      []string `json:"signing_digests,omitempty"`
	MinOSPatchLevel     *int     `json:"min_os_patch_level,omitempty"`
	Expiry              *string  `json:"expiry,omitempty"`
}

// ParsePolicy reads a policy from its JSON form, the one the test vectors,
// `keybind attest android --policy` and tenant policies use:
//
//	{
//	  "min_security_level": "software" | "tee" | "strongbox",   default "tee"
//	  "require_verified_boot": true | false,                     default true
//	  "require_device_locked": true | false,                     default true
//	  "require_user_auth": true | false,                         default false
//	  "packages": ["com.example.app", …],                        default any
//	  "signing_digests": ["hex:…" | "b64:…" | "b64url:…", …],    default any
//	  "min_os_patch_level": YYYYMM,                              default none
//	  "expiry": "google" | "strict" | "ignore"                   default "google"
//	}
//
// Absent fields take their defaults; an unknown field, a value of the wrong
// type or data after the object is an error. Signing digests are byte
// values with the vector format's prefixes (hex:, b64:, b64url:) and must
// be 32 bytes.
func ParsePolicy(data []byte) (Policy, error) {
	var j policyJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return Policy{}, fmt.Errorf("policy: %v", err)
	}
	if d.More() {
		return Policy{}, errors.New("policy: data after the JSON object")
	}
	var p Policy
	var err error
	if j.MinSecurityLevel != nil {
		if p.MinSecurityLevel, err = ParseSecurityLevel(*j.MinSecurityLevel); err != nil {
			return Policy{}, fmt.Errorf("policy: min_security_level: %v", err)
		}
	}
	if j.RequireVerifiedBoot != nil {
		p.AllowUnverifiedBoot = !*j.RequireVerifiedBoot
	}
	if j.RequireDeviceLocked != nil {
		p.AllowUnlockedDevice = !*j.RequireDeviceLocked
	}
	if j.RequireUserAuth != nil {
		p.RequireUserAuth = *j.RequireUserAuth
	}
	p.Packages = j.Packages
	for i, s := range j.SigningDigests {
		b, err := decodeDigest(s)
		if err != nil {
			return Policy{}, fmt.Errorf("policy: signing_digests[%d]: %v", i, err)
		}
		p.SigningDigests = append(p.SigningDigests, b)
	}
	if j.MinOSPatchLevel != nil {
		p.MinOSPatchLevel = *j.MinOSPatchLevel
		if p.MinOSPatchLevel == 0 {
			return Policy{}, errors.New("policy: min_os_patch_level: 0 is not a YYYYMM patch level")
		}
	}
	if j.Expiry != nil {
		if p.Expiry, err = ParseExpiry(*j.Expiry); err != nil {
			return Policy{}, fmt.Errorf("policy: expiry: %v", err)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("policy: %v", err)
	}
	return p, nil
}

// MarshalJSON writes the policy in the form ParsePolicy reads, every field
// explicit (signing digests as hex: values).
func (p Policy) MarshalJSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	level := p.minLevel().String()
	verified, locked, auth := !p.AllowUnverifiedBoot, !p.AllowUnlockedDevice, p.RequireUserAuth
	expiry := p.Expiry.String()
	j := policyJSON{
		MinSecurityLevel:    &level,
		RequireVerifiedBoot: &verified,
		RequireDeviceLocked: &locked,
		RequireUserAuth:     &auth,
		Packages:            p.Packages,
		Expiry:              &expiry,
	}
	for _, d := range p.SigningDigests {
		j.SigningDigests = append(j.SigningDigests, "hex:"+hex.EncodeToString(d))
	}
	if p.MinOSPatchLevel != 0 {
		j.MinOSPatchLevel = &p.MinOSPatchLevel
	}
	return json.Marshal(j)
}

// UnmarshalJSON is ParsePolicy.
func (p *Policy) UnmarshalJSON(data []byte) error {
	q, err := ParsePolicy(data)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// decodeDigest decodes a 32-byte value written with a prefix of the vector
// format.
func decodeDigest(s string) ([]byte, error) {
	prefix, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%q has no prefix (hex:, b64: or b64url:)", s)
	}
	var b []byte
	var err error
	switch prefix {
	case "hex":
		b, err = hex.DecodeString(rest)
	case "b64":
		b, err = base64.StdEncoding.WithPadding(base64.NoPadding).Strict().DecodeString(strings.TrimRight(rest, "="))
	case "b64url":
		b, err = base64.URLEncoding.WithPadding(base64.NoPadding).Strict().DecodeString(strings.TrimRight(rest, "="))
	default:
		return nil, fmt.Errorf("unknown prefix %q (want hex:, b64: or b64url:)", prefix)
	}
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%d bytes, a SHA-256 digest has 32", len(b))
	}
	return b, nil
}
