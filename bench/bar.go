package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/keybind/keybind/verify"
)

// The performance bar of the verify endpoint.
const (
	// BarP256One: P-256 verifications per server CPU-second through the
	// endpoint with one-item requests, at least this fraction of the
	// in-process single-signature rate per CPU-second.
	BarP256One = 0.85
	// BarP256Batch: the same with 16-item requests.
	BarP256Batch = 0.95
	// BarEd25519: Ed25519 through the endpoint, at least this multiple of
	// the standard library's in-process single-signature rate.
	BarEd25519 = 2.0
	// BarP99: p99 latency at 70% of peak load, at most this.
	BarP99 = 5 * time.Millisecond
	// BarLoad is the fraction of peak load the latency is measured at.
	BarLoad = 0.7
)

// BarConfig configures a run of the bar.
type BarConfig struct {
	// Binary is the keybind executable to run as the server.
	Binary string
	// ServerArgs are extra arguments of `keybind serve`.
	ServerArgs []string
	// Rounds of measurements; each reports ratios of figures measured
	// back to back, and the report gives the median. Default 5.
	Rounds int
	// Duration of each HTTP measurement (default 2s), of each crypto
	// ceiling measurement (default 250ms), and of the warm-up of each
	// HTTP measurement (default 500ms).
	Duration, CryptoDuration, Warmup time.Duration
	// Slices of each HTTP measurement (default 8): the load pauses before
	// each slice and after the last, and the crypto ceiling is measured
	// on the server's CPUs in every pause, so that each slice's server
	// CPU time is weighed against the ceiling of that moment (on a shared
	// machine the CPU's speed drifts by tens of percent within seconds).
	Slices int
	// Connections of the closed-loop runs with one-item requests (default
	// 64); the runs with 16-item requests use a quarter of them (at least
	// 16), the fixed-rate run twice as many.
	Connections int
	// Split places the server and the load generator on disjoint CPUs;
	// the zero value splits the machine in two (SplitCPUs).
	Split CPUSplit
	// Progress, when set, reports the measurements as they go.
	Progress *Progress
}

// Figure is one workload's result through the endpoint.
type Figure struct {
	Name      string
	Algorithm string // ecdsa-p256 or ed25519
	Items     int    // items per request
	// ItemsPerCPUSecond is signatures verified per second of server CPU
	// time; Ceiling the in-process rate it is compared with; Ratio their
	// quotient (median over the rounds, Rounds each round's) and Want the
	// bar.
	ItemsPerCPUSecond, Ceiling, Ratio, Want float64
	Rounds                                  []float64
	// PipelineRatio is the same workload through the verification
	// pipeline in process (no HTTP), against the same ceiling: what the
	// pipeline alone costs, next to what the endpoint costs.
	PipelineRatio float64
	// RequestsPerSecond and latencies of the closed-loop run of the
	// median round; ServerBusy the server's CPU time over wall time per
	// core given to it (1: every core busy all the time).
	RequestsPerSecond float64
	P50, P99          time.Duration
	ServerBusy        float64
	// ServerWaited is the share of the time the server had work that it
	// spent waiting for a CPU held by other work on the machine (Linux; 0
	// elsewhere): how disturbed that round was.
	ServerWaited float64
}

// Pass reports whether the figure meets its bar.
func (f Figure) Pass() bool { return f.Ratio >= f.Want }

// BarReport is the outcome of a run of the bar.
type BarReport struct {
	// P256Ceiling and Ed25519Ceiling are the in-process single-signature
	// rates per CPU-second (crypto/ecdsa, crypto/ed25519) measured on the
	// server's CPUs, medians.
	P256Ceiling, Ed25519Ceiling float64
	Figures                     []Figure
	// PeakRPS is the highest closed-loop throughput of one-item P-256
	// requests; Load70 a fixed-rate run at 70% of the peak measured just
	// before it (Load70Rate), the round whose p99 is the median of the
	// rounds' (LoadP99s). The bar's latency is the server's: counted from
	// each request's scheduled time, less the load generator's own
	// lateness in sending it (Load70.LagP99 at p99; see LoadResult).
	PeakRPS, Load70Rate float64
	Load70              HTTPResult
	LoadP99s            []time.Duration
	// Rounds and the CPUs of the server and of the load generator.
	Rounds int
	Split  CPUSplit
}

// LatencyPass reports whether the latency at 70% of peak meets the bar.
func (r *BarReport) LatencyPass() bool {
	return r.Load70.Requests > 0 && r.Load70.ServerLatency().P99 <= BarP99 && r.Load70.Errors == 0
}

// Pass reports whether every figure and the latency meet the bar.
func (r *BarReport) Pass() bool {
	for _, f := range r.Figures {
		if !f.Pass() {
			return false
		}
	}
	return r.LatencyPass()
}

