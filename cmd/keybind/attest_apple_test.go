package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/testvectors/forge"
)

// appleFiles forges an App Attest enrollment and a sign-in into a temporary
// folder, as a phone would send them.
type appleFiles struct {
	dir, root, attestation, assertion string
	keyID, cdh, pub                   string // flag values
	time                              string
}

const cliAppID = "KB12345678.dev.keybind.cli"

func newAppleFiles(t *testing.T) appleFiles {
	t.Helper()
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	ca, err := forge.NewAppAttestCA(now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cdh := sha256.Sum256([]byte("enroll challenge"))
	att, err := ca.Attest(key, forge.AppAttestOptions{AppID: cliAppID, ClientDataHash: cdh[:], KeyUsage: true, OSVersion: "27.0",
		Extensions: &forge.AppAttestExtensions{BundleVersion: "12", ValidationCategory: 4}})
	if err != nil {
		t.Fatal(err)
	}
	as, err := forge.AppAssert(key, forge.AppAssertOptions{AppID: cliAppID, ClientData: []byte("approve 47 challenge-xyz"), Counter: 5})
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	d := t.TempDir()
	f := appleFiles{dir: d, root: filepath.Join(d, "root.pem"), attestation: filepath.Join(d, "attestation.cbor"), assertion: filepath.Join(d, "assertion.cbor"),
		keyID: "b64:" + base64.StdEncoding.EncodeToString(att.KeyID), cdh: "hex:" + hex.EncodeToString(cdh[:]),
		pub: "b64url:" + base64.RawURLEncoding.EncodeToString(spki), time: now.Format(time.RFC3339)}
	for name, b := range map[string][]byte{f.root: ca.RootPEM(), f.attestation: att.Object, f.assertion: as.Marshal()} {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f appleFiles) attestArgs(extra ...string) []string {
	return append([]string{"attest", "apple", "--attestation", f.attestation, "--key-id", f.keyID, "--client-data-hash", f.cdh,
		"--app-id", "KB12345678.dev.keybind.other", "--app-id", cliAppID, "--time", f.time, "--roots", f.root}, extra...)
}

func decodeOutput(t *testing.T, out string) attestOutput {
	t.Helper()
	var o attestOutput
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return o
}

func TestAttestApple(t *testing.T) {
	f := newAppleFiles(t)
	st, out, errOut := keybind(t, f.attestArgs()...)
	o := decodeOutput(t, out)
	if st != 0 || o.Verdict != "accept" || o.Format != "apple-appattest" || o.Trust != "hardware" || o.Root != "keybind forge App Attestation Root CA" {
		t.Fatalf("status %d, %+v, stderr %q", st, o, errOut)
	}
	for k, want := range map[string]any{"environment": "production", "app_id": cliAppID, "counter": 0.0, "os_version": "27.0",
		"bundle_version": "12", "validation_category": 4.0, "key_id": strings.TrimPrefix(f.keyID, "b64:")} {
		if o.Facts[k] != want {
			t.Errorf("fact %s = %v, want %v", k, o.Facts[k], want)
		}
	}

	// Rejections print the code and exit 1.
	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"--environment", "development"}, "appattest.environment_mismatch"},
		{[]string{"--time", "2027-01-01T00:00:00Z"}, "chain.expired"},
		{[]string{"--client-data-hash", "text:other"}, "appattest.nonce_mismatch"},
	} {
		st, out, errOut := keybind(t, f.attestArgs(tc.args...)...)
		if o := decodeOutput(t, out); st != 1 || o.Verdict != "reject" || string(o.Error) != tc.code || !strings.Contains(errOut, tc.code) {
			t.Errorf("%v: status %d, %+v", tc.args, st, o)
		}
	}
	// Without --roots the forge is not trusted.
	args := []string{"attest", "apple", "--attestation", f.attestation, "--key-id", f.keyID, "--client-data-hash", f.cdh, "--app-id", cliAppID, "--time", f.time}
	if st, out, _ := keybind(t, args...); st != 1 || decodeOutput(t, out).Error != "chain.untrusted_root" {
		t.Errorf("under Apple's root: %d %s", st, out)
	}

	// Bad arguments exit 2 and print nothing on stdout.
	for _, bad := range [][]string{
		{"attest", "apple"},
		{"attest", "apple", "--attestation", f.attestation},
		f.attestArgs("--environment", "staging"),
		f.attestArgs("--time", "yesterday"),
		f.attestArgs("--key-id", "base64:abc"),
		f.attestArgs("--roots", filepath.Join(f.dir, "missing.pem")),
		f.attestArgs("--roots", f.attestation),
		f.attestArgs("extra"),
		{"attest", "apple", "--attestation", filepath.Join(f.dir, "missing.cbor"), "--key-id", f.keyID, "--client-data-hash", f.cdh, "--app-id", cliAppID},
	} {
		if st, out, errOut := keybind(t, bad...); st != 2 || out != "" || errOut == "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q", bad, st, out, errOut)
		}
	}
}

