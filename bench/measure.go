package bench

import (
	"context"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// measureConfig says how measure runs an operation in this process.
type measureConfig struct {
	// Callers goroutines run the operation back to back; with one, it
	// runs on the calling goroutine (which may be locked to a thread bound
	// to some CPUs).
	Callers int
	// Warmup runs unmeasured first; Duration is measured.
	Warmup, Duration time.Duration
	// Tick is the window of the timeline (default 250ms).
	Tick time.Duration
	// Progress is called every Tick with the operations measured so far.
	Progress func(ops int64, elapsed time.Duration)
}

// heapAllocs returns the heap objects this process has allocated so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// measure runs op (given the caller's number and its operation count)
// for cfg.Warmup and then cfg.Duration, and returns the operations done in
// the measurement with this process's CPU time, each operation's latency,
// the heap allocations per operation and the throughput per tick. The
// first error of op stops the run.
func measure(ctx context.Context, cfg measureConfig, op func(caller, i int) error) (Result, error) {
	if cfg.Callers <= 0 {
		cfg.Callers = 1
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	var (
		phase    atomic.Int32 // 0 warm-up, 1 measuring, 2 stop
		ops      atomic.Int64
		firstErr error
		errOnce  sync.Once
		mu       sync.Mutex
		hist     latencyHist
		wg       sync.WaitGroup
	)
	run := func(caller int) {
		var local latencyHist
		last := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			p := phase.Load()
			if p == 2 {
				break
			}
			if err := op(caller, i); err != nil {
				errOnce.Do(func() { firstErr = err })
				phase.Store(2)
				break
			}
			now := time.Now()
			if p == 1 && phase.Load() == 1 {
				local.add(now.Sub(last))
				ops.Add(1)
			}
			last = now
		}
		mu.Lock()
		hist.merge(&local)
		mu.Unlock()
	}
	// The clock: warm-up, then the measurement with the timeline, then
	// stop; on its own goroutine when op runs on the caller's.
	var res Result
	var cpu0 time.Duration
	var allocs0 uint64
	var t0 time.Time
	clock := func() {
		sleep(ctx, cfg.Warmup)
		cpu0, allocs0, t0 = ProcessCPU(), heapAllocs(), time.Now()
		phase.CompareAndSwap(0, 1)
		tl := timeline{t0: t0, last: t0, tick: cfg.Tick, progress: cfg.Progress}
		for end := t0.Add(cfg.Duration); phase.Load() == 1; {
			d := min(cfg.Tick, time.Until(end))
			if d <= 0 || !sleep(ctx, d) {
				break
			}
			tl.sample(ops.Load())
		}
		res.Timeline = tl.points
		phase.Store(2)
		res.Wall, res.CPU = time.Since(t0), ProcessCPU()-cpu0
		allocs := heapAllocs() - allocs0
		res.Ops = ops.Load()
		if res.Ops > 0 {
			res.AllocsPerOp = float64(allocs) / float64(res.Ops)
		}
	}
	done := make(chan struct{})
	go func() { clock(); close(done) }()
	if cfg.Callers == 1 {
		run(0)
	} else {
		for c := range cfg.Callers {
			wg.Add(1)
			go func() { defer wg.Done(); run(c) }()
		}
		wg.Wait()
	}
	<-done
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Latency = hist.summary()
	res.CPUOf = "process"
	return res, nil
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// timeline records the throughput of a run per tick from a counter of
// operations, and reports progress.
type timeline struct {
	t0, last time.Time
	n        int64
	tick     time.Duration
	progress func(ops int64, elapsed time.Duration)
	points   []TimelinePoint
}

// sample records that n operations are done by now.
func (tl *timeline) sample(n int64) {
	now := time.Now()
	if now.Sub(tl.last) >= tl.tick/2 {
		tl.points = append(tl.points, TimelinePoint{At: now.Sub(tl.t0), OpsPerSec: float64(n-tl.n) / now.Sub(tl.last).Seconds()})
		tl.n, tl.last = n, now
	}
	if tl.progress != nil {
		tl.progress(n, now.Sub(tl.t0))
	}
}