// NewKey returns a random API key.
func NewKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Bar runs the performance bar: it starts the server as a child process
// on its share of the CPUs, then measures in rounds, for one-item and
// 16-item P-256 requests and 16-item Ed25519 requests: the endpoint (server
// CPU from its rusage) under a load generator on the other CPUs, in slices,
// with the crypto ceiling measured on the server's CPUs (in this process,
// while the server idles) before each slice and after the last; then the
// same workload through a pipeline in this process on the server's CPUs,
// and the ceiling again. Finally it measures the latency at 70% of the
// one-item P-256 peak.
func Bar(ctx context.Context, cfg BarConfig) (*BarReport, error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Second
	}
	if cfg.CryptoDuration <= 0 {
		cfg.CryptoDuration = 250 * time.Millisecond
	}
	if cfg.Slices <= 0 {
		cfg.Slices = 8
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 500 * time.Millisecond
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 64
	}
	if len(cfg.Split.Server) == 0 {
		cfg.Split = SplitCPUs(0)
	}
	progress := cfg.Progress
	key := NewKey()
	srv, err := StartServer(ctx, ServerOptions{Binary: cfg.Binary, Args: append([]string{"--key", "bench:verify:" + key}, cfg.ServerArgs...),
		CPUs: cfg.Split.Server, Pin: cfg.Split.Pinned})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	defer pinSelf(cfg.Split.Generator)()

	type workload struct {
		name, alg string
		items     int
		w         *Workload
		ceiling   CryptoAlg
		want      float64
		conns     int
	}
	var wls []workload
	for _, spec := range []struct {
		name, alg string
		items     int
		ceiling   CryptoAlg
		want      float64
	}{
		{"P-256, 1 item per request", "ecdsa-p256", 1, CryptoP256, BarP256One},
		{"P-256, 16 items per request", "ecdsa-p256", 16, CryptoP256, BarP256Batch},
		{"Ed25519, 16 items per request", "ed25519", 16, CryptoEd25519, BarEd25519},
	} {
		w, err := NewWorkload(spec.alg, spec.items, 64, 256)
		if err != nil {
			return nil, err
		}
		conns := cfg.Connections
		if spec.items > 1 {
			conns = max(16, cfg.Connections/4)
		}
		wls = append(wls, workload{spec.name, spec.alg, spec.items, w, spec.ceiling, spec.want, conns})
	}

	rep := &BarReport{Rounds: cfg.Rounds, Split: cfg.Split}
	ceilings := map[CryptoAlg][]float64{}
	ratios := make([][]float64, len(wls))
	pipeRatios := make([][]float64, len(wls))
	runs := make([][]HTTPResult, len(wls))
	ceiling := func(alg CryptoAlg) (float64, error) {
		var r Rate
		var err error
		onCPUs(cfg.Split.Server, func() { r, err = Crypto(alg, cfg.CryptoDuration) })
		if err != nil {
			return 0, err
		}
		ceilings[alg] = append(ceilings[alg], r.PerCPUSecond())
		return r.PerCPUSecond(), nil
	}
	load := func(wl workload, conns int, rate float64, slices int, between func() error) (HTTPResult, error) {
		res, err := LoadHTTP(ctx, HTTPConfig{URL: srv.URL + "/v1/verify", Key: key, Workload: wl.w,
			Connections: conns, Rate: rate, Warmup: cfg.Warmup, Duration: cfg.Duration, Server: srv.Counters,
			Slices: slices, Between: between})
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("bench: %s: %d errors, first: %s", wl.name, res.Errors, res.FirstError)
		}
		return res, err
	}
	// The pipeline in process runs on the server's CPUs, with as many
	// workers as the server has.
	pipeline := func(w *Workload) (Rate, error) {
		defer pinSelf(cfg.Split.Server)()
		p := verify.New(verify.Options{Workers: len(cfg.Split.Server)})
		defer p.Close()
		return Pipeline(p, w, 4*len(cfg.Split.Server), cfg.Duration/2)
	}

	// Warm-up: every workload once, unmeasured (key caches, connections,
	// the server's heap).
	progress.Status("warming up")
	for _, wl := range wls {
		if _, err := load(wl, wl.conns, 0, 0, nil); err != nil {
			return nil, err
		}
	}
	// Every endpoint run is sliced, and the ceiling of its algorithm is
	// measured before each slice and after the last: each slice's server
	// CPU time is weighed against the mean of the ceilings on either side
	// of it, a moment apart, and the run's ratio is its verifications over
	// what the ceiling would have done in the same CPU time. The median
	// over the rounds drops the runs a burst of other work disturbed.
	for round := 1; round <= cfg.Rounds; round++ {
		for i, wl := range wls {
			progress.Status("bar: round %d/%d: %s", round, cfg.Rounds, wl.name)
			var cs []float64
			res, err := load(wl, wl.conns, 0, cfg.Slices, func() error {
				c, err := ceiling(wl.ceiling)
				cs = append(cs, c)
				return err
			})
			if err != nil {
				return nil, err
			}
			ratio := slicedRatio(res.Slices, cs, wl.items)
			pr, err := pipeline(wl.w)
			if err != nil {
				return nil, err
			}
			after, err := ceiling(wl.ceiling)
			if err != nil {
				return nil, err
			}
			pc := (cs[len(cs)-1] + after) / 2
			c := mean(cs)
			rate := res.ItemsPerServerCPUSecond()
			ratios[i] = append(ratios[i], ratio)
			pipeRatios[i] = append(pipeRatios[i], pr.PerCPUSecond()/pc)
			runs[i] = append(runs[i], res)
			progress.Logf("round %d: %s: %.0f verifications/server-CPU-s, crypto %.0f/CPU-s (%s, %.0f to %.0f): ratio %.3f (pipeline in process %.3f); %.0f req/s, server busy %.0f%%, waited for a CPU %.0f%%",
				round, wl.name, rate, c, wl.ceiling, slices.Min(cs), slices.Max(cs), ratio, pr.PerCPUSecond()/pc, res.RequestsPerSecond(), 100*busy(res, len(cfg.Split.Server)), 100*waited(res))
		}
	}
	rep.P256Ceiling = median(ceilings[CryptoP256])
	rep.Ed25519Ceiling = median(ceilings[CryptoEd25519])
	for i, wl := range wls {
		m := median(ratios[i])
		// The closed-loop figures of the round whose ratio is the median.
		bestK := 0
		for k, r := range ratios[i] {
			if math.Abs(r-m) < math.Abs(ratios[i][bestK]-m) {
				bestK = k
			}
		}
		best := runs[i][bestK]
		c := median(ceilings[wl.ceiling])
		rep.Figures = append(rep.Figures, Figure{
			Name: wl.name, Algorithm: wl.alg, Items: wl.items,
			ItemsPerCPUSecond: median(rates(runs[i])), Ceiling: c, Ratio: m, Rounds: ratios[i], Want: wl.want,
			PipelineRatio: median(pipeRatios[i]), RequestsPerSecond: best.RequestsPerSecond(), P50: best.P50, P99: best.P99,
			ServerBusy: busy(best, len(cfg.Split.Server)), ServerWaited: waited(best),
		})
	}

	// Latency: the one-item P-256 closed-loop peak, then a fixed rate of
	// 70% of it, right after; in rounds, the median p99 reported (a burst
	// of other work on the machine during one fixed-rate run piles up a
	// queue no server can drain).
	var loads []HTTPResult
	var loadRates []float64
	for round := 1; round <= min(cfg.Rounds, 3); round++ {
		progress.Status("bar: latency round %d/%d: peak", round, min(cfg.Rounds, 3))
		peak, err := load(wls[0], cfg.Connections, 0, 0, nil)
		if err != nil {
			return nil, err
		}
		rate := BarLoad * peak.RequestsPerSecond()
		progress.Status("bar: latency round %d/%d: %.0f req/s", round, min(cfg.Rounds, 3), rate)
		res, err := load(wls[0], 2*cfg.Connections, rate, 0, nil)
		if err != nil {
			return nil, err
		}
		sl := res.ServerLatency()
		progress.Logf("round %d: peak %.0f req/s (P-256, 1 item); at %.0f req/s: %.0f answered/s, p50 %s, p99 %s, p99.9 %s (from the scheduled time: p99 %s; generator's own lateness p99 %s), server waited for a CPU %.0f%%, %d errors",
			round, peak.RequestsPerSecond(), rate, res.RequestsPerSecond(), dur(sl.P50), dur(sl.P99), dur(sl.P999), dur(res.P99), dur(res.LagP99), 100*waited(res), res.Errors)
		rep.LoadP99s = append(rep.LoadP99s, res.ServerLatency().P99)
		loads = append(loads, res)
		loadRates = append(loadRates, rate)
		rep.PeakRPS = max(rep.PeakRPS, peak.RequestsPerSecond())
	}
	order := make([]int, len(loads))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(loads[a].ServerLatency().P99 - loads[b].ServerLatency().P99) })
	mid := order[len(order)/2]
	rep.Load70, rep.Load70Rate = loads[mid], loadRates[mid]
	progress.Done()
	return rep, nil
}

