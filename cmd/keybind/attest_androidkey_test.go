package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/testvectors/forge"
)

type cliVerdict struct {
	Verdict string         `json:"verdict"`
	Format  string         `json:"format"`
	Root    string         `json:"root"`
	Error   string         `json:"error"`
	Facts   map[string]any `json:"facts"`
}

func TestAttestAndroid(t *testing.T) {
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Shape: forge.RemoteShape, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.Attest(forge.AndroidKey{Challenge: []byte("sign-in 42"), UserAuth: true, Package: "com.example.phone"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chain := write("chain.pem", att.ChainPEM())
	roots := write("roots.pem", ca.RootPEM())
	policy := write("policy.json", []byte(`{"require_user_auth": true, "packages": ["com.example.phone"], "expiry": "strict"}`))
	revoked := write("revoked.json", forge.AndroidStatusList(forge.AndroidStatusEntry{Serial: ca.Intermediates[0].SerialNumber, Status: "REVOKED", Reason: "KEY_COMPROMISE"}))
	clean := write("clean.json", forge.AndroidStatusList())
	var derFiles []string
	for i, c := range att.Chain {
		derFiles = append(derFiles, "--chain", write("cert"+string(rune('0'+i))+".der", c))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			b, _ := os.ReadFile(revoked)
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	base := []string{"attest", "android", "--chain", chain, "--challenge", "text:sign-in 42", "--time", now.Format(time.RFC3339), "--roots", roots}
	run := func(extra ...string) (int, cliVerdict, string) {
		t.Helper()
		st, out, errOut := keybind(t, append(append([]string{}, base...), extra...)...)
		var v cliVerdict
		if out != "" {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
		}
		return st, v, errOut
	}

	st, v, errOut := run("--policy", policy)
	if st != 0 || v.Verdict != "accept" || v.Format != "android-key" || v.Root == "" {
		t.Fatalf("accept: status %d, %+v, %s", st, v, errOut)
	}
	for k, want := range map[string]any{
		"security_level": "tee", "attestation_version": 300.0, "keymint_version": 300.0, "verified_boot_state": "verified",
		"device_locked": true, "os_patch_level": 202509.0, "package": "com.example.phone", "public_key_algorithm": "ecdsa-p256",
		"provisioning": "remote", "user_auth_required": true,
	} {
		if v.Facts[k] != want {
			t.Errorf("fact %s = %v, want %v", k, v.Facts[k], want)
		}
	}
	if st, v, _ := run("--policy", `{"packages": ["com.other"]}`); st != 1 || v.Verdict != "reject" || v.Error != "policy.package" {
		t.Errorf("inline policy: status %d, %+v", st, v)
	}
	if st, v, _ := run("--challenge", "hex:00"); st != 1 || v.Error != "android.challenge_mismatch" {
		t.Errorf("wrong challenge: status %d, %+v", st, v)
	}
	if st, v, _ := run("--time", now.AddDate(0, 3, 0).Format(time.RFC3339)); st != 1 || v.Error != "chain.expired" {
		t.Errorf("expired remote chain: status %d, %+v", st, v)
	}
	if st, v, _ := run("--revocation", revoked); st != 1 || v.Error != "chain.revoked" {
		t.Errorf("revoked (file): status %d, %+v", st, v)
	}
	if st, v, _ := run("--revocation", srv.URL+"/status"); st != 1 || v.Error != "chain.revoked" {
		t.Errorf("revoked (URL): status %d, %+v", st, v)
	}
	if st, v, _ := run("--revocation", clean); st != 0 {
		t.Errorf("clean list: status %d, %+v", st, v)
	}
	if st, v, _ := run("--revocation", srv.URL+"/missing"); st != 1 || v.Error != "chain.revocation_unavailable" {
		t.Errorf("unreadable list: status %d, %+v (must fail closed)", st, v)
	}
	// The chain as one DER file per certificate.
	derArgs := append([]string{"attest", "android", "--challenge", "text:sign-in 42", "--time", now.Format(time.RFC3339), "--roots", roots}, derFiles...)
	if st, out, errOut := keybind(t, derArgs...); st != 0 || !strings.Contains(out, `"accept"`) {
		t.Errorf("DER files: status %d\n%s%s", st, out, errOut)
	}
	// Without --roots the built-in Google roots apply.
	st, out, _ := keybind(t, "attest", "android", "--chain", chain, "--challenge", "text:sign-in 42", "--time", now.Format(time.RFC3339))
	if st != 1 || !strings.Contains(out, "chain.untrusted_root") {
		t.Errorf("forged chain under Google roots: status %d\n%s", st, out)
	}

	for name, args := range map[string][]string{
		"no chain":        {"attest", "android", "--challenge", "text:x"},
		"no challenge":    {"attest", "android", "--chain", chain},
		"missing file":    {"attest", "android", "--chain", filepath.Join(dir, "absent.pem"), "--challenge", "text:x"},
		"bad value":       {"attest", "android", "--chain", chain, "--challenge", "x"},
		"bad time":        {"attest", "android", "--chain", chain, "--challenge", "text:x", "--time", "tomorrow"},
		"unknown field":   {"attest", "android", "--chain", chain, "--challenge", "text:x", "--policy", `{"require_pin": true}`},
		"bad roots":       {"attest", "android", "--chain", chain, "--challenge", "text:x", "--roots", policy},
		"extra argument":  {"attest", "android", "--chain", chain, "--challenge", "text:x", "more"},
		"unknown flag":    {"attest", "android", "--chain", chain, "--challenge", "text:x", "--strict"},
		"key in the file": {"attest", "android", "--chain", write("key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), "--challenge", "text:x"},
	} {
		if st, out, errOut := keybind(t, args...); st != 2 || errOut == "" {
			t.Errorf("%s: status %d, stdout %q, stderr %q", name, st, out, errOut)
		}
	}
	// Garbage where a certificate belongs is a rejection with its code.
	if st, out, _ := keybind(t, "attest", "android", "--chain", write("garbage.der", []byte("garbage")), "--challenge", "text:x"); st != 1 || !strings.Contains(out, "asn1.certificate") {
		t.Errorf("garbage chain: status %d\n%s", st, out)
	}
}

// TestAttestAndroidRealChain verifies a real device's chain when the
// real-world vectors are at hand.
func TestAttestAndroidRealChain(t *testing.T) {
	dir := os.Getenv("KEYBIND_SHARED_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "vectors")
	}
	chain := filepath.Join(dir, "android", "keyattestation", "tegu", "sdk36", "TEE_EC_2026_ROOT.pem")
	if _, err := os.Stat(chain); err != nil {
		t.Skipf("no real-world vectors at %s", dir)
	}
	st, out, errOut := keybind(t, "attest", "android", "--chain", chain, "--challenge", "text:6417f92c-daef-4cc1-8828-5bb39338ffd5",
		"--time", "2026-02-24T00:56:03.060Z", "--policy", `{"min_security_level": "tee"}`)
	var v cliVerdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || st != 0 || v.Root != "Google Key Attestation CA1 (EC P-384)" || v.Facts["provisioning"] != "remote" {
		t.Errorf("status %d, %+v\n%s%s", st, v, out, errOut)
	}
}
