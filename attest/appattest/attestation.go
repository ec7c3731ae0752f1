package appattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keybind/keybind/attest"
)

// Object identifiers of the credential certificate.
var (
	oidNonce     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}
	oidOSVersion = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 7}
	// oidAppAttestEKU is the extended key usage that credential
	// certificates carry since January 2026.
	oidAppAttestEKU = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 24}
)

// The AAGUIDs of the two environments.
var (
	aaguidProduction  = [aaguidLen]byte{'a', 'p', 'p', 'a', 't', 't', 'e', 's', 't'}
	aaguidDevelopment = [aaguidLen]byte{'a', 'p', 'p', 'a', 't', 't', 'e', 's', 't', 'd', 'e', 'v', 'e', 'l', 'o', 'p'}
)

// AttestationOptions are the parameters of an attestation check. The zero
// value of each field is the safe default; ClientDataHash and AppIDs must be
// given.
type AttestationOptions struct {
	// ClientDataHash is exactly the bytes the app passed to attestKey:
	// usually SHA-256 of the server's one-time challenge (Apple's published
	// samples pass the raw challenge bytes instead).
	ClientDataHash []byte
	// AppIDs are the accepted App IDs, "TEAMID.bundle.id".
	AppIDs []string
	// Environment is the environment accepted; zero is Production.
	Environment Environment
	// Time is the validation time; zero means now.
	Time time.Time
	// Roots are the trust anchors; nil means the built-in Apple App
	// Attestation Root CA.
	Roots []*x509.Certificate
}

// Attestation is an accepted attestation.
type Attestation struct {
	// Verdict is the format-independent verdict: Format "apple-appattest",
	// Trust hardware, Root, PublicKey and every fact (environment, app_id,
	// counter, public_key_algorithm, key_id, public_key, os_version,
	// receipt, bundle_version, validation_category).
	Verdict *attest.Verdict
	// PublicKey is the attested Secure Enclave key (P-256).
	PublicKey *ecdsa.PublicKey
	// KeyID is SHA-256 of the key's uncompressed point, the app's key id.
	KeyID []byte
	// AppID is the configured App ID that matched.
	AppID string
	// Environment is Production or Development.
	Environment Environment
	// Counter is the authenticator data's counter (always 0); assertions
	// must carry a greater one.
	Counter uint32
	// OSVersion is the OS version from the credential certificate
	// (extension 1.2.840.113635.100.8.7), "" when absent.
	OSVersion string
	// Receipt is the App Attest receipt, kept for the operator (it can be
	// exchanged with Apple for fraud metrics); it is not validated here.
	Receipt []byte
	// Extensions are the iOS 27 values of the authenticator data.
	Extensions Extensions
	// Certificate is the credential certificate.
	Certificate *x509.Certificate
}

// Verifier verifies attestations. It keeps the parsed intermediate
// certificate and its verified link to the root (every App Attest chain
// shares them), so that after the first attestation each one costs the
// parse of the credential certificate and one signature check. A Verifier
// is safe for concurrent use; its zero value is ready to use, and so is one
// from NewVerifier.
type Verifier struct {
	once    sync.Once
	cache   *attest.CertCache
	apple   *x509.Certificate
	initErr error
}

// NewVerifier returns a Verifier.
func NewVerifier() *Verifier {
	v := &Verifier{}
	v.init()
	return v
}

func (v *Verifier) init() {
	v.once.Do(func() {
		v.cache = attest.NewCertCache(64)
		v.apple, v.initErr = AppleRoot()
	})
}

// attestationObject is a decoded attestation object.
type attestationObject struct {
	x5c      [][]byte
	receipt  []byte
	rawAuth  []byte
	authData authData
	coseX    []byte
	coseY    []byte
}

