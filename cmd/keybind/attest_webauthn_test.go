package main

import (
	"strings"
	"testing"
)

// TestAttestWebAuthn runs the committed webauthn vectors through `keybind
// attest webauthn`.
func TestAttestWebAuthn(t *testing.T) {
	attestEveryVector(t, "webauthn", "webauthn", nil)
}

func TestAttestWebAuthnArguments(t *testing.T) {
	ok := []string{"attest", "webauthn", "--attestation-object", "hex:a0", "--client-data-json", "text:{}", "--challenge", "hex:01", "--origin", "https://a.example", "--rp-id", "a.example"}
	for _, args := range [][]string{
		{"attest", "webauthn"},
		ok[:len(ok)-2],
		append(ok[:3:3], append([]string{"zz"}, ok[4:]...)...),
		append(ok, "--policy", `{"min_security_level":"high"}`),
		append(ok, "--policy", `{"unknown":true}`),
		append(ok, "--policy", "file:/nonexistent/policy.json"),
		append(ok, "--time", "soon"),
		append(ok, "--roots", "hex:00"),
		append(ok, "--environment", "staging"),
		append(ok, "extra"),
	} {
		if st, _, errOut := keybind(t, args...); st != 2 || errOut == "" {
			t.Errorf("%v: status %d, stderr %q", args, st, errOut)
		}
	}
	st, out, _ := keybind(t, ok...)
	if st != 1 || !strings.Contains(out, `"error": "webauthn.client_data_malformed"`) {
		t.Errorf("empty client data: status %d, %s", st, out)
	}
}
