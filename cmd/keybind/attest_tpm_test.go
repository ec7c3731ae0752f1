package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/testvectors"
)

// flagsOfVector turns a vector's input and params into command flags, by
// field name (ak_public → --ak-public); file: values are made relative to
// the manifest's folder. Lists repeat the flag.
func flagsOfVector(t *testing.T, dir string, v testvectors.Vector, rename map[string]string) []string {
	t.Helper()
	var args []string
	for _, raw := range []json.RawMessage{v.Input, v.Params} {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for k, val := range m {
			name := strings.ReplaceAll(k, "_", "-")
			if r, ok := rename[k]; ok {
				name = r
			}
			var vals []any
			switch x := val.(type) {
			case []any:
				vals = x
			case map[string]any:
				b, _ := json.Marshal(x)
				vals = []any{string(b)}
			default:
				vals = []any{x}
			}
			for _, one := range vals {
				s, _ := one.(string)
				if rest, ok := strings.CutPrefix(s, "file:"); ok {
					s = "file:" + filepath.Join(dir, rest)
				}
				args = append(args, "--"+name, s)
			}
		}
	}
	return args
}

// attestEveryVector runs every vector of a committed set through a
// `keybind attest` command and checks its verdict, error code and exit
// status.
func attestEveryVector(t *testing.T, set, cmd string, rename map[string]string) {
	dir := filepath.Join("..", "..", "testvectors", set)
	m, err := testvectors.LoadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			args := append([]string{"attest", cmd}, flagsOfVector(t, dir, v, rename)...)
			st, out, errOut := keybind(t, args...)
			var got attestOutput
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("status %d, output %q, stderr %q", st, out, errOut)
			}
			switch {
			case v.Expect.Verdict == "accept" && (st != 0 || got.Verdict != "accept"):
				t.Fatalf("want accept, got status %d %+v", st, got)
			case v.Expect.Verdict == "reject" && (st != 1 || got.Verdict != "reject" || !got.Error.HasPrefix(v.Expect.Error)):
				t.Fatalf("want reject %s, got status %d %+v", v.Expect.Error, st, got)
			}
			for k, want := range v.Expect.Facts {
				if !jsonEqualValues(got.Facts[k], want) {
					t.Errorf("fact %s: got %v, want %v", k, got.Facts[k], want)
				}
			}
		})
	}
}

func jsonEqualValues(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestAttestTPM runs the committed tpm vectors through `keybind attest tpm`.
func TestAttestTPM(t *testing.T) {
	attestEveryVector(t, "tpm", "tpm", nil)
}

func TestAttestTPMArguments(t *testing.T) {
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	os.WriteFile(roots, []byte("not a certificate"), 0o644)
	for _, args := range [][]string{
		{"attest", "tpm"},
		{"attest", "tpm", "--ak-public", "hex:00", "--public", "hex:00", "--create-attestation", "hex:00", "--create-signature", "hex:00"},
		{"attest", "tpm", "--ak-public", "zz", "--public", "hex:00", "--create-attestation", "hex:00", "--create-signature", "hex:00", "--challenge", "hex:00"},
		{"attest", "tpm", "--ak-public", "hex:00", "--public", "hex:00", "--create-attestation", "hex:00", "--create-signature", "hex:00", "--challenge", "hex:00", "--time", "yesterday"},
		{"attest", "tpm", "--roots", "file:" + roots},
		{"attest", "tpm", "--ak-public", "hex:00", "--public", "hex:00", "--create-attestation", "hex:00", "--create-signature", "hex:00", "--challenge", "hex:00", "extra"},
	} {
		if st, _, errOut := keybind(t, args...); st != 2 || errOut == "" {
			t.Errorf("%v: status %d, stderr %q", args, st, errOut)
		}
	}
	st, out, _ := keybind(t, "attest", "tpm", "--ak-public", "hex:0000", "--public", "hex:00", "--create-attestation", "hex:00", "--create-signature", "hex:00", "--challenge", "hex:00")
	if st != 1 || !strings.Contains(out, `"error": "tpm.malformed_public"`) {
		t.Errorf("malformed AK: status %d, %s", st, out)
	}
}
