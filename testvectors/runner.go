// Package testvectors runs keybind test vectors: directories holding a
// manifest.json and the files it names, in the format of VECTORS.md
// (version 1). The format is a public interface: security teams run the same
// runner in their CI through `keybind vectors run DIR`.
//
// The project's own sets live in testvectors/<set>/manifest.json and are made
// by the generator in testvectors/generate; they are committed so that
// nobody needs to regenerate them to run them.
//
// To run a directory or a manifest:
//
//	r := testvectors.Runner{Out: os.Stdout}
//	sum, err := r.Run("testvectors")
//	// err != nil: a manifest is unusable (exit status 2)
//	// sum.Failed > 0: a verdict did not match (exit status 1)
//
// Each kind of vector ("android-key", "apple-appattest", …) is a KindFunc
// that reads its input and params through a *Case and returns the facts of an
// accepted attestation, or the verifier's error.
package testvectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/keybind/keybind/attest"
)

// Version is the manifest format version this runner implements.
const Version = 1

// Manifest is a manifest.json.
type Manifest struct {
	Version     int      `json:"version"`
	Description string   `json:"description"`
	Vectors     []Vector `json:"vectors"`
}

// Vector is one entry of a manifest.
type Vector struct {
	ID     string          `json:"id"`
	Source string          `json:"source"`
	Kind   string          `json:"kind"`
	Input  json.RawMessage `json:"input"`
	Params json.RawMessage `json:"params"`
	Expect Expect          `json:"expect"`
}

// Expect is a vector's expected verdict.
type Expect struct {
	Verdict string         `json:"verdict"` // "accept" or "reject"
	Error   string         `json:"error,omitempty"`
	Facts   map[string]any `json:"facts,omitempty"`
}

// KindFunc checks one vector of a kind. It returns the facts of an accepted
// attestation, or the verifier's error (an *attest.Error for a rejection).
// A problem with the vector itself (a missing field, a bad value) is a
// *FieldError, as returned by the Case getters. A KindFunc reads every field
// it supports before it verifies anything: fields left unread are reported
// as unknown.
type KindFunc func(c *Case) (facts map[string]any, err error)

// Kinds returns the kinds this build of keybind can check.
func Kinds() map[string]KindFunc {
	appAttest := newAppAttestKinds()
	return map[string]KindFunc{
		"android-key":               androidKey,
		"apple-appattest":           appAttest.attestation,
		"apple-appattest-assertion": appAttest.assertion,
		"tpm-certify":               kindTPMCertify,
		"webauthn":                  kindWebAuthn,
	}
}

// Runner runs manifests and reports one line per vector to Out.
type Runner struct {
	Out io.Writer
	// Kinds overrides the kinds table (nil means Kinds()).
	Kinds map[string]KindFunc
}

// Summary counts the vectors run.
type Summary struct {
	Passed, Failed int
	// Unusable counts vectors whose fields could not be used (each also
	// counted in Failed).
	Unusable int
}

// ManifestError says a manifest cannot be used at all: unreadable, not JSON,
// a version this runner does not implement, a required field missing.
type ManifestError struct {
	Path  string
	Field string // the offending field, "" when the whole file is at fault
	Err   error
}

func (e *ManifestError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Path, e.Field, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// Run runs path: a manifest.json, a directory holding one, or a directory
// whose subdirectories hold manifests (every manifest below it is run, in
// lexical order). It prints a line per vector and returns the counts. The
// error is non-nil when a manifest was unusable, or when a vector had
// unusable fields; the caller prints the summary either way.
func (r *Runner) Run(path string) (Summary, error) {
	var sum Summary
	manifests, err := findManifests(path)
	if err != nil {
		return sum, err
	}
	var firstErr error
	for _, m := range manifests {
		if err := r.runManifest(m, &sum); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return sum, firstErr
}

func findManifests(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &ManifestError{Path: path, Err: err}
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	direct := filepath.Join(path, "manifest.json")
	if _, err := os.Stat(direct); err == nil {
		return []string{direct}, nil
	}
	var found []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "manifest.json" {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return nil, &ManifestError{Path: path, Err: err}
	}
	if len(found) == 0 {
		return nil, &ManifestError{Path: path, Err: errors.New("no manifest.json in or below this directory")}
	}
	sort.Strings(found)
	return found, nil
}

// LoadManifest reads and checks a manifest: JSON with no unknown top-level
// or vector fields, version 1, and every vector with an id, a kind and a
// valid expectation.
func LoadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ManifestError{Path: path, Err: err}
	}
	var m Manifest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, &ManifestError{Path: path, Err: fmt.Errorf("not a valid manifest: %v", err)}
	}
	if d.More() {
		return nil, &ManifestError{Path: path, Err: errors.New("data after the manifest object")}
	}
	if m.Version != Version {
		return nil, &ManifestError{Path: path, Field: "version", Err: fmt.Errorf("is %d, this runner implements version %d", m.Version, Version)}
	}
	if len(m.Vectors) == 0 {
		return nil, &ManifestError{Path: path, Field: "vectors", Err: errors.New("missing or empty")}
	}
	seen := map[string]bool{}
	for i, v := range m.Vectors {
		field := func(f string) string { return fmt.Sprintf("vectors[%d].%s", i, f) }
		switch {
		case v.ID == "":
			return nil, &ManifestError{Path: path, Field: field("id"), Err: errors.New("missing")}
		case seen[v.ID]:
			return nil, &ManifestError{Path: path, Field: field("id"), Err: fmt.Errorf("%q is used twice", v.ID)}
		case v.Kind == "":
			return nil, &ManifestError{Path: path, Field: field("kind"), Err: errors.New("missing")}
		case v.Expect.Verdict != "accept" && v.Expect.Verdict != "reject":
			return nil, &ManifestError{Path: path, Field: field("expect.verdict"), Err: fmt.Errorf("is %q, want \"accept\" or \"reject\"", v.Expect.Verdict)}
		case v.Expect.Verdict == "accept" && v.Expect.Error != "":
			return nil, &ManifestError{Path: path, Field: field("expect.error"), Err: errors.New("given with verdict accept")}
		case v.Expect.Verdict == "reject" && v.Expect.Facts != nil:
			return nil, &ManifestError{Path: path, Field: field("expect.facts"), Err: errors.New("given with verdict reject")}
		}
		seen[v.ID] = true
	}
	return &m, nil
}

