package androidkey_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors/forge"
)

// t0 is when the test CAs issue their certificates.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var challenge = []byte("keybind test challenge")

// fixture holds the CAs the tests share (key generation is the slow part).
type fixture struct {
	factory, remote, other *forge.AndroidCA
	softwareRoot           *forge.AndroidRoot
}

var (
	fixtureOnce sync.Once
	fix         fixture
	fixErr      error
)

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		root, err := forge.NewAndroidRoot("", t0)
		if err != nil {
			fixErr = err
			return
		}
		if fix.factory, fixErr = root.NewCA(forge.AndroidCAOptions{Shape: forge.FactoryShape, Time: t0}); fixErr != nil {
			return
		}
		if fix.remote, fixErr = root.NewCA(forge.AndroidCAOptions{Shape: forge.RemoteShape, Time: t0, Level: "strongbox"}); fixErr != nil {
			return
		}
		if fix.other, fixErr = forge.NewAndroidCA(forge.AndroidCAOptions{Time: t0}); fixErr != nil {
			return
		}
		fix.softwareRoot, fixErr = forge.NewAndroidRoot("Android Keystore Software Attestation Root", t0)
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return &fix
}

func mustAttest(t testing.TB, ca *forge.AndroidCA, k forge.AndroidKey) *forge.AndroidAttestation {
	t.Helper()
	if k.Challenge == nil {
		k.Challenge = challenge
	}
	a, err := ca.Attest(k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// defaults fills the options every case shares.
func defaults(o androidkey.Options, roots *androidkey.Roots) androidkey.Options {
	if o.Challenge == nil {
		o.Challenge = challenge
	}
	if o.Time.IsZero() {
		o.Time = t0
	}
	if o.Roots == nil {
		o.Roots = roots
	}
	return o
}

func statusList(t *testing.T, status string, certs ...*big.Int) *androidkey.StatusList {
	t.Helper()
	var e []forge.AndroidStatusEntry
	for _, s := range certs {
		e = append(e, forge.AndroidStatusEntry{Serial: s, Status: status, Reason: "KEY_COMPROMISE"})
	}
	l, err := androidkey.ParseStatusList(forge.AndroidStatusList(e...))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func parse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChecks runs every check of the verifier's checklist with an
// attestation that passes it and one that fails it.
func TestChecks(t *testing.T) {
	f := getFixture(t)
	roots := f.factory.Roots()
	good := mustAttest(t, f.factory, forge.AndroidKey{})
	remote := mustAttest(t, f.remote, forge.AndroidKey{Level: "strongbox"})
	edit := func(fn func(*androidkey.KeyDescription)) forge.AndroidKey { return forge.AndroidKey{Edit: fn} }

	// A chain whose anchor certificate carries the root key but is signed
	// by another key.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fakeRootDER, err := forge.ReplaceSPKI(f.other.Root.Cert.Raw, f.factory.Root.Cert.RawSubjectPublicKeyInfo, f.other.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	fakeRoot := append(append([][]byte{}, good.WithoutRoot()...), fakeRootDER)
	// A leaf signed by the root directly.
	direct, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Android Keystore Key"},
		NotBefore: good.Leaf.NotBefore, NotAfter: good.Leaf.NotAfter, ExtraExtensions: good.Leaf.Extensions,
	}, f.factory.Root.Cert, otherKey.Public(), f.factory.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	// An intermediate signed by a key other than its issuer's.
	badLink := append([][]byte{}, good.Chain...)
	if badLink[2], err = forge.Resign(badLink[2], otherKey, func(f []asn1.RawValue) ([]asn1.RawValue, error) { return f, nil }); err != nil {
		t.Fatal(err)
	}
	flipped := append([][]byte{}, good.Chain...)
	flipped[0] = append([]byte{}, good.Chain[0]...)
	flipped[0][len(flipped[0])-1] ^= 1
	below, err := good.Below(forge.AndroidKey{Challenge: challenge})
	if err != nil {
		t.Fatal(err)
	}
	kdExt := pkix.Extension{Id: androidkey.OIDKeyDescription, Value: []byte{0x30, 0x00}}
	extHigh, err := f.factory.Root.NewCA(forge.AndroidCAOptions{Time: t0, Edit: func(depth int, c *x509.Certificate) {
		if depth == 1 {
			c.ExtraExtensions = append(c.ExtraExtensions, kdExt)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	pathLen, err := f.factory.Root.NewCA(forge.AndroidCAOptions{Time: t0, Edit: func(depth int, c *x509.Certificate) {
		if depth == 1 {
			c.MaxPathLen, c.MaxPathLenZero = 0, true
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	softwareCA, err := f.softwareRoot.NewCA(forge.AndroidCAOptions{Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	// A leaf on a curve crypto/x509 does not parse (secp256k1).
	curveOID, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 10})
	secpSPKI, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, Parameters: asn1.RawValue{FullBytes: curveOID}},
		asn1.BitString{Bytes: append([]byte{4}, make([]byte, 64)...), BitLength: 65 * 8}})
	if err != nil {
		t.Fatal(err)
	}
	secpLeaf, err := forge.ReplaceSPKI(good.Chain[0], secpSPKI, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	eleven := append([][]byte{}, good.Chain...)
	for len(eleven) <= androidkey.MaxChainLength {
		eleven = append(eleven, good.Chain[1])
	}

	cases := []struct {
		name  string
		chain [][]byte
		opts  androidkey.Options
		want  attest.Code // "" for accept
	}{
		{"factory chain", good.Chain, androidkey.Options{}, ""},
		{"factory chain without its root", good.WithoutRoot(), androidkey.Options{}, ""},
		{"remote chain", remote.Chain, androidkey.Options{}, ""},
		{"remote chain without its root", remote.WithoutRoot(), androidkey.Options{}, ""},

		{"no challenge", good.Chain, androidkey.Options{Challenge: []byte{}}, androidkey.CodeChallengeMissing},
		{"invalid policy", good.Chain, androidkey.Options{Policy: androidkey.Policy{Expiry: 7}}, androidkey.CodePolicy},
		{"empty trust store", good.Chain, androidkey.Options{Roots: androidkey.NewRoots()}, androidkey.CodeNoRoots},
		{"empty chain", nil, androidkey.Options{}, androidkey.CodeEmptyChain},
		{"chain too long", eleven, androidkey.Options{}, androidkey.CodeChainTooLong},
		{"certificate too large", [][]byte{make([]byte, androidkey.MaxCertificateSize+1), good.Chain[1]}, androidkey.Options{}, androidkey.CodeCertificateSize},
		{"garbage leaf", [][]byte{[]byte("garbage"), good.Chain[1]}, androidkey.Options{}, androidkey.CodeCertificate},
		{"garbage intermediate", [][]byte{good.Chain[0], good.Chain[1][:100]}, androidkey.Options{}, androidkey.CodeCertificate},
		{"no key description", mustAttest(t, f.factory, forge.AndroidKey{NoExtension: true}).Chain, androidkey.Options{}, androidkey.CodeExtensionMissing},
		{"chain extended below the leaf", below.Chain, androidkey.Options{}, androidkey.CodeBelowLeaf},
		{"extension on a higher certificate", mustAttest(t, extHigh, forge.AndroidKey{}).Chain, androidkey.Options{}, androidkey.CodeExtensionNotLeaf},
		{"leaf alone", good.Chain[:1], androidkey.Options{}, androidkey.CodeChainTooShort},
		{"leaf signed by the root", [][]byte{direct, good.Chain[len(good.Chain)-1]}, androidkey.Options{}, androidkey.CodeChainTooShort},
		{"leaf signed by the root, root absent", [][]byte{direct}, androidkey.Options{}, androidkey.CodeChainTooShort},
		{"software attestation root", mustAttest(t, softwareCA, forge.AndroidKey{}).Chain, androidkey.Options{}, androidkey.CodeSoftwareRoot},
		{"unknown root", mustAttest(t, f.other, forge.AndroidKey{}).Chain, androidkey.Options{}, androidkey.CodeUntrustedRoot},
		{"unknown root, absent", mustAttest(t, f.other, forge.AndroidKey{}).WithoutRoot(), androidkey.Options{}, androidkey.CodeUntrustedRoot},
		{"built-in Google roots", good.Chain, androidkey.Options{Roots: androidkey.GoogleRoots()}, androidkey.CodeUntrustedRoot},
		{"anchor certificate not signed by the anchor key", fakeRoot, androidkey.Options{}, androidkey.CodeSignature},
		{"broken leaf signature", flipped, androidkey.Options{}, androidkey.CodeSignature},
		{"intermediate signed by another key", badLink, androidkey.Options{}, androidkey.CodeSignature},
		{"path length exceeded", mustAttest(t, pathLen, forge.AndroidKey{}).Chain, androidkey.Options{}, androidkey.CodePathLength},

		{"before the intermediates", good.Chain, androidkey.Options{Time: t0.AddDate(-2, 0, 0)}, androidkey.CodeNotYetValid},
		{"expired remote intermediate", remote.Chain, androidkey.Options{Time: t0.AddDate(0, 0, 100)}, androidkey.CodeExpired},
		{"expired remote intermediate, expiry ignore", remote.Chain, androidkey.Options{Time: t0.AddDate(0, 0, 100), Policy: androidkey.Policy{Expiry: androidkey.ExpiryIgnore}}, ""},
		{"expired factory chain, expiry google", good.Chain, androidkey.Options{Time: t0.AddDate(30, 0, 0)}, ""},
		{"expired factory chain, expiry strict", good.Chain, androidkey.Options{Time: t0.AddDate(30, 0, 0), Policy: androidkey.Policy{Expiry: androidkey.ExpiryStrict}}, androidkey.CodeExpired},
		{"factory chain, expiry strict", good.Chain, androidkey.Options{Policy: androidkey.Policy{Expiry: androidkey.ExpiryStrict}}, ""},
		{"leaf outside its validity, expiry google", good.Chain, androidkey.Options{Time: time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)}, ""},

		{"revocation list naming other serials", good.Chain, androidkey.Options{Revocation: statusList(t, "REVOKED", big.NewInt(12345))}, ""},
		{"revoked intermediate", good.Chain, androidkey.Options{Revocation: statusList(t, "REVOKED", parse(t, good.Chain[2]).SerialNumber)}, androidkey.CodeRevoked},
		{"revoked batch certificate", good.Chain, androidkey.Options{Revocation: statusList(t, "REVOKED", parse(t, good.Chain[1]).SerialNumber)}, androidkey.CodeRevoked},
		{"suspended attestation key", remote.Chain, androidkey.Options{Revocation: statusList(t, "SUSPENDED", parse(t, remote.Chain[1]).SerialNumber)}, androidkey.CodeSuspended},

		{"attestation version 0", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.AttestationVersion = 0 })).Chain, androidkey.Options{}, androidkey.CodeVersion},
		{"wrong challenge", good.Chain, androidkey.Options{Challenge: []byte("another challenge")}, androidkey.CodeChallengeMismatch},
		{"levels differ", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.KeyMintSecurityLevel = androidkey.StrongBox })).Chain, androidkey.Options{}, androidkey.CodeLevelMismatch},
		{"software level", mustAttest(t, f.factory, forge.AndroidKey{Level: "software"}).Chain, androidkey.Options{}, androidkey.CodeSecurityLevel},
		{"software level, policy software", mustAttest(t, f.factory, forge.AndroidKey{Level: "software"}).Chain, androidkey.Options{Policy: androidkey.Policy{MinSecurityLevel: androidkey.Software}}, ""},
		{"tee, policy strongbox", good.Chain, androidkey.Options{Policy: androidkey.Policy{MinSecurityLevel: androidkey.StrongBox}}, androidkey.CodeSecurityLevel},
		{"strongbox, policy strongbox", remote.Chain, androidkey.Options{Policy: androidkey.Policy{MinSecurityLevel: androidkey.StrongBox}}, ""},
		{"imported key", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			o := androidkey.OriginImported
			kd.HardwareEnforced.Origin = &o
		})).Chain, androidkey.Options{}, androidkey.CodeOrigin},
		{"no origin", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.HardwareEnforced.Origin = nil })).Chain, androidkey.Options{}, androidkey.CodeOrigin},
		{"origin only in the software list", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			kd.SoftwareEnforced.Origin, kd.HardwareEnforced.Origin = kd.HardwareEnforced.Origin, nil
		})).Chain, androidkey.Options{}, androidkey.CodeOrigin},
		{"cannot sign", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			kd.HardwareEnforced.Purpose = []androidkey.Purpose{androidkey.PurposeVerify, androidkey.PurposeAgreeKey}
		})).Chain, androidkey.Options{}, androidkey.CodePurpose},
		{"all applications", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.SoftwareEnforced.AllApplications = true })).Chain, androidkey.Options{}, androidkey.CodeAllApplications},
		{"no root of trust", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.HardwareEnforced.RootOfTrust = nil })).Chain, androidkey.Options{Policy: androidkey.Policy{AllowUnverifiedBoot: true, AllowUnlockedDevice: true}}, androidkey.CodeRootOfTrust},
		{"unverified boot", mustAttest(t, f.factory, forge.AndroidKey{BootState: androidkey.Unverified}).Chain, androidkey.Options{}, androidkey.CodeVerifiedBoot},
		{"self-signed boot", mustAttest(t, f.factory, forge.AndroidKey{BootState: androidkey.SelfSigned}).Chain, androidkey.Options{}, androidkey.CodeVerifiedBoot},
		{"unverified boot allowed", mustAttest(t, f.factory, forge.AndroidKey{BootState: androidkey.Unverified}).Chain, androidkey.Options{Policy: androidkey.Policy{AllowUnverifiedBoot: true}}, ""},
		{"unlocked device", mustAttest(t, f.factory, forge.AndroidKey{Unlocked: true}).Chain, androidkey.Options{}, androidkey.CodeDeviceLocked},
		{"unlocked device allowed", mustAttest(t, f.factory, forge.AndroidKey{Unlocked: true}).Chain, androidkey.Options{Policy: androidkey.Policy{AllowUnlockedDevice: true}}, ""},
		{"user auth", mustAttest(t, f.factory, forge.AndroidKey{UserAuth: true}).Chain, androidkey.Options{Policy: androidkey.Policy{RequireUserAuth: true}}, ""},
		{"no user auth", good.Chain, androidkey.Options{Policy: androidkey.Policy{RequireUserAuth: true}}, androidkey.CodeUserAuth},
		{"user auth type but noAuthRequired", mustAttest(t, f.factory, forge.AndroidKey{UserAuth: true, Edit: func(kd *androidkey.KeyDescription) { kd.HardwareEnforced.NoAuthRequired = true }}).Chain, androidkey.Options{Policy: androidkey.Policy{RequireUserAuth: true}}, androidkey.CodeUserAuth},
		{"user auth type none", mustAttest(t, f.factory, forge.AndroidKey{UserAuth: true, Edit: func(kd *androidkey.KeyDescription) {
			none := androidkey.AuthenticatorType(0)
			kd.HardwareEnforced.UserAuthType = &none
		}}).Chain, androidkey.Options{Policy: androidkey.Policy{RequireUserAuth: true}}, androidkey.CodeUserAuth},
		{"user auth only in the software list", mustAttest(t, f.factory, forge.AndroidKey{UserAuth: true, Edit: func(kd *androidkey.KeyDescription) {
			kd.SoftwareEnforced.UserAuthType, kd.HardwareEnforced.UserAuthType = kd.HardwareEnforced.UserAuthType, nil
		}}).Chain, androidkey.Options{Policy: androidkey.Policy{RequireUserAuth: true}}, androidkey.CodeUserAuth},
		{"allowed package", good.Chain, androidkey.Options{Policy: androidkey.Policy{Packages: []string{"com.other", forge.AndroidDefaultPackage}}}, ""},
		{"package not allowed", good.Chain, androidkey.Options{Policy: androidkey.Policy{Packages: []string{"com.other"}}}, androidkey.CodePackage},
		{"one of two packages not allowed", mustAttest(t, f.factory, forge.AndroidKey{Packages: []androidkey.PackageInfo{{Name: forge.AndroidDefaultPackage}, {Name: "com.evil"}}}).Chain, androidkey.Options{Policy: androidkey.Policy{Packages: []string{forge.AndroidDefaultPackage}}}, androidkey.CodePackage},
		{"no application id", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.SoftwareEnforced.AttestationApplicationID = nil })).Chain, androidkey.Options{Policy: androidkey.Policy{Packages: []string{forge.AndroidDefaultPackage}}}, androidkey.CodePackage},
		{"allowed signing digest", good.Chain, androidkey.Options{Policy: androidkey.Policy{SigningDigests: [][]byte{forge.AndroidDefaultSigningDigest}}}, ""},
		{"signing digest not allowed", good.Chain, androidkey.Options{Policy: androidkey.Policy{SigningDigests: [][]byte{bytes.Repeat([]byte{1}, 32)}}}, androidkey.CodeSigningDigest},
		{"recent enough patch level", good.Chain, androidkey.Options{Policy: androidkey.Policy{MinOSPatchLevel: 202509}}, ""},
		{"old patch level", good.Chain, androidkey.Options{Policy: androidkey.Policy{MinOSPatchLevel: 202510}}, androidkey.CodeOSPatchLevel},
		{"patch level YYYYMMDD", mustAttest(t, f.factory, forge.AndroidKey{OSPatchLevel: 20250905}).Chain, androidkey.Options{Policy: androidkey.Policy{MinOSPatchLevel: 202509}}, ""},
		{"no patch level", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) { kd.HardwareEnforced.OSPatchLevel = nil })).Chain, androidkey.Options{Policy: androidkey.Policy{MinOSPatchLevel: 202001}}, androidkey.CodeOSPatchLevel},
		{"RSA key", mustAttest(t, f.factory, forge.AndroidKey{Algorithm: "rsa-2048"}).Chain, androidkey.Options{}, ""},
		{"Ed25519 key", mustAttest(t, f.factory, forge.AndroidKey{Algorithm: "ed25519"}).Chain, androidkey.Options{}, ""},
		{"P-384 key", mustAttest(t, f.factory, forge.AndroidKey{Algorithm: "ecdsa-p384"}).Chain, androidkey.Options{}, ""},
		{"secp256k1 key", append([][]byte{secpLeaf}, good.Chain[1:]...), androidkey.Options{}, androidkey.CodeUnsupportedKey},
		{"ML-DSA key", mustAttest(t, f.factory, forge.AndroidKey{Algorithm: "ml-dsa-65"}).Chain, androidkey.Options{}, androidkey.CodeUnsupportedKey},
		{"described as RSA, holds EC", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			a := androidkey.AlgorithmRSA
			kd.HardwareEnforced.Algorithm = &a
		})).Chain, androidkey.Options{}, androidkey.CodeKeyMismatch},
		{"described as P-384, holds P-256", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			c := androidkey.CurveP384
			kd.HardwareEnforced.ECCurve = &c
		})).Chain, androidkey.Options{}, androidkey.CodeKeyMismatch},
		{"unknown and out-of-order tags", mustAttest(t, f.factory, edit(func(kd *androidkey.KeyDescription) {
			kd.HardwareEnforced.Unknown = []androidkey.RawTag{{Tag: 9000, Value: []byte{0x05, 0x00}}}
			kd.HardwareEnforced.Tags = []androidkey.Tag{androidkey.TagRootOfTrust, androidkey.TagPurpose, 9000}
		})).Chain, androidkey.Options{}, ""},
		{"truncated extension", mustAttest(t, f.factory, forge.AndroidKey{Extension: []byte{0x30, 0x10, 0x02, 0x01}}).Chain, androidkey.Options{}, androidkey.CodeKeyDescription},
	}
	v := androidkey.NewVerifier()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := v.Verify(c.chain, defaults(c.opts, roots))
			if got := attest.CodeOf(err); got != c.want || (err != nil) != (c.want != "") {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if err != nil {
				var e *attest.Error
				if !errors.As(err, &e) || e.Reason == "" {
					t.Errorf("rejection without a reason: %#v", err)
				}
				return
			}
			if res.Verdict.Format != "android-key" || res.Verdict.Root == "" || res.Verdict.PublicKey == nil {
				t.Errorf("verdict %+v", res.Verdict)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	f := getFixture(t)
	att := mustAttest(t, f.remote, forge.AndroidKey{Level: "strongbox", UserAuth: true, Package: "com.example.phone", Version: 400})
	res, err := androidkey.NewVerifier().Verify(att.Chain, androidkey.Options{
		Challenge: challenge, Time: t0, Roots: f.remote.Roots(),
		Policy: androidkey.Policy{RequireUserAuth: true, MinSecurityLevel: androidkey.StrongBox, Packages: []string{"com.example.phone"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	if v.Trust != attest.TrustHardware || v.Root != f.remote.Root.Cert.Subject.String() {
		t.Errorf("trust %q, root %q", v.Trust, v.Root)
	}
	if !reflect.DeepEqual(v.PublicKey, att.Key.Public()) {
		t.Error("the verdict's key is not the attested key")
	}
	want := map[string]any{
		"security_level":          "strongbox",
		"attestation_version":     int64(400),
		"keymint_version":         int64(400),
		"verified_boot_state":     "verified",
		"device_locked":           true,
		"os_patch_level":          int64(202509),
		"package":                 "com.example.phone",
		"public_key_algorithm":    "ecdsa-p256",
		"provisioning":            "remote",
		"user_auth_required":      true,
		"origin":                  "generated",
		"rkp_certificates_issued": uint64(8),
	}
	for k, w := range want {
		if got := v.Facts[k]; !reflect.DeepEqual(got, w) {
			t.Errorf("fact %s = %#v, want %#v", k, got, w)
		}
	}
	if res.Chain.Provisioning != androidkey.Remote || !res.Chain.AnchorInChain || len(res.Chain.Certificates) != 5 {
		t.Errorf("chain %+v", res.Chain)
	}
	if res.Description.AttestationSecurityLevel != androidkey.StrongBox || !bytes.Equal(res.Description.AttestationChallenge, challenge) {
		t.Errorf("description %+v", res.Description)
	}

	sw := mustAttest(t, f.factory, forge.AndroidKey{Level: "software"})
	res, err = androidkey.NewVerifier().Verify(sw.Chain, androidkey.Options{Challenge: challenge, Time: t0, Roots: f.factory.Roots(),
		Policy: androidkey.Policy{MinSecurityLevel: androidkey.Software}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Trust != attest.TrustNone || res.Verdict.Facts["security_level"] != "software" {
		t.Errorf("a software key is reported with trust %q", res.Verdict.Trust)
	}
}

// TestCacheKeepsSharedLinksOnly checks that the verifier caches the links
// devices share and not the leaves: verifying many keys under one chain
// leaves the cache as it was after the first.
func TestCacheKeepsSharedLinksOnly(t *testing.T) {
	f := getFixture(t)
	cache := attest.NewCertCache(0)
	v := androidkey.NewVerifierWithCache(cache)
	opts := androidkey.Options{Challenge: challenge, Time: t0, Roots: f.factory.Roots()}
	if _, err := v.Verify(mustAttest(t, f.factory, forge.AndroidKey{}).Chain, opts); err != nil {
		t.Fatal(err)
	}
	certs, links := cache.Len()
	// Batch certificate, intermediate and root; links batch←intermediate,
	// intermediate←root, and the root's own signature.
	if certs != 3 || links != 3 {
		t.Errorf("after one chain: %d certificates, %d links; want 3 and 3", certs, links)
	}
	for range 5 {
		if _, err := v.Verify(mustAttest(t, f.factory, forge.AndroidKey{}).Chain, opts); err != nil {
			t.Fatal(err)
		}
	}
	if c, l := cache.Len(); c != certs || l != links {
		t.Errorf("after six chains: %d certificates, %d links; the leaves went into the cache", c, l)
	}
	// A cached link is not a pass for a validation time or a revocation
	// list: both are checked on every call.
	expired := opts
	expired.Time = t0.AddDate(-3, 0, 0)
	if _, err := v.Verify(mustAttest(t, f.factory, forge.AndroidKey{}).Chain, expired); attest.CodeOf(err) != androidkey.CodeNotYetValid {
		t.Errorf("warm chain, time before its intermediates: %v", err)
	}
}

func TestConcurrentVerify(t *testing.T) {
	f := getFixture(t)
	var v androidkey.Verifier // the zero Verifier is ready to use
	atts := []*forge.AndroidAttestation{
		mustAttest(t, f.factory, forge.AndroidKey{}),
		mustAttest(t, f.remote, forge.AndroidKey{Level: "strongbox"}),
		mustAttest(t, f.other, forge.AndroidKey{}),
	}
	roots := androidkey.NewRoots(f.factory.Root.Cert)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				a := atts[(g+i)%len(atts)]
				_, err := v.Verify(a.Chain, androidkey.Options{Challenge: challenge, Time: t0, Roots: roots})
				want := attest.Code("")
				if a == atts[2] {
					want = androidkey.CodeUntrustedRoot
				}
				if attest.CodeOf(err) != want {
					t.Errorf("goroutine %d: %v, want %q", g, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