// coseKey is the credential public key in authData (COSE_Key, RFC 9053).
type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// parseAttestationObject decodes an attestation object (steps 1 and 7 of
// the checklist). On failure it returns nil.
func parseAttestationObject(b []byte) (*attestationObject, error) {
	var top map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("attestation object", b, &top); err != nil {
		return nil, err
	}
	if err := exactKeys("attestation object", top, "fmt", "attStmt", "authData"); err != nil {
		return nil, err
	}
	var format string
	if err := attest.UnmarshalCBOR("attestation object fmt", top["fmt"], &format); err != nil {
		return nil, err
	}
	if format != Format {
		return nil, attest.Errorf(CodeFormat, "fmt is %q, not %q", format, Format)
	}
	var stmt map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("attStmt", top["attStmt"], &stmt); err != nil {
		return nil, err
	}
	if err := exactKeys("attStmt", stmt, "x5c", "receipt"); err != nil {
		return nil, err
	}
	o := &attestationObject{}
	var x5c []cbor.RawMessage
	if err := attest.UnmarshalCBOR("attStmt x5c", stmt["x5c"], &x5c); err != nil {
		return nil, err
	}
	for i, raw := range x5c {
		c, err := byteString(fmt.Sprintf("attStmt x5c[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		o.x5c = append(o.x5c, c)
	}
	var err error
	if o.receipt, err = byteString("attStmt receipt", stmt["receipt"]); err != nil {
		return nil, err
	}
	if len(o.receipt) == 0 {
		return nil, attest.Errorf(CodeReceipt, "the receipt is empty")
	}
	if o.rawAuth, err = byteString("authData", top["authData"]); err != nil {
		return nil, err
	}
	ad, err := parseAttestedAuthData(o.rawAuth)
	if err != nil {
		return nil, err
	}
	var k coseKey
	if err := attest.UnmarshalCBOR("credential public key", ad.coseKey, &k); err != nil {
		return nil, attest.Errorf(CodeCredentialKeyCOSE, "%w", err)
	}
	if k.Kty != 2 || k.Alg != -7 || k.Crv != 1 || len(k.X) != 32 || len(k.Y) != 32 {
		return nil, attest.Errorf(CodeCredentialKeyCOSE, "the credential public key is not an ES256 P-256 key (kty %d, alg %d, crv %d, x %d bytes, y %d bytes)",
			k.Kty, k.Alg, k.Crv, len(k.X), len(k.Y))
	}
	o.authData, o.coseX, o.coseY = ad, k.X, k.Y
	return o, nil
}

// byteString decodes a CBOR byte string. (The strict profile also decodes
// an array of small integers into a []byte; no App Attest field is one.)
func byteString(what string, raw cbor.RawMessage) ([]byte, error) {
	if len(raw) == 0 || raw[0]>>5 != majorBytes {
		m := byte(0)
		if len(raw) > 0 {
			m = raw[0] >> 5
		}
		return nil, cborError(attest.CodeCBORType, what, "%s where a byte string was expected", majorName(m))
	}
	var b []byte
	if err := attest.UnmarshalCBOR(what, raw, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// exactKeys checks that a decoded map holds exactly the given keys.
func exactKeys(what string, m map[string]cbor.RawMessage, keys ...string) error {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return attest.Errorf(CodeObject, "%s has no %q", what, k)
		}
	}
	if len(m) != len(keys) {
		for k := range m {
			if !contains(keys, k) {
				return attest.Errorf(CodeObject, "%s has an unknown key %q", what, k)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// VerifyAttestation verifies an App Attest attestation object for the key
// id the app reported, and returns the attested key and every fact. The
// checks run in the order of Apple's documentation; the first that fails
// names the error.
func (v *Verifier) VerifyAttestation(attestationObject, keyID []byte, opts AttestationOptions) (*Attestation, error) {
	v.init()
	if v.initErr != nil {
		return nil, v.initErr
	}
	switch {
	case len(keyID) != sha256.Size:
		return nil, attest.Errorf(CodeKeyID, "the key id is %d bytes, not %d", len(keyID), sha256.Size)
	case len(opts.ClientDataHash) == 0:
		return nil, attest.Errorf(CodeClientDataHash, "no client data hash given")
	case len(opts.AppIDs) == 0:
		return nil, attest.Errorf(CodeAppIDs, "no App ID given")
	case opts.Environment < Production || opts.Environment > AnyEnvironment:
		return nil, attest.Errorf(CodeEnvironment, "environment %v", opts.Environment)
	}
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	roots, builtin := opts.Roots, false
	if roots == nil {
		roots, builtin = []*x509.Certificate{v.apple}, true
	}

	// 1 (and 7). Decode the object and its authenticator data.
	obj, err := parseAttestationObject(attestationObject)
	if err != nil {
		return nil, err
	}
	ad := &obj.authData

	// 2. The chain ends in a trusted root at the validation time.
	leaf, root, err := v.verifyChain(obj.x5c, roots, now)
	if err != nil {
		return nil, err
	}

	// 3. nonce = SHA-256(authData ‖ clientDataHash) is in the credential
	// certificate.
	certNonce, err := nonceExtension(leaf)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(obj.rawAuth)
	h.Write(opts.ClientDataHash)
	if nonce := h.Sum(nil); subtle.ConstantTimeCompare(nonce, certNonce) != 1 {
		return nil, attest.Errorf(CodeNonceMismatch, "SHA-256(authData ‖ clientDataHash) is not the nonce in the credential certificate")
	}

	// 4. The certificate's key hashes to the key id, which is also the
	// credential id; authData carries the same key.
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, attest.Errorf(CodeCredentialKeyType, "the credential certificate's key is not an ECDSA P-256 key")
	}
	point, err := pub.Bytes()
	if err != nil {
		return nil, attest.Errorf(CodeCredentialKeyType, "the credential certificate's key: %v", err)
	}
	if sum := sha256.Sum256(point); !bytes.Equal(sum[:], keyID) {
		return nil, attest.Errorf(CodeKeyIDMismatch, "SHA-256 of the attested key is not the key id")
	}
	if !bytes.Equal(ad.credentialID, keyID) {
		return nil, attest.Errorf(CodeCredentialID, "the credential id in authData is not the key id")
	}
	if !bytes.Equal(obj.coseX, point[1:33]) || !bytes.Equal(obj.coseY, point[33:]) {
		return nil, attest.Errorf(CodeCredentialKey, "the credential public key in authData is not the certificate's key")
	}

	// 5. The RP ID hash is SHA-256 of a configured App ID.
	appID, ok := matchAppID(ad.rpIDHash, opts.AppIDs)
	if !ok {
		return nil, attest.Errorf(CodeAppIDMismatch, "the RP ID hash is not SHA-256 of any of the %d configured App IDs", len(opts.AppIDs))
	}

	// 6. The counter is 0, and the AAGUID names an accepted environment.
	if ad.counter != 0 {
		return nil, attest.Errorf(CodeCounterNotZero, "the counter is %d, not 0", ad.counter)
	}
	var env Environment
	switch {
	case bytes.Equal(ad.aaguid, aaguidProduction[:]):
		env = Production
	case bytes.Equal(ad.aaguid, aaguidDevelopment[:]):
		env = Development
	default:
		return nil, attest.Errorf(CodeAAGUID, "AAGUID %q is neither App Attest environment", ad.aaguid)
	}
	if opts.Environment != AnyEnvironment && env != opts.Environment {
		return nil, attest.Errorf(CodeEnvironmentWrong, "the attestation was made in the %v environment, %v is accepted", env, opts.Environment)
	}

	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, attest.Errorf(CodeCredentialKeyType, "%v", err)
	}
	a := &Attestation{
		PublicKey:   pub,
		KeyID:       bytes.Clone(keyID),
		AppID:       appID,
		Environment: env,
		Counter:     ad.counter,
		OSVersion:   osVersion(leaf),
		Receipt:     obj.receipt,
		Extensions:  ad.extensions,
		Certificate: leaf,
	}
	facts := map[string]any{
		"environment":          env.String(),
		"app_id":               appID,
		"counter":              ad.counter,
		"public_key_algorithm": "ecdsa-p256",
		"key_id":               a.KeyID,
		"public_key":           spki,
		"receipt":              a.Receipt,
	}
	if a.OSVersion != "" {
		facts["os_version"] = a.OSVersion
	}
	ad.extensions.facts(facts)
	a.Verdict = &attest.Verdict{
		Format:    Format,
		Trust:     attest.TrustHardware,
		Root:      rootName(root, builtin),
		PublicKey: pub,
		Facts:     facts,
	}
	return a, nil
}

// matchAppID returns the App ID whose SHA-256 is rpIDHash.
func matchAppID(rpIDHash []byte, appIDs []string) (string, bool) {
	for _, id := range appIDs {
		if sum := sha256.Sum256([]byte(id)); bytes.Equal(sum[:], rpIDHash) {
			return id, true
		}
	}
	return "", false
}

// verifyChain checks x5c = [credential certificate, intermediate] against
// the roots at time now, and returns the credential certificate and the
// root the chain ended in. The intermediate's parse and its link to the root
// come from the cache; the credential certificate, new in every attestation,
// is parsed and checked directly so that it never displaces them.
func (v *Verifier) verifyChain(x5c [][]byte, roots []*x509.Certificate, now time.Time) (leaf, root *x509.Certificate, err error) {
	if len(x5c) != 2 {
		return nil, nil, attest.Errorf(CodeChainShape, "x5c holds %d certificates, not the credential certificate and the intermediate", len(x5c))
	}
	leaf, err = x509.ParseCertificate(x5c[0])
	if err != nil {
		return nil, nil, attest.Errorf(CodeCertificate, "credential certificate: %w", err)
	}
	inter, err := v.cache.Parse(x5c[1])
	if err != nil {
		return nil, nil, attest.Errorf(CodeCertificate, "intermediate certificate: %w", err)
	}
	for _, r := range roots {
		if r != nil && bytes.Equal(inter.RawIssuer, r.RawSubject) && v.cache.CheckSignature(inter, r) == nil {
			root = r
			break
		}
	}
	if root == nil {
		return nil, nil, attest.Errorf(CodeUntrustedRoot, "the intermediate %q is not signed by a trusted root", inter.Subject.String())
	}
	if !inter.BasicConstraintsValid || !inter.IsCA || (inter.KeyUsage != 0 && inter.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, nil, attest.Errorf(CodeNotCA, "the intermediate %q is not a certificate authority", inter.Subject.String())
	}
	if !bytes.Equal(leaf.RawIssuer, inter.RawSubject) {
		return nil, nil, attest.Errorf(CodeSignature, "the credential certificate's issuer is not the intermediate")
	}
	if err := inter.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		return nil, nil, attest.Errorf(CodeSignature, "the credential certificate's signature: %w", err)
	}
	for _, c := range [...]struct {
		name string
		cert *x509.Certificate
	}{{"credential certificate", leaf}, {"intermediate", inter}, {"root", root}} {
		switch {
		case now.Before(c.cert.NotBefore):
			return nil, nil, attest.Errorf(CodeNotYetValid, "the %s is valid from %s, after the validation time %s",
				c.name, c.cert.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		case now.After(c.cert.NotAfter):
			return nil, nil, attest.Errorf(CodeExpired, "the %s expired at %s, before the validation time %s",
				c.name, c.cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	for _, c := range []*x509.Certificate{leaf, inter} {
		if len(c.UnhandledCriticalExtensions) > 0 {
			return nil, nil, attest.Errorf(CodeCriticalExtension, "%q has an unhandled critical extension %v", c.Subject.String(), c.UnhandledCriticalExtensions[0])
		}
		if !allowsAppAttest(c) {
			return nil, nil, attest.Errorf(CodeKeyUsage, "%q has extended key usages that exclude App Attest", c.Subject.String())
		}
	}
	return leaf, root, nil
}

// allowsAppAttest reports whether a certificate's extended key usages allow
// App Attest: none at all (credential certificates before 2026), the App
// Attest usage 1.2.840.113635.100.4.24 (from January 2026), or "any".
func allowsAppAttest(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny {
			return true
		}
	}
	for _, u := range c.UnknownExtKeyUsage {
		if u.Equal(oidAppAttestEKU) {
			return true
		}
	}
	return false
}

// nonceExtension returns the nonce of the credential certificate: the
// extension 1.2.840.113635.100.8.2 holds SEQUENCE { [1] EXPLICIT OCTET
// STRING (32 bytes) }, whose only DER encoding is these 6 bytes and the
// nonce.
func nonceExtension(leaf *x509.Certificate) ([]byte, error) {
	prefix := []byte{0x30, 0x24, 0xa1, 0x22, 0x04, 0x20}
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oidNonce) {
			continue
		}
		if len(e.Value) != len(prefix)+sha256.Size || !bytes.Equal(e.Value[:len(prefix)], prefix) {
			return nil, attest.Errorf(CodeNonceMalformed, "extension 1.2.840.113635.100.8.2 is not SEQUENCE { [1] OCTET STRING (32 bytes) }")
		}
		return e.Value[len(prefix):], nil
	}
	return nil, attest.Errorf(CodeNonceMissing, "the credential certificate has no nonce extension 1.2.840.113635.100.8.2")
}

// osVersion returns the OS version in extension 1.2.840.113635.100.8.7: a
// SEQUENCE of context-specific fields, of which [1400] is the OS version as
// an OCTET STRING. It is a fact, not a check: "" when absent or unreadable.
func osVersion(leaf *x509.Certificate) string {
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oidOSVersion) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
			return ""
		}
		for b := seq.Bytes; len(b) > 0; {
			var field asn1.RawValue
			rest, err := asn1.Unmarshal(b, &field)
			if err != nil {
				return ""
			}
			b = rest
			if field.Class != asn1.ClassContextSpecific || field.Tag != 1400 {
				continue
			}
			var s []byte
			if rest, err := asn1.Unmarshal(field.Bytes, &s); err != nil || len(rest) != 0 || !validVersion(s) {
				return ""
			}
			return string(s)
		}
	}
	return ""
}

// validVersion accepts short printable version strings ("14.2", "27.0.1").
func validVersion(s []byte) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
