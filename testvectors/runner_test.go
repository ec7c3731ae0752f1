package testvectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/attest"
)

// echoKind is a kind for testing the runner itself: it decodes input.value
// with the value prefixes, rejects with params.error when given, and reports
// the decoded bytes and params.facts as facts.
func echoKind(c *Case) (map[string]any, error) {
	if _, err := c.Time(); err != nil {
		return nil, err
	}
	val, err := c.RequiredBytes(Input, "value")
	if err != nil {
		return nil, err
	}
	certs, _, err := c.Certificates(Input, "certs")
	if err != nil {
		return nil, err
	}
	code, _, err := c.String(Params, "error")
	if err != nil {
		return nil, err
	}
	var extra map[string]any
	if _, err := c.JSON(Params, "facts", &extra); err != nil {
		return nil, err
	}
	if code != "" {
		return nil, attest.Errorf(attest.Code(code), "rejected as asked")
	}
	facts := map[string]any{"value": string(val), "certs": len(certs)}
	for k, v := range extra {
		facts[k] = v
	}
	return facts, nil
}

func panicKind(c *Case) (map[string]any, error) { panic("boom") }

func writeManifest(t *testing.T, dir string, vectors ...map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"version": 1, "description": "runner test", "vectors": vectors}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func vec(id, value string, expect map[string]any, params map[string]any) map[string]any {
	p := map[string]any{"time": "2026-01-02T03:04:05.678Z"}
	for k, v := range params {
		p[k] = v
	}
	return map[string]any{"id": id, "source": "runner test", "kind": "echo",
		"input": map[string]any{"value": value}, "params": p, "expect": expect}
}

func runDir(t *testing.T, path string) (Summary, string, error) {
	t.Helper()
	var out bytes.Buffer
	r := Runner{Out: &out, Kinds: map[string]KindFunc{"echo": echoKind, "panics": panicKind}}
	sum, err := r.Run(path)
	return sum, out.String(), err
}

func TestValuePrefixes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v.bin"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	accept := func(v string) map[string]any {
		return map[string]any{"verdict": "accept", "facts": map[string]any{"value": v}}
	}
	p := writeManifest(t, dir,
		vec("hex", "hex:616263", accept("abc"), nil),
		vec("b64", "b64:YWJj", accept("abc"), nil),
		vec("b64-padded", "b64:YWI=", accept("ab"), nil),
		vec("b64-unpadded", "b64:YWI", accept("ab"), nil),
		vec("b64url", "b64url:-_8", accept("\xfb\xff"), nil),
		vec("text", "text:a:b", accept("a:b"), nil),
		vec("file", "file:v.bin", accept("abc"), nil),
	)
	sum, out, err := runDir(t, p)
	if err != nil || sum.Failed != 0 || sum.Passed != 7 {
		t.Fatalf("sum %+v err %v\n%s", sum, err, out)
	}
}

func TestBadValuesAreUnusable(t *testing.T) {
	for _, tc := range []struct{ value, field string }{
		{"616263", "input.value"},
		{"zzz:abc", "input.value"},
		{"hex:6", "input.value"},
		{"b64:!!", "input.value"},
		{"file:missing.bin", "input.value"},
	} {
		dir := t.TempDir()
		p := writeManifest(t, dir, vec("v", tc.value, map[string]any{"verdict": "accept"}, nil))
		sum, out, err := runDir(t, p)
		var me *ManifestError
		if !errors.As(err, &me) || !strings.HasSuffix(me.Field, tc.field) {
			t.Errorf("%s: err = %v, want a ManifestError naming %s", tc.value, err, tc.field)
		}
		if sum.Failed != 1 || sum.Unusable != 1 || !strings.Contains(out, "FAIL v: unusable vector: "+tc.field) {
			t.Errorf("%s: sum %+v, output %q", tc.value, sum, out)
		}
	}
}

func TestUnknownFieldIsUnusable(t *testing.T) {
	p := writeManifest(t, t.TempDir(), vec("v", "text:a", map[string]any{"verdict": "accept"}, map[string]any{"polcy": map[string]any{}}))
	_, out, err := runDir(t, p)
	if err == nil || !strings.Contains(err.Error(), "params.polcy") {
		t.Fatalf("err = %v, output %q", err, out)
	}
}

