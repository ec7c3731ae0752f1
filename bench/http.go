package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Op is one kind of operation of a load: a verify request, a sign-in, an
// enrollment. A load picks the kinds in proportion to their weights.
type Op struct {
	Name   string
	Weight int
	// Unit names what one operation is (request, sign-in, enrollment).
	Unit string
	// Signatures are the signatures one operation has the server verify
	// (the items of a verify request), counted for ratios.
	Signatures int
	// Do performs one operation on worker w and returns an error when it
	// failed (a transport error, an unexpected status or answer).
	Do func(ctx context.Context, w *Worker) error
}

// Worker is one connection of a load: it performs one operation at a
// time. Its fasthttp request and response are reused from one operation to
// the next.
type Worker struct {
	// ID numbers the workers from 0; Seq counts the operations this
	// worker has started.
	ID, Seq int
	// HTTP is the load's client of the server (one connection per
	// worker); Req and Resp are the worker's own.
	HTTP *fasthttp.HostClient
	Req  *fasthttp.Request
	Resp *fasthttp.Response
}

// LoadConfig configures a load run.
type LoadConfig struct {
	// Addr is the server's host:port; TLS when it speaks HTTPS.
	Addr string
	TLS  bool
	// Ops is the mix of operations.
	Ops []Op
	// Connections is the number of workers, each performing its next
	// operation when the previous one is done (closed loop). Default 16.
	Connections int
	// Rate, when positive, starts that many operations per second in all
	// on a fixed schedule (open loop); latency is then measured from each
	// operation's scheduled time, so a stalled server cannot hide its
	// delay.
	Rate float64
	// Warmup runs before the measurement (default 500ms); Duration is the
	// measurement (default 5s).
	Warmup, Duration time.Duration
	// Server reads the server's counters (see MetricsCounters); without
	// it the result has no server CPU time.
	Server func() (ServerCounters, error)
	// Tick is the window of the throughput timeline (default 250ms).
	Tick time.Duration
	// Progress, when set, is called every Tick with the operations done
	// in the measurement so far.
	Progress func(ops int64, elapsed time.Duration)
	// Slices, above 1 (closed loop only), splits the measurement into
	// that many slices of Duration/Slices. Before each slice and after
	// the last, the workers pause: no operation starts, those under way
	// finish, and Between (when set) runs while the server has no work of
	// this load; the bar measures the crypto ceiling on the server's CPU
	// there, so that every slice sits between two measurements of it
	// taken a moment apart. The operations of a slice are those it
	// started; its server counters run from its start to the start of the
	// next (to the end of the last pause for the last), so that nothing
	// the server does for them, such as a garbage collection finishing
	// while it idles, is left out (LoadResult.Slices).
	Slices  int
	Between func() error
}

// Slice is what a load measured in one slice (LoadConfig.Slices).
type Slice struct {
	// Ops is the operations that succeeded, Wall the slice's time (until
	// its last operation was answered), Server the change of the
	// server's counters from its start to the start of the next slice.
	Ops    int64
	Wall   time.Duration
	Server ServerCounters
}

// ServerCounters are a keybind server's cumulative counters, from its
// /metrics.
type ServerCounters struct {
	// CPU is the process's user and system CPU time (getrusage).
	CPU time.Duration
	// Allocs counts the heap objects it has allocated.
	Allocs uint64
	// Wait is how long its threads have waited, runnable, for a CPU
	// (Linux, a server started by the bench only; 0 otherwise): on a
	// machine busy with other work, what the server lost to it.
	Wait time.Duration
}

