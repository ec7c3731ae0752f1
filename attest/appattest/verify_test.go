package appattest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/testvectors/forge"
)

const testAppID = "KB12345678.dev.keybind.test"

// fixture is a forged CA, a key, its attestation and an assertion.
type fixture struct {
	now        time.Time
	ca         *forge.AppAttestCA
	key        *ecdsa.PrivateKey
	att        *forge.AppAttestation
	cdh        []byte
	clientData []byte
	assertion  []byte
}

func newFixture(t testing.TB, opts forge.AppAttestOptions) *fixture {
	t.Helper()
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	ca, err := forge.NewAppAttestCA(now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("challenge"))
	opts.AppID, opts.ClientDataHash = testAppID, cdh[:]
	att, err := ca.Attest(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	clientData := []byte(`{"approve":"session-1","challenge":"c-123"}`)
	as, err := forge.AppAssert(key, forge.AppAssertOptions{AppID: testAppID, ClientData: clientData, Counter: 1, Extensions: opts.Extensions})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{now: now, ca: ca, key: key, att: att, cdh: cdh[:], clientData: clientData, assertion: as.Marshal()}
}

func (f *fixture) opts() AttestationOptions {
	return AttestationOptions{ClientDataHash: f.cdh, AppIDs: []string{testAppID}, Time: f.now, Roots: []*x509.Certificate{f.ca.Root}}
}

// TestAttestationInputs checks the refusals of inputs that the vector format
// cannot express.
func TestAttestationInputs(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{})
	v := NewVerifier()
	for _, tc := range []struct {
		name string
		edit func(*AttestationOptions, *[]byte)
		code attest.Code
	}{
		{"no app ids", func(o *AttestationOptions, _ *[]byte) { o.AppIDs = nil }, CodeAppIDs},
		{"bad environment", func(o *AttestationOptions, _ *[]byte) { o.Environment = 7 }, CodeEnvironment},
		{"no client data hash", func(o *AttestationOptions, _ *[]byte) { o.ClientDataHash = nil }, CodeClientDataHash},
		{"key id too long", func(_ *AttestationOptions, k *[]byte) { *k = make([]byte, 33) }, CodeKeyID},
		{"empty roots trust nothing", func(o *AttestationOptions, _ *[]byte) { o.Roots = []*x509.Certificate{} }, CodeUntrustedRoot},
		{"nil root skipped", func(o *AttestationOptions, _ *[]byte) { o.Roots = []*x509.Certificate{nil} }, CodeUntrustedRoot},
	} {
		opts, keyID := f.opts(), f.att.KeyID
		tc.edit(&opts, &keyID)
		att, err := v.VerifyAttestation(f.att.Object, keyID, opts)
		if att != nil || attest.CodeOf(err) != tc.code || !errors.Is(err, tc.code.Err()) {
			t.Errorf("%s: %v %v, want %s", tc.name, att, err, tc.code)
		}
	}
	if _, err := ParseEnvironment("staging"); attest.CodeOf(err) != CodeEnvironment {
		t.Errorf("ParseEnvironment(staging): %v", err)
	}
	for _, e := range []Environment{Production, Development, AnyEnvironment} {
		if got, err := ParseEnvironment(e.String()); got != e || err != nil {
			t.Errorf("ParseEnvironment(%v) = %v, %v", e, got, err)
		}
	}
	// The zero time is now: the forged leaf (valid around 2026-10-01) is
	// judged at the real clock.
	opts := f.opts()
	opts.Time = time.Time{}
	_, err := v.VerifyAttestation(f.att.Object, f.att.KeyID, opts)
	if now := time.Now(); now.After(f.att.Leaf.NotAfter) && attest.CodeOf(err) != CodeExpired {
		t.Errorf("at the current time: %v", err)
	}
}

// TestIntermediateExpiry checks that the intermediate's validity is checked,
// not only the credential certificate's.
func TestIntermediateExpiry(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{})
	opts := f.opts()
	opts.Time = f.ca.Intermediate.NotAfter.Add(time.Hour)
	if _, err := NewVerifier().VerifyAttestation(f.att.Object, f.att.KeyID, opts); attest.CodeOf(err) != CodeExpired {
		t.Errorf("after the intermediate expired: %v", err)
	}
}

// TestVerifierConcurrent verifies attestations from many goroutines with
// one Verifier, its zero value included (run with -race).
func TestVerifierConcurrent(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{KeyUsage: true})
	var zero Verifier
	for _, v := range []*Verifier{NewVerifier(), &zero} {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 4; j++ {
					if _, err := v.VerifyAttestation(f.att.Object, f.att.KeyID, f.opts()); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if certs, links := v.cache.Len(); certs != 1 || links != 1 {
			t.Errorf("cache holds %d certificates and %d links, want 1 and 1", certs, links)
		}
	}
}

// TestParseAssertionViews checks that ParseAssertion returns views of its
// input, not copies.
func TestParseAssertionViews(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{})
	a, err := ParseAssertion(f.assertion)
	if err != nil {
		t.Fatal(err)
	}
	within := func(s []byte) bool {
		p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(f.assertion)))
		return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(f.assertion))
	}
	if !within(a.Signature) || !within(a.AuthenticatorData) {
		t.Error("ParseAssertion copied the signature or the authenticator data")
	}
	if a.Counter != 1 || a.Flags != 0x40 || a.RPIDHash != sha256.Sum256([]byte(testAppID)) {
		t.Errorf("assertion %+v", a)
	}
}

