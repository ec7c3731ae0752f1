package androidkey

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keybind/keybind/attest"
)

// Format is the verdict's format name.
const Format = "android-key"

// Object identifiers of the two Android extensions.
var (
	// OIDKeyDescription marks an attested key's certificate (the leaf).
	OIDKeyDescription = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 1, 17}
	// OIDProvisioningInfo is carried by remotely provisioned attestation
	// key certificates.
	OIDProvisioningInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 1, 30}
)

// Bounds on the input.
const (
	// MaxChainLength bounds the number of certificates in a chain (real
	// chains have four or five).
	MaxChainLength = 10
	// MaxCertificateSize bounds one certificate's DER.
	MaxCertificateSize = 32 << 10
)

// Error codes, one per check, in the order the checks run. Every rejection
// is an *attest.Error carrying one of them (CodeKeyDescription, the codes of
// revocation.go and the cbor family of attest included).
const (
	CodeChallengeMissing attest.Code = "input.challenge_missing" // Options.Challenge is empty
	CodePolicy           attest.Code = "input.policy"            // Options.Policy cannot be applied
	CodeNoRoots          attest.Code = "input.no_roots"          // Options.Roots holds no anchor
	CodeEmptyChain       attest.Code = "input.empty_chain"       // no certificate at all
	CodeCertificateSize  attest.Code = "input.certificate_too_large"

	CodeChainTooLong      attest.Code = "chain.too_long"            // more than MaxChainLength certificates
	CodeCertificate       attest.Code = "asn1.certificate"          // a certificate does not parse
	CodeExtensionMissing  attest.Code = "android.extension_missing" // the leaf has no KeyDescription
	CodeBelowLeaf         attest.Code = "chain.below_leaf"          // the leaf's issuer is itself an attested key
	CodeExtensionNotLeaf  attest.Code = "chain.extension_not_leaf"  // a certificate above carries a KeyDescription
	CodeChainTooShort     attest.Code = "chain.too_short"           // nothing between the leaf and the anchor
	CodeSoftwareRoot      attest.Code = "chain.software_root"       // ends in Android's software attestation root
	CodeUntrustedRoot     attest.Code = "chain.untrusted_root"      // ends in no trusted anchor
	CodeSignature         attest.Code = "chain.signature"           // a link's signature does not verify
	CodePathLength        attest.Code = "chain.path_length"         // an issuer's path length constraint is exceeded
	CodeNotYetValid       attest.Code = "chain.not_yet_valid"       // a certificate is not valid yet
	CodeExpired           attest.Code = "chain.expired"             // a certificate has expired
	CodeVersion           attest.Code = "android.attestation_version"
	CodeChallengeMismatch attest.Code = "android.challenge_mismatch"
	CodeLevelMismatch     attest.Code = "android.security_level_mismatch" // attestation and KeyMint levels differ
	CodeSecurityLevel     attest.Code = "policy.security_level"           // below the policy's minimum
	CodeOrigin            attest.Code = "android.origin"                  // not generated in the secure hardware
	CodePurpose           attest.Code = "android.purpose"                 // cannot sign
	CodeAllApplications   attest.Code = "android.all_applications"        // usable by every app
	CodeRootOfTrust       attest.Code = "android.root_of_trust_missing"
	CodeVerifiedBoot      attest.Code = "policy.verified_boot"
	CodeDeviceLocked      attest.Code = "policy.device_locked"
	CodeUserAuth          attest.Code = "policy.user_auth"
	CodePackage           attest.Code = "policy.package"
	CodeSigningDigest     attest.Code = "policy.signing_digest"
	CodeOSPatchLevel      attest.Code = "policy.os_patch_level"
	CodeUnsupportedKey    attest.Code = "android.unsupported_key" // a key the product cannot use for sign-in
	CodeKeyMismatch       attest.Code = "android.key_mismatch"    // the certificate's key is not the one described
)

