// Package webauthn verifies WebAuthn attestation objects, the registration
// a browser or platform authenticator returns from
// navigator.credentials.create: the attestation object (CBOR) and the
// clientDataJSON it was made over. It parses both strictly, checks the
// client data against the server's challenge, origins and relying party,
// and verifies the attestation statement of its format, so that a passkey
// made by a Windows Hello TPM, an Android phone or an iPhone app enrolls
// through the same engine as keybind's own phone keys.
//
//	verifier := webauthn.NewVerifier() // one per server
//	v, err := verifier.Verify(attestationObject, clientDataJSON, &webauthn.Options{
//		Challenge: challenge,                        // the one-time challenge sent to the browser
//		Origins:   []string{"https://login.example.com"},
//		RPID:      "example.com",
//	})
//
// Formats: "tpm" (Windows Hello: an AIK certificate chaining to the
// Microsoft TPM Root Certificate Authority 2014, built in and pinned, and a
// TPM2_Certify of the credential key), "android-key" (the chain verified
// by package androidkey, its challenge the client data hash, its leaf key
// the credential key), "apple-appattest" (verified by package appattest,
// the App ID as RP ID), and "none" (nothing vouches for
// the key: refused unless Policy.AllowSoftwareKeys, then Trust none). Every
// format returns the same *attest.Verdict; Facts carry the credential id,
// AAGUID, counter and flags besides the format's own facts.
//
// A server keeps one Verifier (NewVerifier), which caches what all
// registrations share; the function Verify uses a Verifier of its own.
//
// Every rejection is an *attest.Error whose code names the check:
// webauthn.* for the envelope, the client data and the authenticator data,
// tpm.*, chain.* and asn1.* for the tpm format, cbor.* for CBOR, policy.*
// for what the caller's policy refuses.
package webauthn

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
)

// Codes of the attestation object, the client data and the authenticator
// data, one per check.
const (
	CodeObject          attest.Code = "webauthn.object"                // not a map of exactly fmt, attStmt and authData, or a value of the wrong type
	CodeFormat          attest.Code = "webauthn.format"                // a format keybind does not verify
	CodeClientData      attest.Code = "webauthn.client_data_malformed" // clientDataJSON is not a JSON object of the right fields and types
	CodeClientDataType  attest.Code = "webauthn.client_data_type"      // type is not webauthn.create
	CodeChallenge       attest.Code = "webauthn.challenge"             // the challenge is not the server's
	CodeOrigin          attest.Code = "webauthn.origin"                // the origin is not one the server accepts
	CodeCrossOrigin     attest.Code = "webauthn.cross_origin"          // made in a cross-origin frame
	CodeTokenBinding    attest.Code = "webauthn.token_binding"         // token binding in use, which keybind cannot check
	CodeAuthDataShort   attest.Code = "webauthn.auth_data_short"       // authenticator data shorter than its fields
	CodeAuthDataTrail   attest.Code = "webauthn.auth_data_trailing"
	CodeFlagAT          attest.Code = "webauthn.flag_at"    // AT set without attested credential data, or clear at registration
	CodeFlagED          attest.Code = "webauthn.flag_ed"    // ED set without extensions
	CodeFlagBS          attest.Code = "webauthn.flag_bs"    // backup state set on a credential that cannot be backed up
	CodeExtensions      attest.Code = "webauthn.extensions" // the extensions are not one CBOR map with text keys
	CodeCredentialID    attest.Code = "webauthn.credential_id"
	CodeRPID            attest.Code = "webauthn.rp_id" // the RP ID hash is not that of the relying party
	CodeUserPresent     attest.Code = "webauthn.user_present"
	CodeCOSEKey         attest.Code = "webauthn.cose_malformed"   // the credential key is not a well-formed COSE key
	CodeCOSEAlgorithm   attest.Code = "webauthn.cose_algorithm"   // an algorithm keybind does not accept
	CodeCOSEMismatch    attest.Code = "webauthn.cose_mismatch"    // kty, alg and crv disagree
	CodeCOSEKeyInvalid  attest.Code = "webauthn.cose_key_invalid" // not a point of the curve, an RSA key too small
	CodeNoneStatement   attest.Code = "webauthn.none_statement"   // attStmt of format none is not empty
	CodeSoftwareKey     attest.Code = "policy.software_key"       // nothing vouches for the key and the policy wants hardware
	CodeUserVerified    attest.Code = "policy.user_verification"  // the policy wants user verification and UV is clear
	CodeInputChallenge  attest.Code = "input.challenge_missing"   // no server challenge
	CodeInputOrigin     attest.Code = "input.origin"              // no accepted origin
	CodeInputRPID       attest.Code = "input.rp_id"               // no relying party ID
	CodeTPMStatement    attest.Code = "tpm.statement"             // attStmt of format tpm is not the six fields of the right types
	CodeTPMVersion      attest.Code = "tpm.version"               // ver is not "2.0"
	CodeTPMAlgorithm    attest.Code = "tpm.algorithm"             // alg is not a signature algorithm keybind accepts
	CodeTPMKeyMismatch  attest.Code = "tpm.pub_area_mismatch"     // pubArea is not the credential key
	CodeTPMExtraData    attest.Code = "tpm.extra_data_mismatch"   // certInfo is not over this registration
	CodeTPMAIKSubject   attest.Code = "tpm.aik_subject"           // the AIK certificate has a subject
	CodeTPMAAGUID       attest.Code = "tpm.aaguid_mismatch"       // the AIK certificate names another authenticator model
	CodeTPMAAGUIDFormat attest.Code = "tpm.aaguid_extension"      // the AAGUID extension is critical or not a 16-byte OCTET STRING
)