// OpResult is what a load measured of one kind of operation.
type OpResult struct {
	Name, Unit string
	// Count is the operations that succeeded in the measurement, Errors
	// those that failed; FirstError describes the first failure.
	Count, Errors int64
	FirstError    string
	Signatures    int64
	// Latency counts from each operation's scheduled start at a fixed
	// rate (so that a stalled server cannot hide its delay), from its
	// start in a closed loop. ServerLatency (fixed rate only) leaves out
	// the load generator's own lateness in sending (see LagP99).
	Latency, ServerLatency Latency
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Ops []OpResult
	// Wall is the measured time; Server the change of the server's
	// counters over it.
	Wall   time.Duration
	Server ServerCounters
	// Timeline is the throughput of all operations per Tick (none with
	// slices).
	Timeline []TimelinePoint
	// Slices are the slices of the measurement (LoadConfig.Slices), in
	// order; Wall and Server are their sums.
	Slices []Slice
	// Latency and ServerLatency of every operation together.
	Latency, ServerLatency Latency
	// LagP99 (fixed rate only) is the load generator's own lateness at the
	// 99th percentile: from when it could start an operation (its
	// scheduled time, or the previous answer on its connection when that
	// came later) to when it did. A machine busy with other work delays
	// the generator as well as the server; the generator's delays are its
	// own.
	LagP99 time.Duration
}

// Total returns the operations done and failed, of every kind.
func (r *LoadResult) Total() (ok, failed int64) {
	for _, o := range r.Ops {
		ok += o.Count
		failed += o.Errors
	}
	return ok, failed
}

// FirstError returns the first failure of any kind ("" when none).
func (r *LoadResult) FirstError() string {
	for _, o := range r.Ops {
		if o.FirstError != "" {
			return o.Name + ": " + o.FirstError
		}
	}
	return ""
}

// opStats are one worker's counts of one kind.
type opStats struct {
	count, errors int64
	firstErr      string
	lat, own      latencyHist
}

// Load runs a mix of operations against a server and reports throughput,
// the server's CPU time and allocations, and latencies.
func Load(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	if len(cfg.Ops) == 0 {
		return nil, errors.New("bench: no operations to load")
	}
	weights := 0
	for _, op := range cfg.Ops {
		if op.Weight <= 0 || op.Weight > MaxWeight || op.Do == nil {
			return nil, fmt.Errorf("bench: operation %q needs a weight (1 to %d) and a function", op.Name, MaxWeight)
		}
		weights += op.Weight
	}
	// pick[i] is the kind of the i-th operation of a cycle: the kinds
	// spread evenly (largest remainder), so that every window of the run
	// has the mix.
	pick := make([]int, 0, weights)
	credit := make([]int, len(cfg.Ops))
	for range weights {
		best := 0
		for k, op := range cfg.Ops {
			credit[k] += op.Weight
			if credit[k] > credit[best] {
				best = k
			}
		}
		credit[best] -= weights
		pick = append(pick, best)
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 16
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 500 * time.Millisecond
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	var g *gate
	if cfg.Slices > 1 {
		if cfg.Rate > 0 {
			return nil, errors.New("bench: slices need a closed loop (no rate)")
		}
		g = newGate()
	}
	hc := &fasthttp.HostClient{
		Addr:                          cfg.Addr,
		IsTLS:                         cfg.TLS,
		MaxConns:                      cfg.Connections,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
	defer hc.CloseIdleConnections()

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		done      atomic.Int64
		wg        sync.WaitGroup
	)
	stats := make([][]opStats, cfg.Connections)
	lags := make([]latencyHist, cfg.Connections)
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Connections) / cfg.Rate)
	}
	start := time.Now()
	for c := range cfg.Connections {
		stats[c] = make([]opStats, len(cfg.Ops))
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &Worker{ID: c, HTTP: hc, Req: fasthttp.AcquireRequest(), Resp: fasthttp.AcquireResponse()}
			defer fasthttp.ReleaseRequest(w.Req)
			defer fasthttp.ReleaseResponse(w.Resp)
			next := start.Add(interval * time.Duration(c) / time.Duration(cfg.Connections))
			prevDone := time.Now()
			// one performs and records an operation; false ends the
			// worker.
			one := func(i int) bool {
				sent := time.Now()
				var lag time.Duration
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					// The generator's own lateness: from when it could
					// send (the scheduled time, or the previous answer
					// when that came later) to when it did.
					ready := next
					if prevDone.After(ready) {
						ready = prevDone
					}
					lag = time.Since(ready)
					sent = next
					next = next.Add(interval)
				}
				k := pick[i%len(pick)]
				err := cfg.Ops[k].Do(ctx, w)
				w.Seq++
				prevDone = time.Now()
				lat := prevDone.Sub(sent)
				if !measuring.Load() {
					return true
				}
				st := &stats[c][k]
				if err != nil {
					if ctx.Err() != nil {
						return false
					}
					st.errors++
					if st.firstErr == "" {
						st.firstErr = err.Error()
					}
					return true
				}
				st.count++
				st.lat.add(lat)
				done.Add(1)
				if interval > 0 {
					lags[c].add(lag)
					st.own.add(max(lat-lag, 0))
				}
				return true
			}
			for i := c * 7919; !stop.Load() && ctx.Err() == nil; i++ {
				if !g.enter(&stop) {
					return
				}
				more := one(i)
				g.leave()
				if !more {
					return
				}
			}
		}()
	}
	res := &LoadResult{}
	finish := func() {
		stop.Store(true)
		if g != nil {
			g.wake()
		}
		wg.Wait()
	}
	if !sleep(ctx, cfg.Warmup) {
		finish()
		return nil, ctx.Err()
	}
	if g != nil {
		err := measureSlices(ctx, cfg, g, &measuring, &done, res)
		finish()
		if err != nil {
			return nil, err
		}
		return summarize(cfg, res, stats, lags), nil
	}
	var srv0 ServerCounters
	if cfg.Server != nil {
		var err error
		if srv0, err = cfg.Server(); err != nil {
			finish()
			return nil, err
		}
	}
	t0 := time.Now()
	measuring.Store(true)
	tl := timeline{t0: t0, last: t0, tick: cfg.Tick, progress: cfg.Progress}
	for end := t0.Add(cfg.Duration); ; {
		d := min(cfg.Tick, time.Until(end))
		if d <= 0 {
			break
		}
		if !sleep(ctx, d) {
			finish()
			return nil, ctx.Err()
		}
		tl.sample(done.Load())
	}
	res.Timeline = tl.points
	measuring.Store(false)
	res.Wall = time.Since(t0)
	if cfg.Server != nil {
		srv1, err := cfg.Server()
		if err != nil {
			finish()
			return nil, err
		}
		res.Server = srv1.sub(srv0)
	}
	finish()
	return summarize(cfg, res, stats, lags), nil
}