func (r *Runner) runManifest(path string, sum *Summary) error {
	m, err := LoadManifest(path)
	if err != nil {
		return err
	}
	kinds := r.Kinds
	if kinds == nil {
		kinds = Kinds()
	}
	dir := filepath.Dir(path)
	var firstErr error
	for i := range m.Vectors {
		v := &m.Vectors[i]
		msg, err := check(kinds, v, dir)
		var fe *FieldError
		switch {
		case errors.As(err, &fe):
			sum.Failed++
			sum.Unusable++
			fmt.Fprintf(r.Out, "FAIL %s: unusable vector: %v\n", v.ID, fe)
			if firstErr == nil {
				firstErr = &ManifestError{Path: path, Field: fmt.Sprintf("vectors[%d].%s", i, fe.Field), Err: fe.Err}
			}
		case msg != "":
			sum.Failed++
			fmt.Fprintf(r.Out, "FAIL %s: %s\n", v.ID, msg)
		default:
			sum.Passed++
			fmt.Fprintf(r.Out, "ok   %s\n", v.ID)
		}
	}
	return firstErr
}

// check runs one vector. It returns a mismatch message ("" when the vector
// passed), or a *FieldError when the vector cannot be used.
func check(kinds map[string]KindFunc, v *Vector, dir string) (string, error) {
	run, ok := kinds[v.Kind]
	if !ok {
		return fmt.Sprintf("unknown kind %q (this build checks %s)", v.Kind, kindList(kinds)), nil
	}
	c, err := newCase(v, dir)
	if err != nil {
		return "", err
	}
	facts, panicked, verr := safeRun(run, c)
	if panicked != nil {
		return fmt.Sprintf("BUG: the verifier panicked: %v", panicked), nil
	}
	var fe *FieldError
	if errors.As(verr, &fe) {
		return "", fe
	}
	if err := c.Done(); err != nil {
		return "", err
	}
	code := attest.CodeOf(verr)
	switch {
	case v.Expect.Verdict == "accept" && verr != nil:
		return fmt.Sprintf("expected accept, got reject: %v", verr), nil
	case v.Expect.Verdict == "reject" && verr == nil:
		if v.Expect.Error != "" {
			return fmt.Sprintf("expected reject with %s…, got accept", v.Expect.Error), nil
		}
		return "expected reject, got accept", nil
	case v.Expect.Verdict == "reject" && v.Expect.Error != "" && !code.HasPrefix(v.Expect.Error):
		return fmt.Sprintf("expected reject with %s…, got %v", v.Expect.Error, verr), nil
	case v.Expect.Verdict == "accept":
		return compareFacts(v.Expect.Facts, facts), nil
	}
	return "", nil
}

// safeRun runs a kind and recovers a panic, so that one vector cannot stop
// the run. A panic is a bug in keybind and fails the vector whatever it
// expected.
func safeRun(run KindFunc, c *Case) (facts map[string]any, panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	facts, err = run(c)
	return facts, nil, err
}

// compareFacts compares expected facts with reported ones after a JSON round
// trip of both, so that 300 and 300.0 and []byte/base64 compare as JSON does.
func compareFacts(want, got map[string]any) string {
	if len(want) == 0 {
		return ""
	}
	norm := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprintf("<unencodable %T>", v)
		}
		var out any
		_ = json.Unmarshal(b, &out)
		return out
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			return fmt.Sprintf("fact %s: expected %v, not reported", k, jsonText(want[k]))
		}
		if !reflect.DeepEqual(norm(want[k]), norm(g)) {
			return fmt.Sprintf("fact %s: expected %s, got %s", k, jsonText(want[k]), jsonText(g))
		}
	}
	return ""
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func kindList(kinds map[string]KindFunc) string {
	if len(kinds) == 0 {
		return "no kinds"
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