// Options configures a verification. Challenge, Origins and RPID must be
// given; every other zero value is the safe default.
type Options struct {
	// Challenge is the one-time challenge the server sent for this
	// registration (compared in constant time).
	Challenge []byte
	// Origins are the accepted origins, compared exactly
	// ("https://login.example.com").
	Origins []string
	// RPID is the relying party ID the credential is scoped to (for format
	// apple-appattest, the App ID "TEAMID.bundle.id").
	RPID string
	// Time is the validation time of certificate chains; zero means now.
	Time time.Time
	// TPMRoots are the trust anchors of the tpm format; nil means the
	// built-in Microsoft TPM Root Certificate Authority 2014 (an empty,
	// non-nil list trusts nothing).
	TPMRoots []*x509.Certificate
	// AppAttestRoots are the trust anchors of the apple-appattest format;
	// nil means the built-in Apple App Attestation Root CA.
	AppAttestRoots []*x509.Certificate
	// AppAttestAppIDs are the App IDs ("TEAMID.bundle.id") accepted for
	// format apple-appattest, whose RP ID is the App ID; nil means RPID.
	AppAttestAppIDs []string
	// AppAttestEnvironment is the App Attest environment accepted (zero:
	// production).
	AppAttestEnvironment appattest.Environment
	// AndroidRoots are the trust anchors of the android-key format; nil
	// means the built-in Google hardware attestation roots.
	AndroidRoots *androidkey.Roots
	// AndroidRevocation is the Android attestation status list every
	// certificate of an android-key chain is checked against (nil: none).
	AndroidRevocation *androidkey.StatusList
	// Policy is what the caller demands beyond a valid attestation.
	Policy Policy
}

// Policy is what the caller demands beyond a valid attestation. The zero
// value demands hardware-backed keys.
type Policy struct {
	// AllowSoftwareKeys accepts attestations that prove nothing about where
	// the key lives (format none), with Trust none.
	AllowSoftwareKeys bool
	// RequireUserVerification refuses registrations without the UV flag
	// (the person was not verified by biometric or PIN). App Attest never
	// sets it, so this refuses format apple-appattest.
	RequireUserVerification bool
	// Android is the policy of format android-key, applied by the Android
	// verifier (security level, verified boot, locked device, user
	// authentication, packages, signing digests, patch level, expiry).
	Android androidkey.Policy
}

// Verifier verifies registrations. It keeps what every registration of a
// format shares (parsed intermediate certificates and verified links, the
// built-in roots), so that a server verifies each one at the cost of its
// own certificates and signatures. It is safe for concurrent use, and its
// zero value is ready to use (with a cache of its own).
type Verifier struct {
	once    sync.Once
	cache   *attest.CertCache
	android *androidkey.Verifier
	// The App Attest verifier parses its root when made: only when an
	// apple-appattest registration comes.
	appAttestOnce sync.Once
	appAttest     *appattest.Verifier
}