// summarize fills in a load's results per kind of operation.
func summarize(cfg LoadConfig, res *LoadResult, stats [][]opStats, lags []latencyHist) *LoadResult {
	var all, allOwn, lag latencyHist
	for k, op := range cfg.Ops {
		var h, own latencyHist
		or := OpResult{Name: op.Name, Unit: op.Unit}
		for c := range stats {
			st := &stats[c][k]
			or.Count += st.count
			or.Errors += st.errors
			if or.FirstError == "" {
				or.FirstError = st.firstErr
			}
			h.merge(&st.lat)
			own.merge(&st.own)
		}
		or.Signatures = or.Count * int64(op.Signatures)
		or.Latency, or.ServerLatency = h.summary(), own.summary()
		all.merge(&h)
		allOwn.merge(&own)
		res.Ops = append(res.Ops, or)
	}
	for c := range lags {
		lag.merge(&lags[c])
	}
	res.Latency, res.ServerLatency = all.summary(), allOwn.summary()
	res.LagP99 = lag.quantile(0.99)
	return res
}

// measureSlices runs the measurement of a sliced load (LoadConfig.Slices):
// the workers run during the slices only, and Between runs before each
// slice and after the last, while they pause.
func measureSlices(ctx context.Context, cfg LoadConfig, g *gate, measuring *atomic.Bool, done *atomic.Int64, res *LoadResult) error {
	between := func() error {
		g.pause()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cfg.Between != nil {
			return cfg.Between()
		}
		return nil
	}
	counters := func() (ServerCounters, error) {
		if cfg.Server == nil {
			return ServerCounters{}, nil
		}
		return cfg.Server()
	}
	d := cfg.Duration / time.Duration(cfg.Slices)
	if err := between(); err != nil {
		return err
	}
	c0, err := counters()
	if err != nil {
		return err
	}
	for range cfg.Slices {
		ops0 := done.Load()
		measuring.Store(true)
		t0 := time.Now()
		g.resume()
		if !sleep(ctx, d) {
			return ctx.Err()
		}
		g.pause()
		wall := time.Since(t0)
		measuring.Store(false)
		// The slice's counters run until the next slice is about to
		// start: what the server does after its last answer (a garbage
		// collection finishing while it idles) counts with it.
		if err := between(); err != nil {
			return err
		}
		c1, err := counters()
		if err != nil {
			return err
		}
		sl := Slice{Ops: done.Load() - ops0, Wall: wall, Server: c1.sub(c0)}
		c0 = c1
		res.Slices = append(res.Slices, sl)
		res.Wall += sl.Wall
		res.Server = res.Server.add(sl.Server)
	}
	return nil
}