// Codes returns every code Verify and the status list can return, in the
// order of the checks.
func Codes() []attest.Code {
	return []attest.Code{
		CodeChallengeMissing, CodePolicy, CodeNoRoots, CodeEmptyChain, CodeCertificateSize,
		CodeChainTooLong, CodeCertificate, CodeExtensionMissing, CodeBelowLeaf, CodeExtensionNotLeaf,
		CodeChainTooShort, CodeSoftwareRoot, CodeUntrustedRoot, CodeSignature, CodePathLength,
		CodeNotYetValid, CodeExpired, CodeRevoked, CodeSuspended, CodeRevocationList, CodeRevocationUnavailable,
		CodeKeyDescription, CodeVersion, CodeChallengeMismatch, CodeLevelMismatch, CodeSecurityLevel,
		CodeOrigin, CodePurpose, CodeAllApplications, CodeRootOfTrust, CodeVerifiedBoot, CodeDeviceLocked,
		CodeUserAuth, CodePackage, CodeSigningDigest, CodeOSPatchLevel, CodeUnsupportedKey, CodeKeyMismatch,
	}
}

// Options are the parameters of one verification.
type Options struct {
	// Challenge is the value the server gave the app (for WebAuthn, the
	// clientDataHash). Required.
	Challenge []byte
	// Time is the validation time (zero: now).
	Time time.Time
	// Roots are the trust anchors (nil: the built-in Google roots).
	Roots *Roots
	// Revocation is the status list to check every certificate against
	// (nil: none).
	Revocation *StatusList
	// Policy is what the caller demands of the key (zero: the safe
	// default).
	Policy Policy
}

// Result is an accepted attestation.
type Result struct {
	// Verdict carries the attested key and every fact, by the names of
	// the test-vector format.
	Verdict *attest.Verdict
	// Description is the parsed KeyDescription of the leaf.
	Description *KeyDescription
	// Chain describes the certificate chain.
	Chain *Chain
}

// Chain is what the chain checks found.
type Chain struct {
	// Certificates are the chain's certificates, leaf first. Certificates
	// above the leaf may be shared with other verifications through the
	// cache: callers must not modify them.
	Certificates []*x509.Certificate
	// Anchor names the trust anchor the chain ended in.
	Anchor string
	// AnchorInChain reports whether the chain's last certificate carries
	// the anchor's key (else it was signed by it).
	AnchorInChain bool
	// Provisioning is how the device got its attestation key.
	Provisioning Provisioning
	// ProvisioningInfo is the provisioning-info extension's CBOR map of a
	// remotely provisioned chain (nil when absent).
	ProvisioningInfo map[int64]any
}

// Provisioning is how a device got its attestation key.
type Provisioning int

const (
	// Factory: a batch key installed at the factory, certified by
	// long-lived intermediates.
	Factory Provisioning = iota
	// Remote: a short-lived key certified by Google's remote key
	// provisioning servers ("Droid CA" intermediates, provisioning-info
	// extension).
	Remote
)

// String returns "factory" or "remote".
func (p Provisioning) String() string {
	if p == Remote {
		return "remote"
	}
	return "factory"
}

// Verifier verifies Android Key Attestation chains. It keeps a cache of the
// parsed certificates and verified signatures above the leaf, so that a
// chain whose upper part was seen before costs the leaf's parse and one
// signature check. A Verifier is safe for concurrent use; create one and
// share it. The zero Verifier is ready to use (with a cache of its own).
type Verifier struct {
	once  sync.Once
	cache *attest.CertCache
}

func (v *Verifier) certCache() *attest.CertCache {
	v.once.Do(func() {
		if v.cache == nil {
			v.cache = attest.NewCertCache(0)
		}
	})
	return v.cache
}

// NewVerifier returns a Verifier with its own certificate cache.
func NewVerifier() *Verifier { return NewVerifierWithCache(attest.NewCertCache(0)) }

// NewVerifierWithCache returns a Verifier using cache (shared, for example,
// with other formats' verifiers).
func NewVerifierWithCache(cache *attest.CertCache) *Verifier {
	if cache == nil {
		cache = attest.NewCertCache(0)
	}
	return &Verifier{cache: cache}
}