// NewVerifier returns a Verifier with its own certificate cache.
func NewVerifier() *Verifier { return NewVerifierWithCache(nil) }

// NewVerifierWithCache returns a Verifier that keeps intermediate
// certificates in cache (shared, for example, with other formats'
// verifiers; nil: a cache of its own).
func NewVerifierWithCache(cache *attest.CertCache) *Verifier {
	v := &Verifier{cache: cache}
	v.init()
	return v
}

func (v *Verifier) init() {
	v.once.Do(func() {
		if v.cache == nil {
			v.cache = attest.NewCertCache(0)
		}
		v.android = androidkey.NewVerifierWithCache(v.cache)
	})
}

// Verify verifies a registration with a Verifier of its own; a server
// keeps one Verifier and calls its Verify.
func Verify(attestationObject, clientDataJSON []byte, opts *Options) (*attest.Verdict, error) {
	return new(Verifier).Verify(attestationObject, clientDataJSON, opts)
}

// Verify verifies a registration: the attestation object and the
// clientDataJSON it was made over. The checks, in order, one code each:
//
//  1. the options name a challenge, origins and an RP ID (input.*);
//  2. clientDataJSON is a JSON object without repeated members
//     (webauthn.client_data_malformed), of type webauthn.create
//     (webauthn.client_data_type), with the server's challenge
//     (webauthn.challenge) and an accepted origin (webauthn.origin), not
//     cross-origin (webauthn.cross_origin), without token binding
//     (webauthn.token_binding);
//  3. the attestation object is {fmt, attStmt, authData} in strict CBOR
//     (cbor.*, webauthn.object);
//  4. the authenticator data parses strictly (ParseAuthenticatorData), its
//     RP ID hash is SHA-256 of the RP ID (webauthn.rp_id), user presence is
//     set (webauthn.user_present), the policy's user verification is met
//     (policy.user_verification), it carries the credential
//     (webauthn.flag_at); for format apple-appattest, whose authenticator
//     data differs (no user presence, an extension map without the ED
//     flag), the App Attest verifier makes these checks;
//  5. the statement of the format verifies (webauthn.format for a format
//     keybind does not verify).
func (v *Verifier) Verify(attestationObject, clientDataJSON []byte, opts *Options) (*attest.Verdict, error) {
	v.init()
	if opts == nil {
		opts = &Options{}
	}
	switch {
	case len(opts.Challenge) == 0:
		return nil, attest.Errorf(CodeInputChallenge, "no server challenge")
	case len(opts.Origins) == 0:
		return nil, attest.Errorf(CodeInputOrigin, "no accepted origin")
	case opts.RPID == "":
		return nil, attest.Errorf(CodeInputRPID, "no relying party ID")
	}
	cd, err := ParseClientData(clientDataJSON)
	if err != nil {
		return nil, err
	}
	if err := cd.check(opts); err != nil {
		return nil, err
	}
	obj, err := parseObject(attestationObject)
	if err != nil {
		return nil, err
	}
	clientDataHash := sha256.Sum256(clientDataJSON)
	r := &registration{v: v, obj: obj, clientDataHash: clientDataHash[:], opts: opts}
	var verdict *attest.Verdict
	if obj.format == appattest.Format {
		if verdict, err = r.verifyAppAttest(); err != nil {
			return nil, err
		}
		r.addFacts(verdict, cd)
		return verdict, nil
	}
	ad, err := ParseAuthenticatorData(obj.authData)
	if err != nil {
		return nil, err
	}
	rpHash := sha256.Sum256([]byte(opts.RPID))
	if subtle.ConstantTimeCompare(ad.RPIDHash[:], rpHash[:]) != 1 {
		return nil, attest.Errorf(CodeRPID, "the RP ID hash is not SHA-256 of %q", opts.RPID)
	}
	if ad.Flags&FlagUP == 0 {
		return nil, attest.Errorf(CodeUserPresent, "the user-present flag is clear")
	}
	if opts.Policy.RequireUserVerification && ad.Flags&FlagUV == 0 {
		return nil, attest.Errorf(CodeUserVerified, "the policy requires user verification and the user-verified flag is clear")
	}
	if ad.Flags&FlagAT == 0 {
		return nil, attest.Errorf(CodeFlagAT, "a registration without attested credential data (AT clear)")
	}
	r.auth = ad
	switch obj.format {
	case "none":
		verdict, err = r.verifyNone()
	case "tpm":
		verdict, err = r.verifyTPM()
	case androidkey.Format:
		verdict, err = r.verifyAndroidKey()
	default:
		return nil, attest.Errorf(CodeFormat, "attestation format %q is not one keybind verifies", obj.format)
	}
	if err != nil {
		return nil, err
	}
	r.addFacts(verdict, cd)
	return verdict, nil
}