func TestAttestAppleAssertion(t *testing.T) {
	f := newAppleFiles(t)
	base := []string{"attest", "apple-assertion", "--assertion", f.assertion, "--client-data", "text:approve 47 challenge-xyz", "--app-id", cliAppID}
	with := func(args []string, extra ...string) []string { return append(append([]string{}, args...), extra...) }
	withKey := with(base, "--public-key", f.pub)
	withAttestation := with(base, "--attestation", f.attestation, "--key-id", f.keyID, "--client-data-hash", f.cdh, "--time", f.time, "--roots", f.root)
	for _, args := range [][]string{
		withKey,
		with(withKey, "--previous-counter", "4", "--challenge", "text:challenge-xyz"),
		withAttestation,
	} {
		st, out, errOut := keybind(t, args...)
		if o := decodeOutput(t, out); st != 0 || o.Verdict != "accept" || o.Format != "apple-appattest-assertion" || o.Facts["counter"] != 5.0 {
			t.Errorf("%v: status %d, %+v, stderr %q", args, st, o, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		code string
	}{
		{with(withKey, "--previous-counter", "5"), "assert.counter"},
		{with(withKey, "--challenge", "text:other"), "assert.challenge"},
		{with(base, "--public-key", "hex:04"), "input.public_key"},
		{with(withAttestation, "--environment", "development"), "appattest.environment_mismatch"},
		{[]string{"attest", "apple-assertion", "--assertion", f.assertion, "--client-data", "text:approve 48", "--app-id", cliAppID, "--public-key", f.pub}, "assert.signature"},
	} {
		st, out, _ := keybind(t, tc.args...)
		if o := decodeOutput(t, out); st != 1 || string(o.Error) != tc.code {
			t.Errorf("%v: status %d, %+v", tc.args, st, o)
		}
	}
	for _, bad := range [][]string{
		base,
		with(withKey, "--attestation", f.attestation),
		with(withKey, "--previous-counter", "-1"),
		with(withKey, "--previous-counter", "4294967296"),
		with(withKey, "--challenge", "nope"),
		{"attest", "apple-assertion", "--assertion", f.assertion, "--app-id", cliAppID, "--public-key", f.pub},
		with(base, "--attestation", f.attestation),
	} {
		if st, out, errOut := keybind(t, bad...); st != 2 || out != "" || errOut == "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q", bad, st, out, errOut)
		}
	}
}

// TestAttestAppleReal verifies a real attestation and assertion (the kayak
// sample in ../shared/vectors, read in place) under the built-in Apple root.
func TestAttestAppleReal(t *testing.T) {
	dir := os.Getenv("KEYBIND_SHARED_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "vectors")
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no real-world vectors at %s", dir)
		}
	}
	kayak := filepath.Join(dir, "appattest", "kayak")
	st, out, errOut := keybind(t, "attest", "apple-assertion", "--assertion", filepath.Join(kayak, "assertion.cbor"), "--client-data", "text:1234567890abcdefgh",
		"--attestation", filepath.Join(kayak, "attestation.cbor"), "--key-id", "b64:VnfqjSp0rWyyqNhrfh+9/IhLIvXuYTPAmJEVQwl4dko=",
		"--client-data-hash", "hex:bddace389020162bfc3cec0d82042a8eeebc73cb0fdcf9b50bde03a476329d66",
		"--app-id", "8YE23NZS57.com.kayak.travel", "--time", "2020-09-28T00:00:00Z")
	if o := decodeOutput(t, out); st != 0 || o.Facts["counter"] != 1.0 {
		t.Fatalf("status %d, %+v, stderr %q", st, o, errOut)
	}
}
