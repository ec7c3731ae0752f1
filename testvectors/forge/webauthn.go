package forge

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest/androidkey"
)

// COSE algorithms of WebAuthn credential keys and statements.
const (
	COSEES256 int64 = -7
	COSEEdDSA int64 = -8
	COSEES384 int64 = -35
	COSERS256 int64 = -257
	COSERS1   int64 = -65535
)

// webauthnCBOR encodes as authenticators do: definite lengths, shortest
// forms, map keys in canonical order.
var webauthnCBOR = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// WebAuthnCBOR encodes v as an authenticator encodes its CBOR.
func WebAuthnCBOR(v any) []byte {
	b, err := webauthnCBOR.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("forge: CBOR: %v", err))
	}
	return b
}

// COSEKey encodes a public key as a COSE_Key for alg, as authenticators
// put it in the attested credential data.
func COSEKey(pub crypto.PublicKey, alg int64) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv := map[elliptic.Curve]int{elliptic.P256(): 1, elliptic.P384(): 2, elliptic.P521(): 3}[k.Curve]
		size := (k.Curve.Params().BitSize + 7) / 8
		return WebAuthnCBOR(map[int]any{1: 2, 3: alg, -1: crv, -2: k.X.FillBytes(make([]byte, size)), -3: k.Y.FillBytes(make([]byte, size))}), nil
	case *rsa.PublicKey:
		return WebAuthnCBOR(map[int]any{1: 3, 3: alg, -1: k.N.Bytes(), -2: big.NewInt(int64(k.E)).Bytes()}), nil
	case ed25519.PublicKey:
		return WebAuthnCBOR(map[int]any{1: 1, 3: alg, -1: 6, -2: []byte(k)}), nil
	}
	return nil, fmt.Errorf("forge: no COSE key for %T", pub)
}

// WebAuthnRegistration is a registration to build: the authenticator data,
// the client data, and the maker of the attestation statement, which is
// called last, over the final authenticator data and client data hash, so
// that a registration changed in one field still carries a valid statement
// and fails only the check of that field.
type WebAuthnRegistration struct {
	RPID      string
	Origin    string
	Challenge []byte
	// Type is the client data type; "" means webauthn.create.
	Type string
	// ClientDataJSON, when set, replaces the client data built from the
	// fields above.
	ClientDataJSON []byte

	Flags         byte // UP|UV|AT by default, see WebAuthnFlags
	Counter       uint32
	AAGUID        [16]byte
	CredentialID  []byte
	CredentialKey []byte // COSE_Key; left out when nil
	Extensions    []byte // an encoded CBOR map, appended as is
	// RPIDHash, when set, replaces SHA-256 of RPID.
	RPIDHash []byte
	// AuthData, when set, changes the encoded authenticator data before the
	// statement is made.
	AuthData func([]byte) []byte

	Format string
	// Statement makes attStmt over the authenticator data and the client
	// data hash.
	Statement func(authData, clientDataHash []byte) (any, error)
	// Object, when set, changes the encoded attestation object.
	Object func([]byte) []byte
	// Members, when set, replaces the attestation object's members (given
	// fmt, attStmt and authData).
	Members func(format string, stmt any, authData []byte) map[string]any
}

// Default flags of a registration: user present, user verified, attested
// credential data.
const WebAuthnFlags byte = 0x01 | 0x04 | 0x40

// ClientData encodes the clientDataJSON as a browser does.
func (r *WebAuthnRegistration) ClientData() []byte {
	if r.ClientDataJSON != nil {
		return r.ClientDataJSON
	}
	typ := r.Type
	if typ == "" {
		typ = "webauthn.create"
	}
	b, err := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, base64.RawURLEncoding.EncodeToString(r.Challenge), r.Origin, false})
	if err != nil {
		panic(err)
	}
	return b
}

// AuthenticatorData encodes the authenticator data.
func (r *WebAuthnRegistration) AuthenticatorData() []byte {
	hash := r.RPIDHash
	if hash == nil {
		h := sha256.Sum256([]byte(r.RPID))
		hash = h[:]
	}
	b := append([]byte{}, hash...)
	b = append(b, r.Flags)
	b = binary.BigEndian.AppendUint32(b, r.Counter)
	if r.CredentialKey != nil {
		b = append(b, r.AAGUID[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.CredentialID)))
		b = append(b, r.CredentialID...)
		b = append(b, r.CredentialKey...)
	}
	b = append(b, r.Extensions...)
	if r.AuthData != nil {
		b = r.AuthData(b)
	}
	return b
}