// sub returns the change of the counters since c0.
func (c ServerCounters) sub(c0 ServerCounters) ServerCounters {
	return ServerCounters{CPU: c.CPU - c0.CPU, Allocs: c.Allocs - c0.Allocs, Wait: c.Wait - c0.Wait}
}

// add returns the sum of two changes of the counters.
func (c ServerCounters) add(d ServerCounters) ServerCounters {
	return ServerCounters{CPU: c.CPU + d.CPU, Allocs: c.Allocs + d.Allocs, Wait: c.Wait + d.Wait}
}

// gate pauses the workers of a sliced load between its slices.
type gate struct {
	mu       sync.Mutex
	cond     sync.Cond
	paused   bool
	inflight int
}

func newGate() *gate {
	g := &gate{}
	g.cond.L = &g.mu
	return g
}

// enter waits while the gate is paused and then counts an operation under
// way, which the caller ends with leave; false (nothing counted) when the
// load stops. A nil gate (a load without slices) never pauses.
func (g *gate) enter(stop *atomic.Bool) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.paused && !stop.Load() {
		g.cond.Wait()
	}
	if stop.Load() {
		return false
	}
	g.inflight++
	return true
}

func (g *gate) leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.inflight--
	if g.inflight == 0 {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// pause stops new operations and waits until those under way are done.
func (g *gate) pause() {
	g.mu.Lock()
	g.paused = true
	for g.inflight > 0 {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *gate) resume() {
	g.mu.Lock()
	g.paused = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// wake wakes the paused workers (to see that the load stops).
func (g *gate) wake() {
	g.mu.Lock()
	g.cond.Broadcast()
	g.mu.Unlock()
}

// VerifyOp is the operation of POST /v1/verify with the workload's bodies
// in turn, authenticated with key: it fails unless the answer is 200 with
// every item valid.
func VerifyOp(w *Workload, key string) Op {
	auth := "Bearer " + key
	valid := []byte(`{"valid":true}`)
	return Op{
		Name: "verify", Weight: 1, Unit: "request", Signatures: w.ItemCount,
		Do: func(_ context.Context, wk *Worker) error {
			req, resp := wk.Req, wk.Resp
			if len(req.Header.Peek("Authorization")) == 0 {
				req.SetRequestURI("http://" + wk.HTTP.Addr + "/v1/verify")
				if wk.HTTP.IsTLS {
					req.SetRequestURI("https://" + wk.HTTP.Addr + "/v1/verify")
				}
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("Authorization", auth)
			}
			req.SetBodyRaw(w.Bodies[(wk.ID+wk.Seq)%len(w.Bodies)])
			if err := wk.HTTP.Do(req, resp); err != nil {
				return err
			}
			if resp.StatusCode() != fasthttp.StatusOK || bytes.Count(resp.Body(), valid) != w.ItemCount {
				return fmt.Errorf("status %d: %.300s", resp.StatusCode(), resp.Body())
			}
			return nil
		},
	}
}

// HTTPConfig configures a load of the verify endpoint alone (LoadHTTP).
type HTTPConfig struct {
	// URL of the endpoint, such as http://127.0.0.1:8443/v1/verify.
	URL string
	// Key is the API key sent as a bearer token.
	Key string
	// Workload supplies the request bodies, used in turn.
	Workload *Workload
	// Connections, Rate, Warmup and Duration: see LoadConfig.
	Connections      int
	Rate             float64
	Warmup, Duration time.Duration
	// Server reads the server's counters (see MetricsCounters).
	Server func() (ServerCounters, error)
	// Slices and Between: see LoadConfig.
	Slices  int
	Between func() error
}

// HTTPResult is what a load of the verify endpoint measured.
type HTTPResult struct {
	Requests, Items int64
	// Errors counts failed requests (transport errors and non-200
	// answers); FirstError describes the first.
	Errors     int64
	FirstError string
	// Wall is the measured time; ServerCPU the server's CPU time in it,
	// ServerAllocs its heap allocations, ServerWait its wait for a CPU
	// (see ServerCounters).
	Wall, ServerCPU, ServerWait time.Duration
	ServerAllocs                uint64
	// Latency percentiles of the measured requests (within 1.6%).
	P50, P90, P99, P999, Max time.Duration
	// LagP99 (fixed rate only): see LoadResult.
	LagP99 time.Duration
	// Slices of a sliced measurement (HTTPConfig.Slices), in order.
	Slices []Slice

	latency, server Latency
}

// Latency returns the latency summary of the requests.
func (r HTTPResult) Latency() Latency { return r.latency }

// ServerLatency returns (fixed rate only) the latency summary of the
// requests without the generator's own lateness (see OpResult).
func (r HTTPResult) ServerLatency() Latency { return r.server }

// RequestsPerSecond returns the answered requests per second of wall time.
func (r HTTPResult) RequestsPerSecond() float64 { return per(float64(r.Requests), r.Wall) }

// ItemsPerServerCPUSecond returns the verified items per second of the
// server's CPU time.
func (r HTTPResult) ItemsPerServerCPUSecond() float64 { return per(float64(r.Items), r.ServerCPU) }

// LoadHTTP runs a load of the verify endpoint (see Load and VerifyOp).
func LoadHTTP(ctx context.Context, cfg HTTPConfig) (HTTPResult, error) {
	if cfg.Workload == nil || len(cfg.Workload.Bodies) == 0 {
		return HTTPResult{}, errors.New("bench: no workload")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return HTTPResult{}, err
	}
	lr, err := Load(ctx, LoadConfig{Addr: u.Host, TLS: u.Scheme == "https", Ops: []Op{VerifyOp(cfg.Workload, cfg.Key)},
		Connections: cfg.Connections, Rate: cfg.Rate, Warmup: cfg.Warmup, Duration: cfg.Duration, Server: cfg.Server,
		Slices: cfg.Slices, Between: cfg.Between})
	if err != nil {
		return HTTPResult{}, err
	}
	o := lr.Ops[0]
	l := o.Latency
	return HTTPResult{Requests: o.Count, Items: o.Signatures, Errors: o.Errors, FirstError: o.FirstError,
		Wall: lr.Wall, ServerCPU: lr.Server.CPU, ServerAllocs: lr.Server.Allocs, ServerWait: lr.Server.Wait,
		P50: l.P50, P90: l.P90, P99: l.P99, P999: l.P999, Max: l.Max, LagP99: lr.LagP99, Slices: lr.Slices, latency: l, server: o.ServerLatency}, nil
}

// MetricsCounters returns a function reading a keybind server's counters
// from its /metrics: process_cpu_seconds_total (which the server takes from
// getrusage) and go_heap_allocs_objects_total. base is the server's URL,
// such as http://127.0.0.1:8443.
func MetricsCounters(base string) func() (ServerCounters, error) {
	return func() (ServerCounters, error) {
		status, body, err := fasthttp.GetTimeout(nil, strings.TrimSuffix(base, "/")+"/metrics", 10*time.Second)
		if err != nil {
			return ServerCounters{}, err
		}
		if status != fasthttp.StatusOK {
			return ServerCounters{}, fmt.Errorf("bench: /metrics answered %d", status)
		}
		return parseCounters(body)
	}
}

// parseCounters reads process_cpu_seconds_total and
// go_heap_allocs_objects_total from a /metrics body (Prometheus text
// format, samples without labels).
func parseCounters(body []byte) (ServerCounters, error) {
	var c ServerCounters
	var seenCPU, seenAllocs bool
	for line := range bytes.Lines(body) {
		name, value, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok {
			continue
		}
		var dst *bool
		switch string(name) {
		case "process_cpu_seconds_total":
			dst = &seenCPU
		case "go_heap_allocs_objects_total":
			dst = &seenAllocs
		default:
			continue
		}
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(value)), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1<<53 {
			return ServerCounters{}, fmt.Errorf("bench: /metrics: %s: not a count: %q", name, value)
		}
		if dst == &seenCPU {
			c.CPU = time.Duration(f * float64(time.Second))
		} else {
			c.Allocs = uint64(f)
		}
		*dst = true
	}
	if !seenCPU || !seenAllocs {
		return ServerCounters{}, errors.New("bench: /metrics lacks process_cpu_seconds_total or go_heap_allocs_objects_total")
	}
	return c, nil
}

// Server is a keybind server run as a child process, so that its CPU time
// is its own.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT).
	URL string
	// Counters reads the server's counters (from its metrics).
	Counters func() (ServerCounters, error)

	cmd  *exec.Cmd
	done chan error
	logs *tail
	data string
}

// ServerOptions say how to run a keybind server for a benchmark.
type ServerOptions struct {
	// Binary is the keybind executable.
	Binary string
	// Args are extra arguments of `keybind serve`.
	Args []string
	// CPUs, when set, are the CPUs the server runs on: its GOMAXPROCS is
	// their number and, on Linux, every thread of it is bound to them.
	CPUs []int
	// Pin binds the server's threads to CPUs (Linux).
	Pin bool
}

// StartServer runs `keybind serve --addr 127.0.0.1:0 --log-format json
// args…` on a new temporary data directory (removed by Stop) and waits
// until it serves.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	data, err := os.MkdirTemp("", "keybind-bench-data-")
	if err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, opts, data)
	if err != nil {
		os.RemoveAll(data)
	}
	return srv, err
}

