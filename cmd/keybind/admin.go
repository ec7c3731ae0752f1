package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/store"
)

func runAdmin(e *env, args []string) int {
	return subcommands(e, "admin", `
Administer keybind. tenant, user, group, device, credential, key and audit
call a running server's API (--server and KEYBIND_KEY: a tenant admin's key,
or the operator's). export writes a snapshot of a running server (--server)
or of a data directory no server holds (--data); import loads one into a new
data directory.`, adminCommands(), args)
}

// adminCommands lists the sub-commands of `keybind admin`.
func adminCommands() []*command {
	return []*command{
		{name: "tenant", summary: "create, read and change tenants and their policy", run: runAdminTenant},
		{name: "user", summary: "create, list, read, change and delete users", run: runAdminUser},
		{name: "group", summary: "list groups and their members", run: runAdminGroup},
		{name: "device", summary: "list, disable, enable and delete devices", run: runAdminDevice},
		{name: "credential", summary: "list, disable, enable, re-verify and delete credentials", run: runAdminCredential},
		{name: "key", summary: "create, list and revoke API keys", run: runAdminKey},
		{name: "audit", summary: "query the audit log", run: runAdminAudit},
		{name: "export", summary: "write a consistent snapshot (of a server or a data directory) as a zstd stream", run: runAdminExport},
		{name: "import", summary: "load an export stream into a new, empty data directory", run: runAdminImport},
	}
}

func runAdminExport(e *env, args []string) int {
	fs := newFlags(e, "keybind admin export (--server URL | --data DIR) [--out FILE]", `
Write a consistent snapshot — every tenant, user, device, credential with
its attestation evidence, enrollment, sign-in attempt, session and audit
record — as one zstd-compressed stream, with a record count and a SHA-256
checksum at its end.

With --server (KEYBIND_SERVER) the running server streams a snapshot of
its store; this needs the operator's key (KEYBIND_KEY, or --key). With
--data the directory is read directly: no server may have it open (a
directory is used by one process at a time).

--out - (the default) writes to standard output; a file is written under a
temporary name, synced, then renamed, so that it never exists
half-written.

Exit status: 0 on success, 1 when the snapshot cannot be made or written,
2 for bad arguments.`)
	data := fs.String("data", "", "the data `directory` (no server may hold it)")
	out := fs.String("out", "-", "the `file` to write, or - for standard output")
	server := fs.String("server", "", "the running server's `URL` (KEYBIND_SERVER)")
	key := fs.String("key", "", "the operator's `key` (KEYBIND_KEY)")
	timeout := fs.Duration("timeout", time.Hour, "how long the export may take")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		e.errorf("admin export: unexpected argument %q", fs.Arg(0))
		return 2
	}
	if *data == "" {
		base := firstOf(*server, os.Getenv("KEYBIND_SERVER"))
		if base == "" {
			e.errorf("admin export: give --server URL (a running server) or --data DIR (a directory no server holds)")
			return 2
		}
		c := client.New(base, firstOf(*key, os.Getenv("KEYBIND_KEY")))
		if c.Key == "" {
			e.errorf("admin export: no operator key: set KEYBIND_KEY (or --key)")
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		var n int64
		var err error
		if *out == "-" {
			w := bufio.NewWriter(e.stdout)
			if n, err = c.Export(ctx, w); err == nil {
				err = w.Flush()
			}
		} else {
			n, err = exportWith(*out, func(w io.Writer) (int64, error) { return c.Export(ctx, w) })
		}
		var p *client.Problem
		if errors.As(err, &p) {
			e.errorf("admin export: %d %s: %s", p.Status, p.Code, p.Detail)
			return 1
		} else if err != nil {
			e.errorf("admin export: %v", err)
			return 1
		}
		fmt.Fprintf(e.stderr, "keybind: exported %d bytes from %s\n", n, base)
		return 0
	}
	if *server != "" {
		e.errorf("admin export: give --server or --data, not both")
		return 2
	}
	if !isDataDir(*data) {
		e.errorf("admin export: %s is not a keybind data directory", *data)
		return 1
	}
	s, err := store.Open(*data, store.Options{})
	if err != nil {
		e.errorf("admin export: %v (is a server running on it? then use --server)", err)
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
		_, err = exportWith(*out, func(w io.Writer) (int64, error) {
			c, err := s.Export(w)
			n = c
			return int64(c), err
		})
	}
	if err != nil {
		e.errorf("admin export: %v", err)
		return 1
	}
	fmt.Fprintf(e.stderr, "keybind: exported %d records from %s\n", n, *data)
	return 0
}

// exportWith writes an export next to path with write, syncs it, and
// renames it into place.
func exportWith(path string, write func(w io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	n, err := write(w)
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