// Build returns the attestation object and the clientDataJSON.
func (r *WebAuthnRegistration) Build() (object, clientDataJSON []byte, err error) {
	clientDataJSON = r.ClientData()
	authData := r.AuthenticatorData()
	cdh := sha256.Sum256(clientDataJSON)
	var stmt any = map[string]any{}
	if r.Statement != nil {
		if stmt, err = r.Statement(authData, cdh[:]); err != nil {
			return nil, nil, err
		}
	}
	members := map[string]any{"fmt": r.Format, "attStmt": stmt, "authData": authData}
	if r.Members != nil {
		members = r.Members(r.Format, stmt, authData)
	}
	object = WebAuthnCBOR(members)
	if r.Object != nil {
		object = r.Object(object)
	}
	return object, clientDataJSON, nil
}

// WebAuthnCase is a registration and the verdict keybind must reach:
// Code "" to accept, else the error code. Policy knobs say what the
// verifier is asked to demand.
type WebAuthnCase struct {
	Name        string
	Description string
	Object      []byte
	ClientData  []byte
	Code        string
	// AllowSoftwareKeys and RequireUserVerification are the policy of the
	// check.
	AllowSoftwareKeys       bool
	RequireUserVerification bool
	// RPID, when set, is the RP ID of the check (App Attest: the App ID).
	RPID string
	// Policy, when set, is the policy of the check as a vector writes it
	// (the android-key policy object); AllowSoftwareKeys and
	// RequireUserVerification add min_security_level software and
	// require_user_auth to it.
	Policy map[string]any
	// Roots are the trust anchors of the check (DER); nil means the
	// verifier's built-in roots for the format.
	Roots [][]byte
	// Time is the validation time of the check; zero means any.
	Time time.Time
	// Facts are facts an accepted registration must report.
	Facts map[string]any
}

// WebAuthnNone returns a registration of format none: a fresh P-256
// credential key, nothing vouching for it.
func WebAuthnNone(rpID, origin string, challenge []byte) (WebAuthnRegistration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return WebAuthnRegistration{}, err
	}
	cose, err := COSEKey(&key.PublicKey, COSEES256)
	if err != nil {
		return WebAuthnRegistration{}, err
	}
	id := make([]byte, 32)
	rand.Read(id)
	return WebAuthnRegistration{
		RPID: rpID, Origin: origin, Challenge: challenge, Flags: WebAuthnFlags,
		CredentialID: id, CredentialKey: cose, Format: "none",
	}, nil
}

