package appattest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedVectors returns the folder of the real-world App Attest samples
// (../shared/vectors/appattest, or $KEYBIND_SHARED_VECTORS/appattest), read
// in place; the test skips when they are absent and not required.
func sharedVectors(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("KEYBIND_SHARED_VECTORS"); dir != "" {
		return filepath.Join(dir, "appattest")
	}
	dir := filepath.Join("..", "..", "..", "shared", "vectors", "appattest")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no real-world vectors at %s; set KEYBIND_SHARED_VECTORS to run them", dir)
	}
	return dir
}

func readShared(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedVectors(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The kayak sample (a production app): its attestation, key and assertion.
var (
	kayakKeyID          = mustB64("VnfqjSp0rWyyqNhrfh+9/IhLIvXuYTPAmJEVQwl4dko=")
	kayakClientDataHash = mustHex("bddace389020162bfc3cec0d82042a8eeebc73cb0fdcf9b50bde03a476329d66")
	kayakAppID          = "8YE23NZS57.com.kayak.travel"
	kayakTime           = time.Date(2020, 9, 28, 0, 0, 0, 0, time.UTC)
	kayakPoint          = mustHex("04953177c14369f5844460c9fd75de5586b2d2171c86de88b262fa8218c998ff6aa3463c00895929912bfbf907aeee6766d9acd352a11af0272a0d8b07ab46f99d")
	kayakClientData     = []byte("1234567890abcdefgh")
)

// TestRealAssertionIsOverHashedNonce pins down the known pitfall with a real
// assertion: the Secure Enclave signs the nonce with ECDSA-SHA256, so the
// signature verifies against SHA-256(nonce), not against the nonce itself.
func TestRealAssertionIsOverHashedNonce(t *testing.T) {
	raw := readShared(t, "kayak/assertion.cbor")
	pub, err := ParsePublicKey(kayakPoint)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAssertion(raw)
	if err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256(kayakClientData)
	nonce := sha256.Sum256(append(append([]byte{}, a.AuthenticatorData...), cdh[:]...))
	if ecdsa.VerifyASN1(pub, nonce[:], a.Signature) {
		t.Fatal("the signature verifies over the bare nonce; expected it over SHA-256(nonce)")
	}
	d := a.SignedDigest(kayakClientData)
	if want := sha256.Sum256(nonce[:]); d != want {
		t.Fatalf("SignedDigest = %x, want SHA-256(nonce) %x", d, want)
	}
	if !ecdsa.VerifyASN1(pub, d[:], a.Signature) {
		t.Fatal("the signature does not verify over SHA-256(nonce)")
	}
	res, err := VerifyAssertion(raw, kayakClientData, pub, AssertionOptions{AppIDs: []string{kayakAppID}})
	if err != nil || res.Counter != 1 || res.Extensions.Present() {
		t.Fatalf("VerifyAssertion: %+v %v", res, err)
	}
}

// TestRealAttestation verifies the kayak attestation and checks every fact
// it reports, including that the key it returns is the key of the real
// assertion.
func TestRealAttestation(t *testing.T) {
	obj := readShared(t, "kayak/attestation.cbor")
	v := NewVerifier()
	att, err := v.VerifyAttestation(obj, kayakKeyID, AttestationOptions{
		ClientDataHash: kayakClientDataHash, AppIDs: []string{"other.app", kayakAppID}, Time: kayakTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	point, _ := att.PublicKey.Bytes()
	if string(point) != string(kayakPoint) {
		t.Errorf("attested key %x", point)
	}
	if att.AppID != kayakAppID || att.Environment != Production || att.Counter != 0 || att.OSVersion != "14.0.1" ||
		len(att.Receipt) < 1000 || att.Extensions.Present() {
		t.Errorf("attestation %+v", att)
	}
	vd := att.Verdict
	if vd.Format != "apple-appattest" || vd.Trust != "hardware" || vd.Root != AppleRootName || vd.PublicKey != att.PublicKey {
		t.Errorf("verdict %+v", vd)
	}
	for k, want := range map[string]any{"environment": "production", "app_id": kayakAppID, "counter": uint32(0), "public_key_algorithm": "ecdsa-p256", "os_version": "14.0.1"} {
		if vd.Facts[k] != want {
			t.Errorf("fact %s = %v, want %v", k, vd.Facts[k], want)
		}
	}
	for _, k := range []string{"key_id", "public_key", "receipt"} {
		if b, _ := vd.Facts[k].([]byte); len(b) == 0 {
			t.Errorf("fact %s missing", k)
		}
	}
	// The same attestation verified again uses the cached intermediate.
	if certs, links := v.cache.Len(); certs != 1 || links != 1 {
		t.Errorf("cache holds %d certificates and %d links, want the intermediate and its link", certs, links)
	}
	if _, err := v.VerifyAttestation(obj, kayakKeyID, AttestationOptions{ClientDataHash: kayakClientDataHash, AppIDs: []string{kayakAppID}, Time: kayakTime}); err != nil {
		t.Fatal(err)
	}
	if certs, links := v.cache.Len(); certs != 1 || links != 1 {
		t.Errorf("cache holds %d certificates and %d links after a second attestation", certs, links)
	}
}