// Verify checks an attestation chain (DER certificates, leaf first, as the
// app's KeyStore returns it; the root may be absent) and returns the
// attested key with every fact, or the *attest.Error of the first check
// that failed. The checks, in order:
//
//  1. options: a challenge is given, the policy is valid, roots are given;
//  2. input: at least one certificate, at most MaxChainLength, none larger
//     than MaxCertificateSize, every one parses (a leaf whose key is on a
//     curve crypto/x509 cannot read, such as secp256k1, is refused here
//     as an unsupported key);
//  3. the leaf carries the KeyDescription extension; the certificate that
//     signed it does not (nothing may be chained below an attested key),
//     nor does any certificate above;
//  4. the chain ends in a trust anchor: its last certificate carries an
//     anchor's key (and is signed by an anchor key), or was signed by one;
//     at least one certificate lies between the leaf and the anchor; a
//     chain ending in Android's software attestation root is named so;
//  5. every link's signature verifies, from the anchor down to the leaf
//     (issuers need not be marked as CAs: real batch certificates are
//     not), and path length constraints hold;
//  6. validity periods, per the policy's Expiry;
//  7. revocation: no certificate is on the status list;
//  8. the KeyDescription parses, its version is at least 1, its challenge
//     equals Options.Challenge;
//  9. attestation and KeyMint security levels are equal and at least the
//     policy's minimum;
//  10. in the list of that level (hardware-enforced for a TEE or
//     StrongBox): origin is GENERATED, purpose includes SIGN;
//     allApplications is absent from both lists;
//  11. RootOfTrust is present; verified boot and a locked device when the
//     policy demands them;
//  12. user authentication when the policy demands it;
//  13. package names and signing-certificate digests in the policy's
//     allow-lists; the OS patch level at least the policy's minimum;
//  14. the attested key is one the product can use (ECDSA P-256/384/521,
//     RSA of 2048 bits or more, Ed25519) and matches the description.
func (v *Verifier) Verify(chain [][]byte, opts Options) (*Result, error) {
	if len(opts.Challenge) == 0 {
		return nil, attest.Errorf(CodeChallengeMissing, "no challenge given: without one an attestation can be replayed")
	}
	if err := opts.Policy.Validate(); err != nil {
		return nil, attest.Errorf(CodePolicy, "%v", err)
	}
	t := opts.Time
	if t.IsZero() {
		t = time.Now()
	}
	roots := opts.Roots
	if roots == nil {
		roots = GoogleRoots()
	}
	if roots.Len() == 0 {
		return nil, attest.Errorf(CodeNoRoots, "the trust store holds no anchor")
	}
	c, ext, err := checkChain(v.certCache(), chain, t, roots, opts.Policy.Expiry, opts.Revocation)
	if err != nil {
		return nil, err
	}
	kd, err := ParseKeyDescription(ext)
	if err != nil {
		return nil, err
	}
	enf, err := checkDescription(kd, opts.Challenge, &opts.Policy)
	if err != nil {
		return nil, err
	}
	leaf := c.Certificates[0]
	pub, alg, err := usableKey(leaf)
	if err != nil {
		return nil, err
	}
	if err := matchKey(pub, enf); err != nil {
		return nil, err
	}
	trust := attest.TrustHardware
	if kd.AttestationSecurityLevel == Software {
		trust = attest.TrustNone
	}
	return &Result{
		Verdict: &attest.Verdict{
			Format:    Format,
			Trust:     trust,
			Root:      c.Anchor,
			PublicKey: pub,
			Facts:     facts(kd, enf, c, alg),
		},
		Description: kd,
		Chain:       c,
	}, nil
}