// WebAuthnEnvelopeCases changes one field of the envelope of a valid
// registration at a time (client data, authenticator data, credential key,
// attestation object), each a case refused with the code of its check, plus
// the valid registration itself and variants keybind accepts. base is not
// changed. allowSoftware, roots and when are the policy, trust anchors and
// validation time the cases are checked under.
func WebAuthnEnvelopeCases(base WebAuthnRegistration, prefix string, allowSoftware bool, roots [][]byte, when time.Time) ([]WebAuthnCase, error) {
	var cases []WebAuthnCase
	var firstErr error
	add := func(name, desc, code string, change func(r *WebAuthnRegistration), policy ...func(c *WebAuthnCase)) {
		r := base
		r.CredentialID = bytes.Clone(base.CredentialID)
		if change != nil {
			change(&r)
		}
		obj, cd, err := r.Build()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("forge: case %s: %w", name, err)
		}
		c := WebAuthnCase{Name: prefix + name, Description: desc, Object: obj, ClientData: cd, Code: code, AllowSoftwareKeys: allowSoftware, Roots: roots, Time: when}
		for _, p := range policy {
			p(&c)
		}
		cases = append(cases, c)
	}
	requireUV := func(c *WebAuthnCase) { c.RequireUserVerification = true }
	setFlags := func(set, clear byte) func(r *WebAuthnRegistration) {
		return func(r *WebAuthnRegistration) { r.Flags = (r.Flags | set) &^ clear }
	}
	rawCD := func(s string) func(r *WebAuthnRegistration) {
		return func(r *WebAuthnRegistration) { r.ClientDataJSON = []byte(s) }
	}
	chal := base64.RawURLEncoding.EncodeToString(base.Challenge)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	x, y := ecKey.X.FillBytes(make([]byte, 32)), ecKey.Y.FillBytes(make([]byte, 32))
	cose := func(m map[int]any) func(r *WebAuthnRegistration) {
		return func(r *WebAuthnRegistration) { r.CredentialKey = WebAuthnCBOR(m) }
	}

	// Accepted variants.
	add("accept/user-verified", "user verified, under a policy that requires it", "", nil, requireUV)
	add("accept/extensions", "with an extension output (credProps) and the ED flag", "", func(r *WebAuthnRegistration) {
		r.Flags |= 0x80
		r.Extensions = WebAuthnCBOR(map[string]any{"credProps": map[string]any{"rk": true}})
	})
	add("accept/backup-eligible", "a backup-eligible credential, backed up (BE and BS)", "", setFlags(0x18, 0))

	// Client data.
	add("reject/client-data-type", "client data of type webauthn.get", "webauthn.client_data_type", func(r *WebAuthnRegistration) { r.Type = "webauthn.get" })
	add("reject/challenge", "client data with another challenge", "webauthn.challenge", func(r *WebAuthnRegistration) { r.Challenge = append([]byte("x"), r.Challenge...) })
	add("reject/origin", "client data from another origin", "webauthn.origin", func(r *WebAuthnRegistration) { r.Origin = "https://evil.example" })
	add("reject/cross-origin", "client data made in a cross-origin frame", "webauthn.cross_origin",
		rawCD(fmt.Sprintf(`{"type":"webauthn.create","challenge":%q,"origin":%q,"crossOrigin":true,"topOrigin":"https://evil.example"}`, chal, base.Origin)))
	add("reject/token-binding", "client data with token binding in use", "webauthn.token_binding",
		rawCD(fmt.Sprintf(`{"type":"webauthn.create","challenge":%q,"origin":%q,"tokenBinding":{"status":"present","id":"AAAA"}}`, chal, base.Origin)))
	add("reject/client-data-duplicate", "client data with the challenge member twice", "webauthn.client_data_malformed",
		rawCD(fmt.Sprintf(`{"type":"webauthn.create","challenge":"AAAA","origin":%q,"challenge":%q}`, base.Origin, chal)))
	add("reject/client-data-padded-challenge", "client data with a padded base64url challenge", "webauthn.client_data_malformed",
		rawCD(fmt.Sprintf(`{"type":"webauthn.create","challenge":%q,"origin":%q}`, base64.URLEncoding.EncodeToString(base.Challenge)+"==", base.Origin)))
	add("reject/client-data-not-json", "client data that is not JSON", "webauthn.client_data_malformed", rawCD(`type=webauthn.create`))
	add("reject/client-data-no-origin", "client data without an origin", "webauthn.client_data_malformed",
		rawCD(fmt.Sprintf(`{"type":"webauthn.create","challenge":%q}`, chal)))

	// Authenticator data.
	add("reject/rp-id", "authenticator data for another RP ID", "webauthn.rp_id", func(r *WebAuthnRegistration) {
		h := sha256.Sum256([]byte("evil.example"))
		r.RPIDHash = h[:]
	})
	add("reject/user-not-present", "the user-present flag clear", "webauthn.user_present", setFlags(0, 0x01))
	add("reject/user-not-verified", "the user-verified flag clear, under a policy that requires it", "policy.user_verification", setFlags(0, 0x04), requireUV)
	add("reject/at-clear", "attested credential data present with the AT flag clear", "webauthn.auth_data_trailing", setFlags(0, 0x40))
	add("reject/no-credential", "no attested credential data and the AT flag clear", "webauthn.flag_at", func(r *WebAuthnRegistration) {
		r.Flags &^= 0x40
		r.CredentialKey = nil
	})
	add("reject/at-without-data", "the AT flag set and no attested credential data", "webauthn.flag_at", func(r *WebAuthnRegistration) { r.CredentialKey = nil })
	add("reject/ed-without-extensions", "the ED flag set and no extensions", "webauthn.flag_ed", setFlags(0x80, 0))
	add("reject/extensions-without-ed", "extensions present with the ED flag clear", "webauthn.auth_data_trailing", func(r *WebAuthnRegistration) {
		r.Extensions = WebAuthnCBOR(map[string]any{"credProps": map[string]any{"rk": true}})
	})
	add("reject/extensions-not-a-map", "the ED flag set and the extensions an integer", "webauthn.extensions", func(r *WebAuthnRegistration) {
		r.Flags |= 0x80
		r.Extensions = []byte{0x01}
	})
	add("reject/extensions-empty", "the ED flag set and the extensions an empty map", "webauthn.flag_ed", func(r *WebAuthnRegistration) {
		r.Flags |= 0x80
		r.Extensions = WebAuthnCBOR(map[string]any{})
	})
	add("reject/extensions-integer-keys", "the ED flag set and the extensions keyed by integers", "webauthn.extensions", func(r *WebAuthnRegistration) {
		r.Flags |= 0x80
		r.Extensions = WebAuthnCBOR(map[int]any{1: true})
	})
	add("reject/backup-state-not-eligible", "backup state set, backup eligible clear", "webauthn.flag_bs", setFlags(0x10, 0x08))
	add("reject/trailing-byte", "a byte after the credential public key", "webauthn.auth_data_trailing", func(r *WebAuthnRegistration) {
		r.AuthData = func(b []byte) []byte { return append(b, 0) }
	})
	add("reject/truncated", "authenticator data cut inside the credential id", "webauthn.auth_data_short", func(r *WebAuthnRegistration) {
		r.AuthData = func(b []byte) []byte { return b[:37+16+2+len(r.CredentialID)/2] }
	})
	add("reject/too-short", "authenticator data of 36 bytes", "webauthn.auth_data_short", func(r *WebAuthnRegistration) {
		r.AuthData = func(b []byte) []byte { return b[:36] }
	})
	add("reject/empty-credential-id", "a credential id of 0 bytes", "webauthn.credential_id", func(r *WebAuthnRegistration) { r.CredentialID = nil })
	add("reject/long-credential-id", "a credential id of 1024 bytes", "webauthn.credential_id", func(r *WebAuthnRegistration) { r.CredentialID = make([]byte, 1024) })

	// Credential public key.
	add("reject/cose-unknown-algorithm", "a credential key with algorithm -999", "webauthn.cose_algorithm",
		cose(map[int]any{1: 2, 3: -999, -1: 1, -2: x, -3: y}))
	add("reject/cose-rs1", "an RSA credential key with RS1 (SHA-1)", "webauthn.cose_algorithm",
		cose(map[int]any{1: 3, 3: COSERS1, -1: make([]byte, 256), -2: []byte{1, 0, 1}}))
	add("reject/cose-kty-alg", "a credential key of kty RSA with algorithm ES256", "webauthn.cose_mismatch",
		cose(map[int]any{1: 3, 3: COSEES256, -1: x, -2: y}))
	add("reject/cose-crv-alg", "a credential key on P-384 with algorithm ES256", "webauthn.cose_mismatch",
		cose(map[int]any{1: 2, 3: COSEES256, -1: 2, -2: x, -3: y}))
	add("reject/cose-missing-y", "an EC2 credential key without y", "webauthn.cose_malformed",
		cose(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x}))
	add("reject/cose-unknown-parameter", "an EC2 credential key with parameter -4", "webauthn.cose_malformed",
		cose(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x, -3: y, -4: []byte{1}}))
	add("reject/cose-short-x", "an EC2 credential key with a 31-byte x", "webauthn.cose_malformed",
		cose(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x[1:], -3: y}))
	add("reject/cose-not-on-curve", "an EC2 credential key whose point is not on P-256", "webauthn.cose_key_invalid",
		cose(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x, -3: append(bytes.Clone(y[:31]), y[31]^1)}))
	add("reject/cose-rsa-1024", "an RSA-1024 credential key", "webauthn.cose_key_invalid",
		cose(map[int]any{1: 3, 3: COSERS256, -1: append([]byte{0xc1}, make([]byte, 127)...), -2: []byte{1, 0, 1}}))
	add("reject/cose-alg-text", "a credential key whose alg is text", "webauthn.cose_malformed",
		cose(map[int]any{1: 2, 3: "ES256", -1: 1, -2: x, -3: y}))
	add("reject/cose-duplicate-label", "a credential key with kty twice", "cbor.duplicate_key", func(r *WebAuthnRegistration) {
		r.CredentialKey = append([]byte{0xa6, 0x01, 0x02}, WebAuthnCBOR(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x, -3: y})[1:]...)
	})
	add("reject/cose-indefinite", "a credential key encoded as an indefinite-length map", "cbor.indefinite_length", func(r *WebAuthnRegistration) {
		k := WebAuthnCBOR(map[int]any{1: 2, 3: COSEES256, -1: 1, -2: x, -3: y})
		r.CredentialKey = append(append([]byte{0xbf}, k[1:]...), 0xff)
	})
	add("reject/cose-not-a-map", "a credential key that is a byte string", "cbor.type", func(r *WebAuthnRegistration) {
		r.CredentialKey = WebAuthnCBOR(x)
	})

	// Attestation object.
	add("reject/object-extra-member", "an attestation object with a fourth member", "webauthn.object", func(r *WebAuthnRegistration) {
		r.Members = func(f string, s any, a []byte) map[string]any {
			return map[string]any{"fmt": f, "attStmt": s, "authData": a, "ep": true}
		}
	})
	add("reject/object-no-fmt", "an attestation object without fmt", "webauthn.object", func(r *WebAuthnRegistration) {
		r.Members = func(f string, s any, a []byte) map[string]any { return map[string]any{"attStmt": s, "authData": a} }
	})
	add("reject/object-auth-data-text", "an attestation object whose authData is text", "webauthn.object", func(r *WebAuthnRegistration) {
		r.Members = func(f string, s any, a []byte) map[string]any {
			return map[string]any{"fmt": f, "attStmt": s, "authData": string(a)}
		}
	})
	add("reject/unknown-format", "an attestation object of format packed", "webauthn.format", func(r *WebAuthnRegistration) { r.Format = "packed" })
	add("reject/object-trailing", "a byte after the attestation object", "cbor.trailing_bytes", func(r *WebAuthnRegistration) {
		r.Object = func(b []byte) []byte { return append(b, 0) }
	})
	add("reject/object-tag", "the attestation object inside a CBOR tag", "cbor.tag", func(r *WebAuthnRegistration) {
		r.Object = func(b []byte) []byte { return append([]byte{0xd8, 0x18}, b...) }
	})
	add("reject/object-not-cbor", "an attestation object cut in its middle", "cbor.malformed", func(r *WebAuthnRegistration) {
		r.Object = func(b []byte) []byte { return b[:len(b)/2] }
	})
	return cases, firstErr
}

