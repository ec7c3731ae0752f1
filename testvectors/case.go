package testvectors

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/keybind/keybind/attest"
)

// maxFileSize bounds a file: value, so a manifest cannot make the runner read
// something unbounded.
const maxFileSize = 16 << 20

// FieldError says that a field of a vector is unusable: a bad value prefix,
// a missing file, a wrong JSON type, a field this runner does not know. It
// makes the manifest unusable (exit status 2), unlike a verdict mismatch.
type FieldError struct {
	Field string // "input.chain", "params.policy.min_security_level", …
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Case is one vector as a kind sees it: typed access to its input and params.
// Every getter records the field as used; Done reports fields nobody read, so
// that a misspelt or unsupported field is an error and never silently
// ignored.
type Case struct {
	ID   string
	Kind string
	dir  string // directory of the manifest, for file: values

	sections map[string]map[string]json.RawMessage
	used     map[string]bool
}

func newCase(v *Vector, dir string) (*Case, error) {
	c := &Case{ID: v.ID, Kind: v.Kind, dir: dir, sections: map[string]map[string]json.RawMessage{}, used: map[string]bool{}}
	for _, s := range []struct {
		name string
		raw  json.RawMessage
	}{{"input", v.Input}, {"params", v.Params}} {
		m := map[string]json.RawMessage{}
		if len(s.raw) > 0 && !bytes.Equal(bytes.TrimSpace(s.raw), []byte("null")) {
			if err := json.Unmarshal(s.raw, &m); err != nil {
				return nil, &FieldError{Field: s.name, Err: fmt.Errorf("must be a JSON object: %v", err)}
			}
		}
		c.sections[s.name] = m
	}
	return c, nil
}

// Section names for the getters.
const (
	Input  = "input"
	Params = "params"
)

func (c *Case) raw(section, field string) (json.RawMessage, bool) {
	c.used[section+"."+field] = true
	r, ok := c.sections[section][field]
	if ok && bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
		return nil, false
	}
	return r, ok
}

func (c *Case) fail(section, field string, format string, args ...any) error {
	return &FieldError{Field: section + "." + field, Err: fmt.Errorf(format, args...)}
}

// Has reports whether the field is present (and not null).
func (c *Case) Has(section, field string) bool {
	_, ok := c.raw(section, field)
	return ok
}

// JSON decodes the field into v, which must be a pointer. It returns false
// when the field is absent.
func (c *Case) JSON(section, field string, v any) (bool, error) {
	r, ok := c.raw(section, field)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(r, v); err != nil {
		return true, c.fail(section, field, "%v", err)
	}
	return true, nil
}

// String returns a plain JSON string field ("" and false when absent).
func (c *Case) String(section, field string) (string, bool, error) {
	var s string
	ok, err := c.JSON(section, field, &s)
	return s, ok, err
}

// Strings returns a field that is a JSON string or a list of strings.
func (c *Case) Strings(section, field string) ([]string, error) {
	r, ok := c.raw(section, field)
	if !ok {
		return nil, nil
	}
	var one string
	if json.Unmarshal(r, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(r, &many); err != nil {
		return nil, c.fail(section, field, "must be a string or a list of strings")
	}
	return many, nil
}

// Int returns an integer field; def when absent.
func (c *Case) Int(section, field string, def int64) (int64, error) {
	r, ok := c.raw(section, field)
	if !ok {
		return def, nil
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return 0, c.fail(section, field, "must be an integer")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, c.fail(section, field, "must be an integer: %v", err)
	}
	return v, nil
}

// Time returns params.time, which every vector must carry.
func (c *Case) Time() (time.Time, error) {
	s, ok, err := c.String(Params, "time")
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, c.fail(Params, "time", "missing (every vector states its validation time)")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, c.fail(Params, "time", "not RFC 3339: %v", err)
	}
	return t, nil
}

// Bytes decodes a byte value (hex:, b64:, b64url:, text:, file:). It returns
// nil and false when the field is absent.
func (c *Case) Bytes(section, field string) ([]byte, bool, error) {
	s, ok, err := c.String(section, field)
	if err != nil || !ok {
		return nil, ok, err
	}
	b, err := c.DecodeValue(s)
	if err != nil {
		return nil, true, c.fail(section, field, "%v", err)
	}
	return b, true, nil
}