// checkChain runs checks 2 to 7 and returns the chain and the leaf's
// KeyDescription extension value.
func checkChain(cache *attest.CertCache, ders [][]byte, t time.Time, roots *Roots, expiry Expiry, rev *StatusList) (*Chain, []byte, error) {
	n := len(ders)
	switch {
	case n == 0:
		return nil, nil, attest.Errorf(CodeEmptyChain, "the chain holds no certificate")
	case n > MaxChainLength:
		return nil, nil, attest.Errorf(CodeChainTooLong, "the chain holds %d certificates, at most %d are accepted", n, MaxChainLength)
	}
	for i, d := range ders {
		if len(d) > MaxCertificateSize {
			return nil, nil, attest.Errorf(CodeCertificateSize, "certificate %d is %d bytes, at most %d are accepted", i, len(d), MaxCertificateSize)
		}
	}
	certs := make([]*x509.Certificate, n)
	var err error
	// The leaf is unique to one key: it is parsed, never cached, so that
	// the cache keeps the certificates devices share.
	if certs[0], err = x509.ParseCertificate(ders[0]); err != nil {
		if strings.Contains(err.Error(), "unsupported elliptic curve") {
			return nil, nil, attest.Errorf(CodeUnsupportedKey, "the attested key is on a curve keybind does not support: %w", err)
		}
		return nil, nil, attest.Errorf(CodeCertificate, "certificate 0 (the leaf) does not parse: %w", err)
	}
	for i := 1; i < n; i++ {
		if certs[i], err = cache.Parse(ders[i]); err != nil {
			return nil, nil, attest.Errorf(CodeCertificate, "certificate %d does not parse: %w", i, err)
		}
	}
	c := &Chain{Certificates: certs}

	// 3. Only the leaf is an attested key.
	ext := extensionValue(certs[0], OIDKeyDescription)
	if ext == nil {
		return nil, nil, attest.Errorf(CodeExtensionMissing, "the leaf certificate has no key attestation extension (%s)", OIDKeyDescription)
	}
	for i := 1; i < n; i++ {
		if extensionValue(certs[i], OIDKeyDescription) == nil {
			continue
		}
		if i == 1 {
			return nil, nil, attest.Errorf(CodeBelowLeaf, "the leaf was signed by an attested key (certificate 1 carries a key attestation extension): an attested key must not certify other keys")
		}
		return nil, nil, attest.Errorf(CodeExtensionNotLeaf, "certificate %d above the leaf carries a key attestation extension", i)
	}

	// 4. The chain ends in a trust anchor.
	last := certs[n-1]
	a := roots.keyAnchor(last)
	c.AnchorInChain = a != nil
	if c.AnchorInChain {
		if n < 3 {
			return nil, nil, attest.Errorf(CodeChainTooShort, "no certificate between the leaf and the trust anchor %q", a.name)
		}
		// The anchor's certificate as the chain carries it must be signed
		// by an anchor key (itself, or another anchor for a cross-signed
		// root), so that its contents (dates, serial) are authentic.
		if signedByAnchor(cache, last, roots) == nil {
			return nil, nil, attest.Errorf(CodeSignature, "certificate %d carries the key of %q but is not signed by a trusted key", n-1, a.name)
		}
	} else {
		if n < 2 {
			return nil, nil, attest.Errorf(CodeChainTooShort, "the chain holds only the leaf: the certificates that link it to a trusted root are missing")
		}
		if a = signedByAnchor(cache, last, roots); a == nil {
			if isSoftwareRoot(certs) {
				return nil, nil, attest.Errorf(CodeSoftwareRoot, "the chain ends in Android's software attestation root: the key is not in secure hardware")
			}
			return nil, nil, attest.Errorf(CodeUntrustedRoot, "the chain ends in %q, issued by %q, which is not a trusted root", last.Subject, last.Issuer)
		}
	}
	c.Anchor = a.name

	// 5. Links, from the anchor down; the leaf's link is checked directly
	// (caching it would only push shared links out of the cache).
	for i := n - 2; i >= 1; i-- {
		if err := cache.CheckSignature(certs[i], certs[i+1]); err != nil {
			return nil, nil, attest.Errorf(CodeSignature, "certificate %d is not signed by certificate %d: %w", i, i+1, err)
		}
	}
	if err := certs[1].CheckSignature(certs[0].SignatureAlgorithm, certs[0].RawTBSCertificate, certs[0].Signature); err != nil {
		return nil, nil, attest.Errorf(CodeSignature, "the leaf is not signed by certificate 1: %w", err)
	}
	for i := 1; i < n; i++ {
		ci := certs[i]
		if ci.BasicConstraintsValid && ci.IsCA && (ci.MaxPathLen > 0 || ci.MaxPathLenZero) && i-1 > ci.MaxPathLen {
			return nil, nil, attest.Errorf(CodePathLength, "certificate %d allows %d intermediate certificates below it, the chain has %d", i, ci.MaxPathLen, i-1)
		}
	}

	// Provisioning: remote when a certificate above the leaf carries the
	// provisioning-info extension or is a "Droid CA" intermediate.
	for _, ci := range certs[1:] {
		if info := extensionValue(ci, OIDProvisioningInfo); info != nil {
			c.Provisioning = Remote
			if c.ProvisioningInfo == nil {
				m := map[int64]any{}
				if err := attest.UnmarshalCBOR("provisioning info extension", info, &m); err != nil {
					return nil, nil, err
				}
				c.ProvisioningInfo = m
			}
		}
		if strings.HasPrefix(ci.Subject.CommonName, "Droid CA") {
			c.Provisioning = Remote
		}
	}

	// 6. Validity periods.
	if err := checkValidity(certs, t, expiry, c.Provisioning, c.AnchorInChain); err != nil {
		return nil, nil, err
	}

	// 7. Revocation.
	if rev != nil {
		for i, ci := range certs {
			if err := rev.check(i, ci.SerialNumber); err != nil {
				return nil, nil, err
			}
		}
	}
	return c, ext, nil
}