func startServer(ctx context.Context, opts ServerOptions, data string) (*Server, error) {
	cmd := exec.Command(opts.Binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info", "--data", data}, opts.Args...)...)
	if len(opts.CPUs) > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(len(opts.CPUs)))
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, done: make(chan error, 1), logs: &tail{}, data: data}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.add(line)
			var rec struct {
				Msg, Addr string
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		s.done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
		metrics, pid := MetricsCounters(s.URL), cmd.Process.Pid
		s.Counters = func() (ServerCounters, error) {
			c, err := metrics()
			c.Wait, _ = runQueueWait(pid)
			return c, err
		}
		if opts.Pin && len(opts.CPUs) > 0 {
			if err := bindProcess(cmd.Process.Pid, opts.CPUs); err != nil {
				s.Stop()
				return nil, fmt.Errorf("bench: binding the server to CPUs %s: %v", cpuList(opts.CPUs), err)
			}
		}
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("bench: keybind serve exited: %v\n%s", err, s.logs)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-s.done
		return nil, fmt.Errorf("bench: keybind serve did not start\n%s", s.logs)
	case <-ctx.Done():
		cmd.Process.Kill()
		<-s.done
		return nil, ctx.Err()
	}
}

// Stop stops the server with SIGTERM (a graceful shutdown), waits for it
// and removes its data directory.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.data)
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("bench: keybind serve did not stop\n%s", s.logs)
	}
}

// Logs returns the server's last log lines.
func (s *Server) Logs() string { return s.logs.String() }

// tail keeps the last lines of a log.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, string(line))
	if len(t.lines) > 50 {
		t.lines = t.lines[len(t.lines)-50:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