// RequiredBytes is Bytes for a field that must be present.
func (c *Case) RequiredBytes(section, field string) ([]byte, error) {
	b, ok, err := c.Bytes(section, field)
	if err == nil && !ok {
		err = c.fail(section, field, "missing")
	}
	return b, err
}

// Certificates decodes a field holding certificates: one value (a PEM file
// or text with one or more CERTIFICATE blocks, read in order, or a single
// DER certificate) or a list of such values. It returns the DER bytes of each
// certificate in order, and false when the field is absent.
func (c *Case) Certificates(section, field string) ([][]byte, bool, error) {
	vals, err := c.Strings(section, field)
	if err != nil || vals == nil {
		return nil, false, err
	}
	var out [][]byte
	for i, s := range vals {
		b, err := c.DecodeValue(s)
		if err != nil {
			return nil, true, c.fail(section, field, "value %d: %v", i, err)
		}
		certs, err := attest.SplitCertificates(b)
		if err != nil {
			return nil, true, c.fail(section, field, "value %d: %v", i, err)
		}
		out = append(out, certs...)
	}
	return out, true, nil
}

// Roots decodes a roots parameter: absent or the built-in name (returned as
// builtin=true), or a list of PEM values (returned as DER certificates).
func (c *Case) Roots(section, field, builtinName string) (builtin bool, certs [][]byte, err error) {
	r, ok := c.raw(section, field)
	if !ok {
		return true, nil, nil
	}
	var name string
	if json.Unmarshal(r, &name) == nil && !strings.Contains(name, ":") {
		if name != builtinName {
			return false, nil, c.fail(section, field, "unknown built-in root set %q (this kind knows %q)", name, builtinName)
		}
		return true, nil, nil
	}
	certs, _, err = c.Certificates(section, field)
	return false, certs, err
}

// DecodeValue decodes one prefixed byte value of the vector format, with
// file: paths relative to the vector's manifest.
func (c *Case) DecodeValue(s string) ([]byte, error) { return DecodeValue(s, c.dir) }

// DecodeValue decodes one prefixed byte value of the vector format: hex:,
// b64: (standard alphabet, padding optional), b64url:, text: (the UTF-8
// bytes of the rest) or file:PATH (relative to dir unless absolute). The
// keybind command accepts the same syntax for byte-valued flags.
func DecodeValue(s, dir string) ([]byte, error) {
	prefix, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("value has no prefix (hex:, b64:, b64url:, text: or file:)")
	}
	switch prefix {
	case "hex":
		return hex.DecodeString(rest)
	case "b64":
		return decodeBase64(base64.StdEncoding, rest)
	case "b64url":
		return decodeBase64(base64.URLEncoding, rest)
	case "text":
		return []byte(rest), nil
	case "file":
		return readFile(dir, rest)
	}
	return nil, fmt.Errorf("unknown value prefix %q", prefix)
}

func decodeBase64(enc *base64.Encoding, s string) ([]byte, error) {
	return enc.WithPadding(base64.NoPadding).Strict().DecodeString(strings.TrimRight(s, "="))
}

func readFile(dir, name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("file: with no path")
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, filepath.FromSlash(name))
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("file %s is larger than %d bytes", name, maxFileSize)
	}
	return b, nil
}

// Done returns an error naming the first field (in sorted order) that no
// getter read.
func (c *Case) Done() error {
	var unused []string
	for sec, m := range c.sections {
		for f := range m {
			if !c.used[sec+"."+f] {
				unused = append(unused, sec+"."+f)
			}
		}
	}
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	return &FieldError{Field: unused[0], Err: fmt.Errorf("unknown field for kind %q", c.Kind)}
}

// Object makes a nested object field (such as params.policy) readable with
// the same getters: it returns the section name to pass to them
// ("params.policy"), and false when the field is absent.
func (c *Case) Object(section, field string) (string, bool, error) {
	r, ok := c.raw(section, field)
	if !ok {
		return "", false, nil
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(r, &m); err != nil {
		return "", true, c.fail(section, field, "must be a JSON object")
	}
	name := section + "." + field
	c.sections[name] = m
	return name, true, nil
}
