package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/keybind/keybind/testvectors"
)

// TestGeneratedSetsPass regenerates every set into a temporary folder and
// runs it: the generator and the verifiers agree on every verdict.
func TestGeneratedSetsPass(t *testing.T) {
	for name := range sets() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := generate(dir, name, time.Now()); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			r := testvectors.Runner{Out: &out}
			sum, err := r.Run(dir)
			if err != nil || sum.Failed != 0 || sum.Passed == 0 {
				t.Fatalf("%+v %v\n%s", sum, err, out.String())
			}
		})
	}
}