// registration is one attestation object being verified.
type registration struct {
	v              *Verifier
	obj            *object
	auth           *AuthenticatorData
	clientDataHash []byte
	opts           *Options
}

func (r *registration) now() time.Time {
	if r.opts.Time.IsZero() {
		return time.Now()
	}
	return r.opts.Time
}

// addFacts adds the facts every format reports.
func (r *registration) addFacts(v *attest.Verdict, cd *ClientData) {
	if v.Facts == nil {
		v.Facts = map[string]any{}
	}
	a := r.auth
	v.Facts["format"] = r.obj.format
	v.Facts["aaguid"] = formatAAGUID(a.AAGUID)
	v.Facts["credential_id"] = a.CredentialID
	v.Facts["counter"] = a.Counter
	v.Facts["user_present"] = a.Flags&FlagUP != 0
	v.Facts["user_verified"] = a.Flags&FlagUV != 0
	v.Facts["backup_eligible"] = a.Flags&FlagBE != 0
	v.Facts["backup_state"] = a.Flags&FlagBS != 0
	v.Facts["cose_algorithm"] = a.CredentialKey.Alg
	v.Facts["origin"] = cd.Origin
	if _, ok := v.Facts["public_key_algorithm"]; !ok {
		v.Facts["public_key_algorithm"] = a.CredentialKey.Algorithm()
	}
	if len(a.Extensions) > 0 {
		v.Facts["extensions"] = a.Extensions
	}
	v.PublicKey = a.CredentialKey.Key
}

func formatAAGUID(g [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// object is a decoded attestation object.
type object struct {
	raw      []byte
	format   string
	attStmt  cbor.RawMessage
	authData []byte
}

// parseObject decodes the attestation object: a CBOR map of exactly fmt
// (text), attStmt (map) and authData (bytes).
func parseObject(b []byte) (*object, error) {
	var top map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("attestation object", b, &top); err != nil {
		return nil, err
	}
	for _, k := range []string{"fmt", "attStmt", "authData"} {
		if _, ok := top[k]; !ok {
			return nil, attest.Errorf(CodeObject, "the attestation object has no %s", k)
		}
	}
	if len(top) != 3 {
		return nil, attest.Errorf(CodeObject, "the attestation object has %d members, not fmt, attStmt and authData", len(top))
	}
	o := &object{raw: b, attStmt: top["attStmt"]}
	if err := attest.UnmarshalCBOR("attestation object fmt", top["fmt"], &o.format); err != nil {
		return nil, attest.Errorf(CodeObject, "fmt is not a text string: %w", err)
	}
	if err := attest.UnmarshalCBOR("attestation object authData", top["authData"], &o.authData); err != nil {
		return nil, attest.Errorf(CodeObject, "authData is not a byte string: %w", err)
	}
	if len(o.attStmt) == 0 || o.attStmt[0]>>5 != 5 {
		return nil, attest.Errorf(CodeObject, "attStmt is not a map")
	}
	return o, nil
}

// verifyNone accepts format none: an empty statement, nothing vouches for
// the key, only a policy that allows software keys accepts it.
func (r *registration) verifyNone() (*attest.Verdict, error) {
	var stmt map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("attStmt", r.obj.attStmt, &stmt); err != nil {
		return nil, err
	}
	if len(stmt) != 0 {
		return nil, attest.Errorf(CodeNoneStatement, "the statement of format none has %d members, not none", len(stmt))
	}
	if !r.opts.Policy.AllowSoftwareKeys {
		return nil, attest.Errorf(CodeSoftwareKey, "format none proves nothing about where the key lives, and the policy accepts hardware keys only")
	}
	return &attest.Verdict{Format: "none", Trust: attest.TrustNone}, nil
}