// slicedRatio is a sliced run's verifications over those the crypto
// ceiling would have done in the same server CPU time: slice k's CPU time
// at the mean of ceilings k and k+1 (measured before and after it).
func slicedRatio(sl []Slice, ceilings []float64, items int) float64 {
	var done, expected float64
	for k, s := range sl {
		done += float64(s.Ops * int64(items))
		expected += s.Server.CPU.Seconds() * (ceilings[k] + ceilings[k+1]) / 2
	}
	if expected == 0 {
		return 0
	}
	return done / expected
}

func mean(v []float64) float64 {
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func rates(runs []HTTPResult) []float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, r.ItemsPerServerCPUSecond())
	}
	return v
}

// busy returns the server's CPU time over the wall time of a run, per
// core.
func busy(r HTTPResult, cores int) float64 {
	if r.Wall <= 0 || cores <= 0 {
		return 0
	}
	return r.ServerCPU.Seconds() / r.Wall.Seconds() / float64(cores)
}

// waited returns the share of the time the server had work in a run that
// it spent waiting for a CPU.
func waited(r HTTPResult) float64 {
	if r.ServerWait+r.ServerCPU <= 0 {
		return 0
	}
	return r.ServerWait.Seconds() / (r.ServerWait + r.ServerCPU).Seconds()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