// WebAuthnAppAttestCases makes registrations of format apple-appattest with
// ca (App Attest objects over the hash of a WebAuthn clientDataJSON, the
// App ID as the RP ID): valid ones, and one refused per check WebAuthn adds
// or routes to the App Attest verifier. The cases trust ca's root at
// ca.Now, unless they say otherwise.
func WebAuthnAppAttestCases(ca *AppAttestCA, prefix, appID, origin string, challenge []byte) ([]WebAuthnCase, error) {
	var cases []WebAuthnCase
	roots := [][]byte{ca.Root.Raw}
	add := func(name, desc, code string, clientData []byte, opts AppAttestOptions, change func(c *WebAuthnCase)) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		if opts.AppID == "" {
			opts.AppID = appID
		}
		if opts.ClientDataHash == nil {
			h := sha256.Sum256(clientData)
			opts.ClientDataHash = h[:]
		}
		a, err := ca.Attest(key, opts)
		if err != nil {
			return fmt.Errorf("forge: case %s: %w", name, err)
		}
		c := WebAuthnCase{Name: prefix + name, Description: desc, Object: a.Object, ClientData: clientData, Code: code, RPID: appID, Roots: roots, Time: ca.Now}
		if change != nil {
			change(&c)
		}
		cases = append(cases, c)
		return nil
	}
	reg := WebAuthnRegistration{Origin: origin, Challenge: challenge}
	cd := reg.ClientData()
	other := WebAuthnRegistration{Origin: origin, Challenge: append([]byte("x"), challenge...)}
	otherHash := sha256.Sum256(other.ClientData())
	steps := []error{
		add("accept/production", "an App Attest attestation (production) over the hash of the clientDataJSON", "", cd, AppAttestOptions{},
			func(c *WebAuthnCase) {
				c.Facts = map[string]any{"format": "apple-appattest", "environment": "production", "app_id": appID, "public_key_algorithm": "ecdsa-p256", "counter": 0}
			}),
		add("accept/ios27-extensions", "with the extension map iOS 27 appends without the ED flag", "", cd,
			AppAttestOptions{Extensions: &AppAttestExtensions{BundleVersion: "42", ValidationCategory: 1}},
			func(c *WebAuthnCase) { c.Facts = map[string]any{"bundle_version": "42"} }),
		add("reject/challenge", "client data with another challenge than the server's", "webauthn.challenge", other.ClientData(), AppAttestOptions{}, nil),
		add("reject/client-data-hash", "attested over the hash of other client data", "appattest.nonce_mismatch", cd,
			AppAttestOptions{ClientDataHash: otherHash[:]}, nil),
		add("reject/app-id", "attested for another App ID than the RP ID", "appattest.app_id_mismatch", cd,
			AppAttestOptions{AppID: "TEAMID0000.com.example.other"}, nil),
		add("reject/development", "made in the development environment, production required", "appattest.environment_mismatch", cd,
			AppAttestOptions{Development: true}, nil),
		add("reject/user-verification", "under a policy that requires user verification, which App Attest does not attest", "policy.user_verification", cd,
			AppAttestOptions{}, func(c *WebAuthnCase) { c.RequireUserVerification = true }),
		add("reject/builtin-root", "checked against the built-in Apple root, which did not issue the test CA", "chain.untrusted_root", cd,
			AppAttestOptions{}, func(c *WebAuthnCase) { c.Roots = nil }),
		add("reject/credential-id-length", "a credential id of 16 bytes, no App Attest key id", "appattest.credential_id_mismatch", cd,
			AppAttestOptions{CredentialID: make([]byte, 16)}, nil),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	return cases, nil
}

