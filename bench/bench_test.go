package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
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
	bin := keybindBinary(t)
	var progress strings.Builder
	rep, err := Bar(context.Background(), BarConfig{Binary: bin, Rounds: 1, Duration: 300 * time.Millisecond, CryptoDuration: 100 * time.Millisecond, Warmup: 100 * time.Millisecond, Connections: 4, Progress: NewProgress(&progress, false)})
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

// BenchmarkBar runs one round of the bar per iteration (keybind serve as a
// child process, the endpoint and the crypto ceiling side by side) and
// reports the medians of its ratios: verifications per server CPU-second
// over the ceiling, and the server's p99 at 70% of the peak.
func BenchmarkBar(b *testing.B) {
	bin := keybindBinary(b)
	ratios := map[string][]float64{}
	var p99s []float64
	for b.Loop() {
		rep, err := Bar(context.Background(), BarConfig{Binary: bin, Rounds: 1, Duration: time.Second, CryptoDuration: 300 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range rep.Figures {
			k := fmt.Sprintf("%s-x%d", f.Algorithm, f.Items)
			ratios[k] = append(ratios[k], f.Ratio)
		}
		p99s = append(p99s, float64(rep.Load70.ServerLatency().P99)/1e6)
	}
	for k, v := range ratios {
		b.ReportMetric(median(v), "ratio-"+k)
	}
	b.ReportMetric(median(p99s), "p99-ms-at-70%")
}

func TestRunQueueWait(t *testing.T) {
	w, ok := runQueueWait(os.Getpid())
	if runtime.GOOS == "linux" && (!ok || w < 0) {
		t.Errorf("runQueueWait of this process: %v %v", w, ok)
	}
	if _, ok := runQueueWait(-1); ok {
		t.Error("runQueueWait of no process")
	}
}

// TestSlicedLoad checks the pauses of a sliced load: Between runs before
// each slice and after the last with no operation under way, and the
// slices' operations add up to the load's.
func TestSlicedLoad(t *testing.T) {
	var inflight, worst atomic.Int64
	op := Op{Name: "sleep", Weight: 1, Unit: "op", Signatures: 1, Do: func(ctx context.Context, w *Worker) error {
		inflight.Add(1)
		defer inflight.Add(-1)
		time.Sleep(time.Millisecond)
		return nil
	}}
	betweens := 0
	res, err := Load(context.Background(), LoadConfig{Addr: "127.0.0.1:1", Ops: []Op{op}, Connections: 8,
		Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond, Slices: 4,
		Between: func() error {
			betweens++
			worst.Store(max(worst.Load(), inflight.Load()))
			time.Sleep(10 * time.Millisecond) // a ceiling measurement
			worst.Store(max(worst.Load(), inflight.Load()))
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if betweens != 5 || worst.Load() != 0 {
		t.Errorf("Between ran %d times (want 5), with up to %d operations under way (want 0)", betweens, worst.Load())
	}
	var sum int64
	var wall time.Duration
	for _, s := range res.Slices {
		if s.Ops <= 0 || s.Wall < 50*time.Millisecond {
			t.Errorf("slice %+v", s)
		}
		sum += s.Ops
		wall += s.Wall
	}
	if len(res.Slices) != 4 || sum != res.Ops[0].Count || wall != res.Wall {
		t.Errorf("%d slices of %d operations in %v; the load: %d in %v", len(res.Slices), sum, wall, res.Ops[0].Count, res.Wall)
	}
	if _, err := Load(context.Background(), LoadConfig{Addr: "127.0.0.1:1", Ops: []Op{op}, Rate: 100, Slices: 2}); err == nil {
		t.Error("slices at a fixed rate")
	}
	// A cancelled context ends a paused load too.
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Load(ctx, LoadConfig{Addr: "127.0.0.1:1", Ops: []Op{op}, Connections: 4, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond, Slices: 2,
		Between: func() error { cancel(); return nil }})
	if err == nil {
		t.Error("a cancelled sliced load returned no error")
	}
}

func TestSlicedRatio(t *testing.T) {
	// Slice 1: 100 ops of 2 items in 0.1 s at a ceiling of (1000+3000)/2;
	// slice 2: 300 ops in 0.2 s at (3000+1000)/2: 800 done of 600 expected.
	sl := []Slice{{Ops: 100, Server: ServerCounters{CPU: 100 * time.Millisecond}}, {Ops: 300, Server: ServerCounters{CPU: 200 * time.Millisecond}}}
	if r := slicedRatio(sl, []float64{1000, 3000, 1000}, 2); math.Abs(r-800.0/600) > 1e-9 {
		t.Errorf("ratio %v, want %v", r, 800.0/600)
	}
	if r := slicedRatio(nil, []float64{1000}, 1); r != 0 {
		t.Errorf("no slices: %v", r)
	}
}