// signedByAnchor returns the anchor whose key signed c, trying first the
// anchors whose certificates' subject is c's issuer.
func signedByAnchor(cache *attest.CertCache, c *x509.Certificate, roots *Roots) *anchor {
	try := func(match bool) *anchor {
		for _, a := range roots.anchors {
			for _, ac := range a.certs {
				if bytes.Equal(ac.RawSubject, c.RawIssuer) != match {
					continue
				}
				if cache.CheckSignature(c, ac) == nil {
					return a
				}
				break // one certificate per key is enough
			}
		}
		return nil
	}
	if a := try(true); a != nil {
		return a
	}
	return try(false)
}

// isSoftwareRoot reports whether a chain names one of the roots of
// Android's software attestation (AOSP's EC root "Android Keystore Software
// Attestation Root", and its RSA root, which has no common name). It only
// makes the rejection clearer: such chains fail the trust check anyway.
func isSoftwareRoot(certs []*x509.Certificate) bool {
	for _, c := range certs {
		for _, n := range []pkix.Name{c.Subject, c.Issuer} {
			if strings.HasPrefix(n.CommonName, "Android Keystore Software Attestation") ||
				n.CommonName == "" && slices.Equal(n.Organization, []string{"Google, Inc."}) && slices.Equal(n.OrganizationalUnit, []string{"Android"}) {
				return true
			}
		}
	}
	return false
}