// WebAuthnAndroidCases makes registrations of format android-key with ca:
// the attested key is the credential key, its KeyDescription challenge the
// client data hash, its signature over authenticatorData‖clientDataHash in
// the statement. Valid ones (TEE, StrongBox, RSA, user authentication,
// software under a policy that allows it), and one refused per check
// WebAuthn adds or routes to the Android verifier. The cases trust ca's
// root at ca.Time.
func WebAuthnAndroidCases(ca *AndroidCA, prefix, rpID, origin string, challenge []byte) ([]WebAuthnCase, error) {
	var cases []WebAuthnCase
	roots := [][]byte{ca.Root.Cert.Raw}
	type variant struct {
		key       AndroidKey
		alg       int64
		otherCOSE bool   // the COSE key of another key than the attested one
		otherSig  bool   // sig by another key
		challenge []byte // KeyDescription challenge instead of the client data hash
		members   func(map[string]any)
		policy    map[string]any // the vector policy
		rootsNil  bool
		wantFacts map[string]any
	}
	add := func(name, desc, code string, v variant) error {
		reg := WebAuthnRegistration{RPID: rpID, Origin: origin, Challenge: challenge, Flags: WebAuthnFlags, Format: "android-key"}
		cdh := sha256.Sum256(reg.ClientData())
		k := v.key
		k.Challenge = cdh[:]
		if v.challenge != nil {
			k.Challenge = v.challenge
		}
		a, err := ca.Attest(k)
		if err != nil {
			return fmt.Errorf("forge: case %s: %w", name, err)
		}
		alg := v.alg
		if alg == 0 {
			alg = COSEES256
		}
		coseKey := a.Leaf.PublicKey
		signer := a.Key
		if v.otherCOSE || v.otherSig {
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			if v.otherCOSE {
				coseKey = &other.PublicKey
			} else {
				signer = other
			}
		}
		if reg.CredentialKey, err = COSEKey(coseKey, webauthnKeyAlg(coseKey, alg)); err != nil {
			return err
		}
		reg.CredentialID = make([]byte, 32)
		rand.Read(reg.CredentialID)
		reg.Statement = func(authData, clientDataHash []byte) (any, error) {
			msg := append(append([]byte{}, authData...), clientDataHash...)
			var sig []byte
			var err error
			switch s := signer.(type) {
			case *rsa.PrivateKey:
				h := sha256.Sum256(msg)
				sig, err = rsa.SignPKCS1v15(rand.Reader, s, crypto.SHA256, h[:])
			case *ecdsa.PrivateKey:
				h := sha256.Sum256(msg)
				sig, err = ecdsa.SignASN1(rand.Reader, s, h[:])
			default:
				err = fmt.Errorf("forge: no WebAuthn signature with %T", signer)
			}
			if err != nil {
				return nil, err
			}
			m := map[string]any{"alg": alg, "sig": sig, "x5c": a.Chain}
			if v.members != nil {
				v.members(m)
			}
			return m, nil
		}
		obj, cd, err := reg.Build()
		if err != nil {
			return fmt.Errorf("forge: case %s: %w", name, err)
		}
		c := WebAuthnCase{Name: prefix + name, Description: desc, Object: obj, ClientData: cd, Code: code, Roots: roots, Time: ca.Time, Policy: v.policy, Facts: v.wantFacts}
		if v.rootsNil {
			c.Roots = nil
		}
		cases = append(cases, c)
		return nil
	}
	steps := []error{
		add("accept/tee-ecdsa-p256", "an ECDSA P-256 key in a TEE, its attestation challenge the client data hash", "", variant{
			wantFacts: map[string]any{"format": "android-key", "security_level": "tee", "public_key_algorithm": "ecdsa-p256", "package": "com.keybind.test"}}),
		add("accept/strongbox", "a key in StrongBox", "", variant{key: AndroidKey{Level: "strongbox"}, wantFacts: map[string]any{"security_level": "strongbox"}}),
		add("accept/rsa-2048", "an RSA-2048 key (RS256)", "", variant{key: AndroidKey{Algorithm: "rsa-2048"}, alg: COSERS256,
			wantFacts: map[string]any{"public_key_algorithm": "rsa-2048"}}),
		add("accept/user-auth", "a key usable only after user authentication, under a policy that requires it", "", variant{
			key: AndroidKey{UserAuth: true}, policy: map[string]any{"require_user_auth": true}}),
		add("accept/software-allowed", "a software attestation, under a policy that allows software keys", "", variant{
			key: AndroidKey{Level: "software"}, policy: map[string]any{"min_security_level": "software"},
			wantFacts: map[string]any{"security_level": "software"}}),
		add("reject/software", "a software attestation under the default policy", "policy.security_level", variant{key: AndroidKey{Level: "software"}}),
		add("reject/challenge", "an attestation challenge other than the client data hash", "android.challenge_mismatch", variant{challenge: []byte("another challenge")}),
		add("reject/credential-key", "a credential key other than the attested key", "android.credential_key", variant{otherCOSE: true}),
		add("reject/signature", "sig by another key than the attested key", "android.signature", variant{otherSig: true}),
		add("reject/algorithm", "alg -999", "android.algorithm", variant{members: func(m map[string]any) { m["alg"] = -999 }}),
		add("reject/statement-member", "a statement with a fourth member", "android.statement", variant{members: func(m map[string]any) { m["ver"] = "1" }}),
		add("reject/statement-x5c-text", "a statement whose x5c is text", "android.statement", variant{members: func(m map[string]any) { m["x5c"] = "none" }}),
		add("reject/user-auth", "a key usable without user authentication, under a policy that requires it", "policy.user_auth", variant{
			policy: map[string]any{"require_user_auth": true}}),
		add("reject/unverified-boot", "a device whose verified boot state is unverified", "policy.verified_boot", variant{
			key: AndroidKey{BootState: androidkey.Unverified}}),
		add("reject/all-applications", "a key usable by every application", "android.all_applications", variant{
			key: AndroidKey{Edit: func(d *androidkey.KeyDescription) { d.HardwareEnforced.AllApplications = true }}}),
		add("reject/builtin-roots", "checked against the built-in Google roots, which did not issue the test CA", "chain.untrusted_root", variant{rootsNil: true}),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	return cases, nil
}

// webauthnKeyAlg is the COSE algorithm of a credential key: alg for keys
// of its type, else the usual one of the key's type.
func webauthnKeyAlg(key crypto.PublicKey, alg int64) int64 {
	switch key.(type) {
	case *rsa.PublicKey:
		if alg == COSERS256 {
			return alg
		}
		return COSERS256
	}
	if alg == COSERS256 {
		return COSEES256
	}
	return alg
}
