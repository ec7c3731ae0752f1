// Command generate makes keybind's own test-vector sets: attestations built
// from test roots (never a vendor's), valid ones and one mutated negative per
// check, written as testvectors/<set>/manifest.json plus the files it names.
//
// Run it from the repository root:
//
//	go run ./testvectors/generate            # every set
//	go run ./testvectors/generate -set android
//
// The generated sets are committed, so CI and users run them without
// regenerating. Keys are fresh on every run, so regenerating changes bytes
// but not verdicts; the package's test regenerates every set into a
// temporary directory and runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// setFunc builds one set into a *Set.
type setFunc func(s *Set) error

// sets lists every set the generator makes, by folder name.
func sets() map[string]setFunc {
	return map[string]setFunc{
		"android":   androidSet,
		"appattest": appAttestSet,
		"tpm":       genTPM,
		"webauthn":  genWebAuthn,
	}
}

func main() {
	out := flag.String("out", "testvectors", "folder to write the sets into (one sub-folder per set)")
	only := flag.String("set", "", "generate only this set")
	flag.Parse()
	if err := generate(*out, *only, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

// generate writes the sets (or only the named one) below out.
func generate(out, only string, now time.Time) error {
	all := sets()
	names := make([]string, 0, len(all))
	for n := range all {
		if only == "" || n == only {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no set named %q", only)
	}
	sort.Strings(names)
	for _, n := range names {
		s := newSet(filepath.Join(out, n), now)
		if err := all[n](s); err != nil {
			return fmt.Errorf("set %s: %w", n, err)
		}
		if err := s.write(); err != nil {
			return fmt.Errorf("set %s: %w", n, err)
		}
		fmt.Printf("%s: %d vectors\n", s.dir, len(s.manifest.Vectors))
	}
	return nil
}
