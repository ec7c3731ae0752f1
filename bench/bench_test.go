package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/verify"
)

func TestCryptoAndPipeline(t *testing.T) {
	for _, alg := range []CryptoAlg{CryptoP256, CryptoEd25519} {
		r, err := Crypto(alg, 50*time.Millisecond)
		if err != nil || r.Ops == 0 || r.CPU <= 0 || r.PerCPUSecond() <= 0 {
			t.Errorf("Crypto(%s): %+v %v", alg, r, err)
		}
	}
	if _, err := Crypto("rsa", time.Millisecond); err == nil {
		t.Error("Crypto of an unknown algorithm")
	}
	p := verify.New(verify.Options{})
	defer p.Close()
	for _, alg := range []string{"ecdsa-p256", "ecdsa-p256-raw", "ed25519"} {
		w, err := NewWorkload(alg, 4, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Bodies) != 3 || w.ItemCount != 4 {
			t.Fatalf("workload %s: %d bodies", alg, len(w.Bodies))
		}
		r, err := Pipeline(p, w, 4, 50*time.Millisecond)
		if err != nil || r.Ops == 0 || r.Ops%4 != 0 {
			t.Errorf("Pipeline(%s): %+v %v", alg, r, err)
		}
	}
	if _, err := NewWorkload("rsa", 1, 1, 1); err == nil {
		t.Error("workload of an unknown algorithm")
	}
}

// TestBar runs the whole bar briefly against keybind serve as a child
// process: every figure must come out (whether the bar is met is for the
// full-length run of keybind bench to say).
func TestBar(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs keybind serve")
	}
	bin := filepath.Join(t.TempDir(), "keybind")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/keybind").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress strings.Builder
	rep, err := Bar(context.Background(), BarConfig{Binary: bin, Rounds: 1, Duration: 300 * time.Millisecond, CryptoDuration: 100 * time.Millisecond, Connections: 4, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if rep.P256Ceiling <= 0 || rep.Ed25519Ceiling <= 0 || len(rep.Figures) != 3 || rep.PeakRPS <= 0 || rep.Load70.Requests == 0 {
		t.Errorf("incomplete report: %+v", rep)
	}
	for _, f := range rep.Figures {
		if f.ItemsPerCPUSecond <= 0 || f.Ratio <= 0 || f.RequestsPerSecond <= 0 || f.P99 <= 0 {
			t.Errorf("figure %+v", f)
		}
	}
	t.Logf("%s", progress.String())
}