// TestAssertionAllocations checks the hot path: parsing and the checks
// allocate nothing, and VerifyAssertion allocates no more than the
// ecdsa.VerifyASN1 call it makes.
func TestAssertionAllocations(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{Extensions: &forge.AppAttestExtensions{BundleVersion: "3.1", ValidationCategory: 4}})
	pub := &f.key.PublicKey
	opts := AssertionOptions{AppIDs: []string{"KB12345678.dev.keybind.other-app-with-a-long-bundle-identifier", testAppID}, Challenge: []byte("c-123")}
	split := testing.AllocsPerRun(200, func() {
		a, err := ParseAssertion(f.assertion)
		if err != nil {
			panic(err)
		}
		if _, err := a.Check(f.clientData, opts); err != nil {
			panic(err)
		}
		_ = a.SignedDigest(f.clientData)
	})
	if split != 0 {
		t.Errorf("ParseAssertion + Check + SignedDigest: %v allocations, want 0", split)
	}
	a, _ := ParseAssertion(f.assertion)
	d := a.SignedDigest(f.clientData)
	plain := testing.AllocsPerRun(200, func() { ecdsa.VerifyASN1(pub, d[:], a.Signature) })
	full := testing.AllocsPerRun(200, func() {
		if _, err := VerifyAssertion(f.assertion, f.clientData, pub, opts); err != nil {
			panic(err)
		}
	})
	if full > plain {
		t.Errorf("VerifyAssertion: %v allocations, ecdsa.VerifyASN1 alone %v", full, plain)
	}
	t.Logf("allocations: VerifyAssertion %v, ecdsa.VerifyASN1 %v", full, plain)
}

// TestAssertionInputs checks refusals the vectors do not cover.
func TestAssertionInputs(t *testing.T) {
	f := newFixture(t, forge.AppAttestOptions{})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	opts := AssertionOptions{AppIDs: []string{testAppID}}
	for _, tc := range []struct {
		name string
		pub  *ecdsa.PublicKey
		opts AssertionOptions
		code attest.Code
	}{
		{"nil key", nil, opts, CodePublicKey},
		{"P-384 key", &p384.PublicKey, opts, CodePublicKey},
		{"no app ids", &f.key.PublicKey, AssertionOptions{}, CodeAppIDs},
	} {
		res, err := VerifyAssertion(f.assertion, f.clientData, tc.pub, tc.opts)
		if !reflect.DeepEqual(res, AssertionResult{}) || attest.CodeOf(err) != tc.code {
			t.Errorf("%s: %+v %v, want %s", tc.name, res, err, tc.code)
		}
	}
	// An empty challenge is no challenge.
	if _, err := VerifyAssertion(f.assertion, f.clientData, &f.key.PublicKey, AssertionOptions{AppIDs: opts.AppIDs, Challenge: []byte{}}); err != nil {
		t.Error(err)
	}
	// Keys in both encodings parse to the same key.
	point, _ := f.key.PublicKey.Bytes()
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	for _, b := range [][]byte{point, der} {
		if pub, err := ParsePublicKey(b); err != nil || !pub.Equal(&f.key.PublicKey) {
			t.Errorf("ParsePublicKey(% x…): %v", b[:4], err)
		}
	}
	p384der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for _, b := range [][]byte{nil, {4}, append([]byte{4}, make([]byte, 64)...), p384der} {
		if _, err := ParsePublicKey(b); attest.CodeOf(err) != CodePublicKey {
			t.Errorf("ParsePublicKey(% x): %v", b, err)
		}
	}
}

// TestExtensions checks the parsing of the iOS 27 extension map: both
// encodings of the category, unknown keys, and every refusal.
func TestExtensions(t *testing.T) {
	h := func(s string) []byte { return mustHex(s) }
	bv := "77" + hexText("apple_bundle_version_01")
	cat := "78" + "1c" + hexText("apple_validation_category_01")
	for _, tc := range []struct {
		name, hex string
		ed        bool
		ok        bool
		version   string
		category  uint32
		unknown   int
	}{
		{"none", "", false, true, "", 0, 0},
		{"empty map", "a0", false, true, "", 0, 0},
		{"both", "a2" + bv + "6131" + cat + "4404000000", false, true, "1", 4, 0},
		{"with ED flag", "a1" + cat + "4402000000", true, true, "", 2, 0},
		{"category as integer", "a1" + cat + "03", false, true, "", 3, 0},
		{"unknown key", "a2" + cat + "4401000000" + "63" + hexText("abc") + "a10102", false, true, "", 1, 1},
		{"ED flag without map", "", true, false, "", 0, 0},
		{"not a map", "4401000000", false, false, "", 0, 0},
		{"junk after map", "a0" + "00", false, false, "", 0, 0},
		{"integer key", "a10102", false, false, "", 0, 0},
		{"version not text", "a1" + bv + "4131", false, false, "", 0, 0},
		{"category 3 bytes", "a1" + cat + "43010000", false, false, "", 0, 0},
		{"category too large", "a1" + cat + "1b0000000100000000", false, false, "", 0, 0},
		{"category negative", "a1" + cat + "20", false, false, "", 0, 0},
		{"duplicate key", "a2" + cat + "01" + cat + "02", false, false, "", 0, 0},
		{"indefinite map", "bf" + cat + "01ff", false, false, "", 0, 0},
		{"tag", "c0a0", false, false, "", 0, 0},
		{"truncated", "a1" + cat + "44010000", false, false, "", 0, 0},
	} {
		e, err := parseExtensions(h(tc.hex), tc.ed)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.ok {
			if !reflect.DeepEqual(e, Extensions{}) {
				t.Errorf("%s: partial result %+v", tc.name, e)
			}
			continue
		}
		v, hasV := e.BundleVersion()
		c, _ := e.ValidationCategory()
		if v != tc.version || c != tc.category || e.Unknown() != tc.unknown || e.Present() != (tc.hex != "") || hasV != (tc.version != "") {
			t.Errorf("%s: %+v", tc.name, e)
		}
	}
}

func hexText(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}