func TestVerdicts(t *testing.T) {
	dir := t.TempDir()
	p := writeManifest(t, dir,
		vec("accept-ok", "text:x", map[string]any{"verdict": "accept"}, nil),
		vec("reject-prefix", "text:x", map[string]any{"verdict": "reject", "error": "chain."}, map[string]any{"error": "chain.expired"}),
		vec("reject-exact", "text:x", map[string]any{"verdict": "reject", "error": "chain.expired"}, map[string]any{"error": "chain.expired"}),
		vec("reject-any", "text:x", map[string]any{"verdict": "reject"}, map[string]any{"error": "android.challenge_mismatch"}),
		vec("facts-ok", "text:x", map[string]any{"verdict": "accept", "facts": map[string]any{"n": 300, "b": false}}, map[string]any{"facts": map[string]any{"n": 300, "b": false, "extra": "y"}}),
		// Mismatches, each must FAIL.
		vec("want-accept-got-reject", "text:x", map[string]any{"verdict": "accept"}, map[string]any{"error": "chain.expired"}),
		vec("want-reject-got-accept", "text:x", map[string]any{"verdict": "reject"}, nil),
		vec("wrong-code", "text:x", map[string]any{"verdict": "reject", "error": "chain."}, map[string]any{"error": "android.challenge_mismatch"}),
		vec("prefix-is-not-substring", "text:x", map[string]any{"verdict": "reject", "error": "expired"}, map[string]any{"error": "chain.expired"}),
		vec("fact-differs", "text:x", map[string]any{"verdict": "accept", "facts": map[string]any{"n": 300}}, map[string]any{"facts": map[string]any{"n": 4}}),
		vec("fact-missing", "text:x", map[string]any{"verdict": "accept", "facts": map[string]any{"n": 300}}, nil),
		map[string]any{"id": "unknown-kind", "kind": "quantum", "input": map[string]any{}, "params": map[string]any{}, "expect": map[string]any{"verdict": "accept"}},
		map[string]any{"id": "panics", "kind": "panics", "expect": map[string]any{"verdict": "reject"}},
	)
	sum, out, err := runDir(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed != 5 || sum.Failed != 8 {
		t.Errorf("sum = %+v\n%s", sum, out)
	}
	for _, id := range []string{"want-accept-got-reject", "want-reject-got-accept", "wrong-code", "prefix-is-not-substring", "fact-differs", "fact-missing", "unknown-kind", "panics"} {
		if !strings.Contains(out, "FAIL "+id+": ") {
			t.Errorf("no FAIL line for %s:\n%s", id, out)
		}
	}
	for _, want := range []string{`unknown kind "quantum"`, "expected 300, got 4", "panicked"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPEMCertificatesInOrder(t *testing.T) {
	dir := t.TempDir()
	pemData := "-----BEGIN CERTIFICATE-----\nYQ==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nYg==\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), []byte(pemData), 0o644); err != nil {
		t.Fatal(err)
	}
	v := vec("certs", "text:x", map[string]any{"verdict": "accept", "facts": map[string]any{"certs": 3}}, nil)
	v["input"].(map[string]any)["certs"] = []string{"file:c.pem", "hex:63"}
	p := writeManifest(t, dir, v)
	c, err := newCase(mustLoad(t, p), dir)
	if err != nil {
		t.Fatal(err)
	}
	certs, ok, err := c.Certificates(Input, "certs")
	if err != nil || !ok || len(certs) != 3 || string(certs[0]) != "a" || string(certs[1]) != "b" || string(certs[2]) != "c" {
		t.Fatalf("certs = %q, %v, %v", certs, ok, err)
	}
	if sum, out, err := runDir(t, p); err != nil || sum.Passed != 1 {
		t.Fatalf("%+v %v\n%s", sum, err, out)
	}
}

func mustLoad(t *testing.T, p string) *Vector {
	m, err := LoadManifest(p)
	if err != nil {
		t.Fatal(err)
	}
	return &m.Vectors[0]
}

func TestUnusableManifests(t *testing.T) {
	for name, tc := range map[string]struct{ body, field string }{
		"not json":        {`{`, ""},
		"version":         {`{"version": 2, "vectors": [{"id":"a","kind":"echo","expect":{"verdict":"accept"}}]}`, "version"},
		"no vectors":      {`{"version": 1}`, "vectors"},
		"no id":           {`{"version": 1, "vectors": [{"kind":"echo","expect":{"verdict":"accept"}}]}`, "vectors[0].id"},
		"duplicate id":    {`{"version": 1, "vectors": [{"id":"a","kind":"echo","expect":{"verdict":"accept"}},{"id":"a","kind":"echo","expect":{"verdict":"accept"}}]}`, "vectors[1].id"},
		"no kind":         {`{"version": 1, "vectors": [{"id":"a","expect":{"verdict":"accept"}}]}`, "vectors[0].kind"},
		"bad verdict":     {`{"version": 1, "vectors": [{"id":"a","kind":"echo","expect":{"verdict":"ok"}}]}`, "vectors[0].expect.verdict"},
		"error on accept": {`{"version": 1, "vectors": [{"id":"a","kind":"echo","expect":{"verdict":"accept","error":"chain."}}]}`, "vectors[0].expect.error"},
		"unknown field":   {`{"version": 1, "vectorz": []}`, ""},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "manifest.json")
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := runDir(t, dir)
		var me *ManifestError
		if !errors.As(err, &me) || me.Field != tc.field {
			t.Errorf("%s: err = %v, want field %q", name, err, tc.field)
		}
	}
}

func TestDirectoryOfManifests(t *testing.T) {
	root := t.TempDir()
	writeManifest(t, filepath.Join(root, "b"), vec("b1", "text:x", map[string]any{"verdict": "accept"}, nil))
	writeManifest(t, filepath.Join(root, "a", "deep"), vec("a1", "text:x", map[string]any{"verdict": "accept"}, nil), vec("a2", "text:x", map[string]any{"verdict": "accept"}, nil))
	sum, out, err := runDir(t, root)
	if err != nil || sum.Passed != 3 {
		t.Fatalf("%+v %v\n%s", sum, err, out)
	}
	if strings.Index(out, "a1") > strings.Index(out, "b1") {
		t.Errorf("manifests not run in lexical order:\n%s", out)
	}
	if _, _, err := runDir(t, t.TempDir()); err == nil {
		t.Error("a directory with no manifest ran")
	}
}
