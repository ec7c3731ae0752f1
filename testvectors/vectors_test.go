package testvectors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProjectVectors runs every set the generator committed under
// testvectors/.
func TestProjectVectors(t *testing.T) {
	manifests, _ := filepath.Glob("*/manifest.json")
	for _, m := range manifests {
		t.Run(filepath.Dir(m), func(t *testing.T) { runClean(t, m) })
	}
}

// TestSharedVectors runs every set of real-world samples in
// ../shared/vectors (or $KEYBIND_SHARED_VECTORS). They are not part of the project; when the
// folder is absent the test says so and skips, unless KEYBIND_SHARED_VECTORS
// names it, as CI does, in which case it must be there.
func TestSharedVectors(t *testing.T) {
	dir := os.Getenv("KEYBIND_SHARED_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "vectors")
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no real-world vectors at %s; set KEYBIND_SHARED_VECTORS to run them", dir)
		}
	}
	manifests, err := findManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		rel, _ := filepath.Rel(dir, filepath.Dir(m))
		t.Run(rel, func(t *testing.T) { runClean(t, m) })
	}
}

func runClean(t *testing.T, path string) {
	t.Helper()
	var out bytes.Buffer
	r := Runner{Out: &out}
	sum, err := r.Run(path)
	if err != nil || sum.Failed != 0 || sum.Passed == 0 {
		t.Fatalf("%s: %+v %v\n%s", path, sum, err, out.String())
	}
}
