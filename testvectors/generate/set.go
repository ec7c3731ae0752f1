package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keybind/keybind/testvectors"
)

// Set collects the vectors and files of one set before they are written.
type Set struct {
	dir      string
	now      time.Time // when the generator runs; sets pin their own times
	manifest testvectors.Manifest
	files    map[string][]byte
	ids      map[string]bool
}

func newSet(dir string, now time.Time) *Set {
	return &Set{dir: dir, now: now, files: map[string][]byte{}, ids: map[string]bool{},
		manifest: testvectors.Manifest{Version: testvectors.Version}}
}

// Describe sets the manifest's description.
func (s *Set) Describe(d string) { s.manifest.Description = d }

// File adds a file to the set and returns its "file:" value.
func (s *Set) File(name string, data []byte) string {
	if _, dup := s.files[name]; dup {
		panic("generate: file " + name + " written twice")
	}
	s.files[name] = data
	return "file:" + name
}

// PEMFile adds certificates (DER) as one PEM file and returns its "file:"
// value.
func (s *Set) PEMFile(name string, certs ...[]byte) string {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return s.File(name, b)
}

// Add appends a vector. input and params are JSON-encodable maps; expect is
// Accept(facts) or Reject(code).
func (s *Set) Add(id, kind, source string, input, params map[string]any, expect testvectors.Expect) {
	if s.ids[id] {
		panic("generate: vector id " + id + " used twice")
	}
	s.ids[id] = true
	s.manifest.Vectors = append(s.manifest.Vectors, testvectors.Vector{
		ID: id, Kind: kind, Source: source,
		Input: mustJSON(input), Params: mustJSON(params), Expect: expect,
	})
}

// Accept expects the vector to verify, with the given facts (may be nil).
func Accept(facts map[string]any) testvectors.Expect {
	return testvectors.Expect{Verdict: "accept", Facts: facts}
}

// Reject expects a rejection whose code starts with code.
func Reject(code string) testvectors.Expect {
	return testvectors.Expect{Verdict: "reject", Error: code}
}

// Hex, B64 and Text encode byte values in the vector format.
func Hex(b []byte) string  { return "hex:" + hex.EncodeToString(b) }
func B64(b []byte) string  { return "b64:" + base64.StdEncoding.EncodeToString(b) }
func Text(s string) string { return "text:" + s }

// Time formats a validation time.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func mustJSON(v map[string]any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("generate: %v", err))
	}
	return b
}

// write replaces the set's folder with the manifest and its files.
func (s *Set) write() error {
	if len(s.manifest.Vectors) == 0 {
		return fmt.Errorf("no vectors")
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	for name, data := range s.files {
		p := filepath.Join(s.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(s.manifest, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "manifest.json"), append(b, '\n'), 0o644)
}
