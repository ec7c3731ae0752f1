package testvectors

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/testvectors/forge"
)

// TestAndroidKeyKind runs the android-key kind on a forged chain: roots as
// PEM values, DER lists, a revocation list, policy fields, and the fields
// that make a vector unusable.
func TestAndroidKeyKind(t *testing.T) {
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: now})
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.Attest(forge.AndroidKey{Challenge: []byte("c"), UserAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), att.ChainPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), ca.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad-status.json"), []byte(`{"entries": {"zz": {}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	derList := []any{}
	for _, c := range att.Chain {
		derList = append(derList, "b64:"+base64.StdEncoding.EncodeToString(c))
	}
	rootText := "text:" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Cert.Raw}))
	v := func(id string, input, params, expect map[string]any) map[string]any {
		p := map[string]any{"time": now.Format(time.RFC3339), "challenge": "text:c", "roots": []any{"file:root.pem"}}
		for k, x := range params {
			p[k] = x
		}
		in := map[string]any{"chain": "file:chain.pem"}
		for k, x := range input {
			in[k] = x
		}
		return map[string]any{"id": id, "kind": "android-key", "input": in, "params": p, "expect": expect}
	}
	accept := map[string]any{"verdict": "accept", "facts": map[string]any{"security_level": "tee", "provisioning": "factory", "public_key_algorithm": "ecdsa-p256", "device_locked": true}}
	writeManifest(t, dir,
		v("pem", nil, nil, accept),
		v("der list", map[string]any{"chain": derList}, map[string]any{"roots": []any{rootText}}, accept),
		v("policy", nil, map[string]any{"policy": map[string]any{"require_user_auth": true, "packages": []any{forge.AndroidDefaultPackage}, "signing_digests": []any{"hex:" + hex.EncodeToString(forge.AndroidDefaultSigningDigest)}}}, accept),
		v("google roots", nil, map[string]any{"roots": "google"}, map[string]any{"verdict": "reject", "error": "chain.untrusted_root"}),
		v("bad status list", nil, map[string]any{"revocation": "file:bad-status.json"}, map[string]any{"verdict": "reject", "error": "input.revocation_list"}),
	)
	sum, out, err := runKinds(t, dir)
	if err != nil || sum.Passed != 5 || sum.Failed != 0 {
		t.Fatalf("%+v %v\n%s", sum, err, out)
	}

	for field, vec := range map[string]map[string]any{
		"params.policy":    v("x", nil, map[string]any{"policy": map[string]any{"min_security_level": "tee", "require_fingerprint": true}}, accept),
		"params.roots":     v("x", nil, map[string]any{"roots": "apple"}, accept),
		"input.chain":      v("x", map[string]any{"chain": "file:absent.pem"}, nil, accept),
		"params.challenge": v("x", nil, map[string]any{"challenge": "c"}, accept),
		"params.time":      v("x", nil, map[string]any{"time": "yesterday"}, accept),
		"params.extra":     v("x", nil, map[string]any{"extra": 1}, accept),
	} {
		sub := filepath.Join(dir, strings.ReplaceAll(field, ".", "_"))
		writeManifest(t, sub, vec)
		if err := os.WriteFile(filepath.Join(sub, "chain.pem"), att.ChainPEM(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "root.pem"), ca.RootPEM(), 0o644); err != nil {
			t.Fatal(err)
		}
		sum, out, err := runKinds(t, sub)
		if err == nil || sum.Unusable != 1 || !strings.Contains(out, field) {
			t.Errorf("%s: %+v %v\n%s", field, sum, err, out)
		}
	}
}

// runKinds runs path with the kinds of this build.
func runKinds(t *testing.T, path string) (Summary, string, error) {
	t.Helper()
	var out bytes.Buffer
	r := Runner{Out: &out}
	sum, err := r.Run(path)
	return sum, out.String(), err
}