func checkValidity(certs []*x509.Certificate, t time.Time, expiry Expiry, p Provisioning, anchorInChain bool) error {
	check := func(i int, c *x509.Certificate, notAfter bool) error {
		if t.Before(c.NotBefore) {
			return attest.Errorf(CodeNotYetValid, "certificate %d (%s) is not valid before %s (validation time %s)", i, c.Subject, c.NotBefore.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
		if notAfter && t.After(c.NotAfter) {
			return attest.Errorf(CodeExpired, "certificate %d (%s) expired at %s (validation time %s)", i, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
		return nil
	}
	switch expiry {
	case ExpiryStrict:
		for i, c := range certs {
			if err := check(i, c, true); err != nil {
				return err
			}
		}
	case ExpiryGoogle:
		end := len(certs)
		if anchorInChain {
			end--
		}
		for i := 1; i < end; i++ {
			if err := check(i, certs[i], p == Remote); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDescription runs checks 8 to 13 and returns the authorization list
// that the attestation's security level enforces.
func checkDescription(kd *KeyDescription, challenge []byte, p *Policy) (*AuthorizationList, error) {
	if kd.AttestationVersion < 1 {
		return nil, attest.Errorf(CodeVersion, "attestation version %d", kd.AttestationVersion)
	}
	if subtle.ConstantTimeCompare(kd.AttestationChallenge, challenge) != 1 {
		return nil, attest.Errorf(CodeChallengeMismatch, "the attested challenge (%d bytes) is not the expected one (%d bytes)", len(kd.AttestationChallenge), len(challenge))
	}
	level := kd.AttestationSecurityLevel
	if level != kd.KeyMintSecurityLevel {
		return nil, attest.Errorf(CodeLevelMismatch, "attestation security level %s, KeyMint security level %s", level, kd.KeyMintSecurityLevel)
	}
	if level < p.minLevel() {
		return nil, attest.Errorf(CodeSecurityLevel, "security level %s is below the policy's minimum %s", level, p.minLevel())
	}
	enf := &kd.HardwareEnforced
	if level == Software {
		enf = &kd.SoftwareEnforced
	}
	switch {
	case enf.Origin == nil:
		return nil, attest.Errorf(CodeOrigin, "the %s list has no origin", listName(level))
	case *enf.Origin != OriginGenerated:
		return nil, attest.Errorf(CodeOrigin, "the key's origin is %s, not generated in the secure hardware", *enf.Origin)
	}
	if !slices.Contains(enf.Purpose, PurposeSign) {
		return nil, attest.Errorf(CodePurpose, "the %s list does not allow the key to sign", listName(level))
	}
	if kd.SoftwareEnforced.AllApplications || kd.HardwareEnforced.AllApplications {
		return nil, attest.Errorf(CodeAllApplications, "the key is usable by every app on the device (allApplications)")
	}
	rot := enf.RootOfTrust
	if rot == nil && (level != Software || !p.AllowUnverifiedBoot || !p.AllowUnlockedDevice) {
		return nil, attest.Errorf(CodeRootOfTrust, "the %s list has no RootOfTrust", listName(level))
	}
	if rot != nil {
		if !p.AllowUnverifiedBoot && rot.VerifiedBootState != Verified {
			return nil, attest.Errorf(CodeVerifiedBoot, "verified boot state is %s, the policy requires verified", rot.VerifiedBootState)
		}
		if !p.AllowUnlockedDevice && !rot.DeviceLocked {
			return nil, attest.Errorf(CodeDeviceLocked, "the device's bootloader is unlocked, the policy requires it locked")
		}
	}
	if p.RequireUserAuth {
		switch {
		case enf.NoAuthRequired:
			return nil, attest.Errorf(CodeUserAuth, "the key is usable without user authentication (noAuthRequired)")
		case enf.UserAuthType == nil:
			return nil, attest.Errorf(CodeUserAuth, "the %s list names no user authentication type", listName(level))
		case *enf.UserAuthType&(AuthPassword|AuthFingerprint) == 0:
			return nil, attest.Errorf(CodeUserAuth, "user authentication type %#x names neither a password nor a biometric", int64(*enf.UserAuthType))
		}
	}
	aaid := applicationID(kd)
	if len(p.Packages) > 0 {
		if aaid == nil || len(aaid.Packages) == 0 {
			return nil, attest.Errorf(CodePackage, "the attestation names no package, the policy allows only %s", strings.Join(p.Packages, ", "))
		}
		for _, pkg := range aaid.Packages {
			if !slices.Contains(p.Packages, pkg.Name) {
				return nil, attest.Errorf(CodePackage, "package %q is not allowed by the policy", pkg.Name)
			}
		}
	}
	if len(p.SigningDigests) > 0 {
		if aaid == nil || len(aaid.SignatureDigests) == 0 {
			return nil, attest.Errorf(CodeSigningDigest, "the attestation names no signing certificate digest")
		}
		for _, d := range aaid.SignatureDigests {
			if !slices.ContainsFunc(p.SigningDigests, func(a []byte) bool { return bytes.Equal(a, d) }) {
				return nil, attest.Errorf(CodeSigningDigest, "signing certificate digest %x is not allowed by the policy", d)
			}
		}
	}
	if p.MinOSPatchLevel != 0 {
		if enf.OSPatchLevel == nil {
			return nil, attest.Errorf(CodeOSPatchLevel, "the %s list has no OS patch level, the policy requires %d or later", listName(level), p.MinOSPatchLevel)
		}
		if pl := yyyymm(*enf.OSPatchLevel); pl < int64(p.MinOSPatchLevel) {
			return nil, attest.Errorf(CodeOSPatchLevel, "OS patch level %d is older than the policy's minimum %d", pl, p.MinOSPatchLevel)
		}
	}
	return enf, nil
}

func listName(l SecurityLevel) string {
	if l == Software {
		return "software-enforced"
	}
	return "hardware-enforced"
}

// applicationID returns the attestation application id, which the Android
// system puts in the software-enforced list.
func applicationID(kd *KeyDescription) *AttestationApplicationID {
	if id := kd.SoftwareEnforced.AttestationApplicationID; id != nil {
		return id
	}
	return kd.HardwareEnforced.AttestationApplicationID
}

// yyyymm turns a patch level into YYYYMM (some devices encode YYYYMMDD).
func yyyymm(v int64) int64 {
	if v > 999999 {
		return v / 100
	}
	return v
}

// Names of well-known public key algorithms the product cannot use, for
// clearer rejections.
var unusableKeyOIDs = map[string]string{
	"2.16.840.1.101.3.4.3.17": "ML-DSA-44",
	"2.16.840.1.101.3.4.3.18": "ML-DSA-65",
	"2.16.840.1.101.3.4.3.19": "ML-DSA-87",
	"1.3.101.110":             "X25519",
	"1.3.101.111":             "X448",
	"1.3.101.113":             "Ed448",
}

// usableKey returns the leaf's key when the product can use it for sign-in,
// and its name for the facts.
func usableKey(leaf *x509.Certificate) (crypto.PublicKey, string, error) {
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return k, "ecdsa-p256", nil
		case "P-384":
			return k, "ecdsa-p384", nil
		case "P-521":
			return k, "ecdsa-p521", nil
		}
		return nil, "", attest.Errorf(CodeUnsupportedKey, "the attested key is on curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 {
			return nil, "", attest.Errorf(CodeUnsupportedKey, "the attested RSA key has %d bits, at least 2048 are required", bits)
		}
		return k, fmt.Sprintf("rsa-%d", k.N.BitLen()), nil
	case ed25519.PublicKey:
		return k, "ed25519", nil
	case *ecdh.PublicKey:
		return nil, "", attest.Errorf(CodeUnsupportedKey, "the attested key is a key-agreement key (%s), it cannot sign", leaf.PublicKeyAlgorithm)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	name := leaf.PublicKeyAlgorithm.String()
	if _, err := asn1.Unmarshal(leaf.RawSubjectPublicKeyInfo, &spki); err == nil {
		oid := spki.Algorithm.Algorithm.String()
		name = "algorithm " + oid
		if n, ok := unusableKeyOIDs[oid]; ok {
			name = n
		}
	}
	return nil, "", attest.Errorf(CodeUnsupportedKey, "the attested key uses %s, which keybind cannot verify sign-ins with", name)
}

// matchKey checks the certificate's key against the description's algorithm
// and curve, when the enforcing list gives them.
func matchKey(pub crypto.PublicKey, enf *AuthorizationList) error {
	if enf.Algorithm == nil {
		return nil
	}
	alg := *enf.Algorithm
	var curve Curve = -1
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg != AlgorithmEC {
			return attest.Errorf(CodeKeyMismatch, "the certificate holds an EC key, the description says algorithm %d", int64(alg))
		}
		curve = map[string]Curve{"P-256": CurveP256, "P-384": CurveP384, "P-521": CurveP521}[k.Curve.Params().Name]
	case ed25519.PublicKey:
		if alg != AlgorithmEC {
			return attest.Errorf(CodeKeyMismatch, "the certificate holds an Ed25519 key, the description says algorithm %d", int64(alg))
		}
		curve = CurveCurve25519
	case *rsa.PublicKey:
		if alg != AlgorithmRSA {
			return attest.Errorf(CodeKeyMismatch, "the certificate holds an RSA key, the description says algorithm %d", int64(alg))
		}
		if enf.KeySize != nil && int64(k.N.BitLen()) != *enf.KeySize {
			return attest.Errorf(CodeKeyMismatch, "the certificate holds an RSA-%d key, the description says %d bits", k.N.BitLen(), *enf.KeySize)
		}
		return nil
	}
	if enf.ECCurve != nil && *enf.ECCurve != curve {
		return attest.Errorf(CodeKeyMismatch, "the certificate's curve is not the described curve %d", int64(*enf.ECCurve))
	}
	return nil
}

func extensionValue(c *x509.Certificate, oid asn1.ObjectIdentifier) []byte {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return e.Value
		}
	}
	return nil
}

// facts lists what the attestation says, by the test-vector format's names
// (security_level, attestation_version, keymint_version,
// verified_boot_state, device_locked, os_patch_level, package,
// public_key_algorithm, provisioning) plus extras (public_key is the
// attested key's SubjectPublicKeyInfo, DER).
func facts(kd *KeyDescription, enf *AuthorizationList, c *Chain, alg string) map[string]any {
	f := map[string]any{
		"security_level":         kd.AttestationSecurityLevel.String(),
		"keymint_security_level": kd.KeyMintSecurityLevel.String(),
		"attestation_version":    kd.AttestationVersion,
		"keymint_version":        kd.KeyMintVersion,
		"public_key_algorithm":   alg,
		"provisioning":           c.Provisioning.String(),
		"chain_length":           len(c.Certificates),
		"public_key":             c.Certificates[0].RawSubjectPublicKeyInfo,
		"user_auth_required":     !enf.NoAuthRequired && enf.UserAuthType != nil && *enf.UserAuthType&(AuthPassword|AuthFingerprint) != 0,
	}
	if rot := enf.RootOfTrust; rot != nil {
		f["verified_boot_state"] = rot.VerifiedBootState.String()
		f["device_locked"] = rot.DeviceLocked
		f["verified_boot_key"] = hex.EncodeToString(rot.VerifiedBootKey)
	}
	other := &kd.SoftwareEnforced
	if enf == other {
		other = &kd.HardwareEnforced
	}
	pick := func(get func(*AuthorizationList) *int64) *int64 {
		if v := get(enf); v != nil {
			return v
		}
		return get(other)
	}
	if v := pick(func(a *AuthorizationList) *int64 { return a.OSPatchLevel }); v != nil {
		f["os_patch_level"] = yyyymm(*v)
	}
	if v := pick(func(a *AuthorizationList) *int64 { return a.OSVersion }); v != nil {
		f["os_version"] = *v
	}
	if v := pick(func(a *AuthorizationList) *int64 { return a.VendorPatchLevel }); v != nil {
		f["vendor_patch_level"] = *v
	}
	if v := pick(func(a *AuthorizationList) *int64 { return a.BootPatchLevel }); v != nil {
		f["boot_patch_level"] = *v
	}
	if v := pick(func(a *AuthorizationList) *int64 { return a.CreationDateTime }); v != nil {
		f["key_created"] = time.UnixMilli(*v).UTC().Format(time.RFC3339Nano)
	}
	if enf.Origin != nil {
		f["origin"] = enf.Origin.String()
	}
	if enf.UserAuthType != nil {
		var types []string
		if *enf.UserAuthType&AuthPassword != 0 {
			types = append(types, "password")
		}
		if *enf.UserAuthType&AuthFingerprint != 0 {
			types = append(types, "biometric")
		}
		f["user_auth_types"] = types
	}
	if enf.AuthTimeout != nil {
		f["auth_timeout"] = *enf.AuthTimeout
	}
	if enf.UnlockedDeviceRequired {
		f["unlocked_device_required"] = true
	}
	if enf.TrustedUserPresenceRequired {
		f["trusted_user_presence_required"] = true
	}
	if enf.DeviceUniqueAttestation {
		f["device_unique_attestation"] = true
	}
	if aaid := applicationID(kd); aaid != nil {
		pkgs := make([]string, len(aaid.Packages))
		for i, p := range aaid.Packages {
			pkgs[i] = p.Name
		}
		f["packages"] = pkgs
		if len(pkgs) == 1 {
			f["package"] = pkgs[0]
		}
		digests := make([]string, len(aaid.SignatureDigests))
		for i, d := range aaid.SignatureDigests {
			digests[i] = hex.EncodeToString(d)
		}
		f["signing_digests"] = digests
	}
	// Which device identifiers were attested (their names only: the
	// values, such as IMEIs, are personal data).
	var ids []string
	for _, t := range []Tag{TagAttestationIDBrand, TagAttestationIDDevice, TagAttestationIDProduct, TagAttestationIDSerial, TagAttestationIDIMEI, TagAttestationIDMEID, TagAttestationIDManufacturer, TagAttestationIDModel, TagAttestationIDSecondIMEI} {
		if kd.HardwareEnforced.Has(t) {
			ids = append(ids, strings.ToLower(strings.TrimPrefix(t.String(), "attestationId")))
		}
	}
	if ids != nil {
		f["attested_ids"] = ids
	}
	var unknown []int
	for _, l := range []*AuthorizationList{&kd.SoftwareEnforced, &kd.HardwareEnforced} {
		for _, u := range l.Unknown {
			unknown = append(unknown, int(u.Tag))
		}
	}
	if unknown != nil {
		f["unknown_tags"] = unknown
	}
	if !kd.SoftwareEnforced.InOrder() || !kd.HardwareEnforced.InOrder() {
		f["tags_out_of_order"] = true
	}
	if n, ok := c.ProvisioningInfo[1]; ok {
		f["rkp_certificates_issued"] = n
	}
	return f
}
