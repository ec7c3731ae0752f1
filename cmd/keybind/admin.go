package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/keybind/keybind/store"
)

func runAdmin(e *env, args []string) int {
	return subcommands(e, "admin", `
Administer keybind. export and import work on a data directory directly (the
server must not have it open: a directory is used by one process at a time).`, adminCommands(), args)
}

// adminCommands lists the sub-commands of `keybind admin`.
func adminCommands() []*command {
	return []*command{
		{name: "export", summary: "write a consistent snapshot of a data directory as a zstd stream", run: runAdminExport},
		{name: "import", summary: "load an export stream into a new, empty data directory", run: runAdminImport},
	}
}

func runAdminExport(e *env, args []string) int {
	fs := newFlags(e, "keybind admin export --data DIR [--out FILE]", `
Write a consistent snapshot of the data directory DIR — every tenant, user,
device, credential with its attestation evidence, enrollment, sign-in
attempt, session and audit record — as one zstd-compressed stream, with a
record count and a SHA-256 checksum at its end. --out - (the default) writes
to standard output; a file is written under a temporary name, synced, then
renamed, so that it never exists half-written.

Exit status: 0 on success, 1 when the directory cannot be opened or the
stream cannot be written, 2 for bad arguments.`)
	data := fs.String("data", "", "the data directory (required)")
	out := fs.String("out", "-", "the file to write, or - for standard output")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if *data == "" || fs.NArg() > 0 {
		e.errorf("admin export: give --data DIR (and nothing else)")
		return 2
	}
	if !isDataDir(*data) {
		e.errorf("admin export: %s is not a keybind data directory", *data)
		return 1
	}
	s, err := store.Open(*data, store.Options{})
	if err != nil {
		e.errorf("admin export: %v", err)
		return 1
	}
	defer s.Close()
	var n int
	if *out == "-" {
		w := bufio.NewWriter(e.stdout)
		if n, err = s.Export(w); err == nil {
			err = w.Flush()
		}
	} else {
		n, err = exportToFile(s, *out)
	}
	if err != nil {
		e.errorf("admin export: %v", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "keybind: exported %d records from %s\n", n, *data)
	return 0
}

// exportToFile writes the export next to path, syncs it, and renames it
// into place.
func exportToFile(s *store.Store, path string) (int, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	n, err := s.Export(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), path)
}

func runAdminImport(e *env, args []string) int {
	fs := newFlags(e, "keybind admin import --data DIR [--in FILE]", `
Load an export stream (from keybind admin export) into the data directory
DIR, which must be new or empty. Every key is checked against the schema
and the stream's count and checksum must match; on any failure the
directory is left empty and nothing is imported. --in - (the default) reads
standard input.

Exit status: 0 on success, 1 when the stream is refused or the directory is
not empty, 2 for bad arguments.`)
	data := fs.String("data", "", "the data directory to create (required)")
	in := fs.String("in", "-", "the export file to read, or - for standard input")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if *data == "" || fs.NArg() > 0 {
		e.errorf("admin import: give --data DIR (and nothing else)")
		return 2
	}
	var r io.Reader = strings.NewReader("")
	if *in == "-" {
		if e.stdin != nil {
			r = e.stdin
		}
	} else {
		f, err := os.Open(*in)
		if err != nil {
			e.errorf("admin import: %v", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	if entries, err := os.ReadDir(*data); err == nil && len(entries) > 0 {
		if !isDataDir(*data) {
			e.errorf("admin import: %s is not empty and not a keybind data directory", *data)
			return 1
		}
	}
	s, err := store.Open(*data, store.Options{})
	if err != nil {
		e.errorf("admin import: %v", err)
		return 1
	}
	n, err := s.Import(bufio.NewReader(r))
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		e.errorf("admin import: %v", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "keybind: imported %d records into %s\n", n, *data)
	return 0
}

// isDataDir reports whether dir holds a Pebble database (its manifest).
func isDataDir(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return len(m) > 0
}
