package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTPConfig configures a load run against the verify endpoint.
type HTTPConfig struct {
	// URL of the endpoint, such as http://127.0.0.1:8443/v1/verify.
	URL string
	// Key is the API key sent as a bearer token.
	Key string
	// Workload supplies the request bodies, used in turn.
	Workload *Workload
	// Connections is the number of connections, each sending its next
	// request when the previous one is answered (closed loop). Default 16.
	Connections int
	// Rate, when positive, sends that many requests per second in all on
	// a fixed schedule (open loop); latency is then measured from each
	// request's scheduled time, so a stalled server cannot hide its delay.
	Rate float64
	// Warmup runs before the measurement (default 500ms); Duration is the
	// measurement (default 5s).
	Warmup, Duration time.Duration
	// ServerCPU returns the server's CPU time so far (see MetricsCPU).
	// Without it, HTTPResult.ServerCPU is zero.
	ServerCPU func() (time.Duration, error)
	// Procs, when positive, bounds this process's running Go threads
	// (GOMAXPROCS) during the run: a load generator sharing the machine
	// with the server then leaves it the other cores. 0 leaves it alone.
	Procs int
}

// HTTPResult is what a load run measured.
type HTTPResult struct {
	Requests, Items int64
	// Errors counts failed requests (transport errors and non-200
	// answers); FirstError describes the first.
	Errors     int64
	FirstError string
	// Wall is the measured time; ServerCPU the server's CPU time in it.
	Wall, ServerCPU time.Duration
	// Latency percentiles of the measured requests (within 1.6%).
	P50, P90, P99, P999, Max time.Duration
	// LagP99 (fixed rate only) is how late the generator sent its
	// requests at the 99th percentile: latencies count from the scheduled
	// time, so a generator falling behind shows here, not as the server's
	// delay.
	LagP99 time.Duration
}

// RequestsPerSecond returns the answered requests per second of wall time.
func (r HTTPResult) RequestsPerSecond() float64 { return float64(r.Requests) / r.Wall.Seconds() }

// ItemsPerServerCPUSecond returns the verified items per second of the
// server's CPU time.
func (r HTTPResult) ItemsPerServerCPUSecond() float64 {
	if r.ServerCPU <= 0 {
		return 0
	}
	return float64(r.Items) / r.ServerCPU.Seconds()
}

// LoadHTTP runs a load against cfg.URL and reports throughput, the
// server's CPU time and latencies. Every answer must be 200 with every
// item valid; anything else counts as an error.
func LoadHTTP(ctx context.Context, cfg HTTPConfig) (HTTPResult, error) {
	if cfg.Workload == nil || len(cfg.Workload.Bodies) == 0 {
		return HTTPResult{}, errors.New("bench: no workload")
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
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return HTTPResult{}, err
	}
	if cfg.Procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.Procs))
	}
	hc := &fasthttp.HostClient{
		Addr:                          u.Host,
		IsTLS:                         u.Scheme == "https",
		MaxConns:                      cfg.Connections,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
	auth := "Bearer " + cfg.Key
	valid := bytes.Repeat([]byte(`{"valid":true}`), 1)

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		requests  atomic.Int64
		errCount  atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
		mu        sync.Mutex
		lats      latencyHist
		lags      latencyHist
	)
	hists := make([][2]latencyHist, cfg.Connections) // latency, send lag
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Connections) / cfg.Rate)
	}
	start := time.Now()
	for c := range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(cfg.URL)
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.Header.Set("Authorization", auth)
			local, localLags := &hists[c][0], &hists[c][1]
			next := start.Add(interval * time.Duration(c) / time.Duration(cfg.Connections))
			for i := c; !stop.Load() && ctx.Err() == nil; i++ {
				sent := time.Now()
				var lag time.Duration
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					lag = time.Since(next)
					sent = next
					next = next.Add(interval)
				}
				req.SetBodyRaw(cfg.Workload.Bodies[i%len(cfg.Workload.Bodies)])
				err := hc.Do(req, resp)
				lat := time.Since(sent)
				if !measuring.Load() {
					continue
				}
				switch {
				case err != nil:
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case resp.StatusCode() != fasthttp.StatusOK || bytes.Count(resp.Body(), valid) != cfg.Workload.ItemCount:
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d: %.300s", resp.StatusCode(), resp.Body()))
				default:
					requests.Add(1)
					local.add(lat)
					if interval > 0 {
						localLags.add(lag)
					}
				}
			}
			mu.Lock()
			lats.merge(local)
			lags.merge(localLags)
			mu.Unlock()
		}()
	}
	var res HTTPResult
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	ok := sleep(cfg.Warmup)
	var cpu0 time.Duration
	if ok && cfg.ServerCPU != nil {
		if cpu0, err = cfg.ServerCPU(); err != nil {
			stop.Store(true)
			wg.Wait()
			return res, err
		}
	}
	t0 := time.Now()
	measuring.Store(true)
	ok = ok && sleep(cfg.Duration)
	measuring.Store(false)
	res.Wall = time.Since(t0)
	if ok && cfg.ServerCPU != nil {
		cpu1, err := cfg.ServerCPU()
		if err != nil {
			stop.Store(true)
			wg.Wait()
			return res, err
		}
		res.ServerCPU = cpu1 - cpu0
	}
	stop.Store(true)
	wg.Wait()
	hc.CloseIdleConnections()
	if !ok {
		return res, ctx.Err()
	}
	res.Requests = requests.Load()
	res.Items = res.Requests * int64(cfg.Workload.ItemCount)
	res.Errors = errCount.Load()
	if s, _ := firstErr.Load().(string); s != "" {
		res.FirstError = s
	}
	res.P50, res.P90, res.P99, res.P999 = lats.quantile(0.50), lats.quantile(0.90), lats.quantile(0.99), lats.quantile(0.999)
	res.Max = lats.max
	res.LagP99 = lags.quantile(0.99)
	return res, nil
}

// MetricsCPU returns a function reading a keybind server's CPU time from
// its /metrics (process_cpu_seconds_total, which the server takes from
// getrusage). base is the server's URL, such as http://127.0.0.1:8443.
func MetricsCPU(base string) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		status, body, err := fasthttp.GetTimeout(nil, strings.TrimSuffix(base, "/")+"/metrics", 10*time.Second)
		if err != nil {
			return 0, err
		}
		if status != fasthttp.StatusOK {
			return 0, fmt.Errorf("bench: /metrics answered %d", status)
		}
		for line := range bytes.Lines(body) {
			if v, ok := bytes.CutPrefix(line, []byte("process_cpu_seconds_total ")); ok {
				f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
				if err != nil {
					return 0, err
				}
				return time.Duration(f * float64(time.Second)), nil
			}
		}
		return 0, errors.New("bench: no process_cpu_seconds_total in /metrics")
	}
}

// Server is a keybind server run as a child process, so that its CPU time
// is its own.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT).
	URL string
	// CPU reads the server's CPU time (from its metrics).
	CPU func() (time.Duration, error)

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
	// Procs, when positive, is the server's GOMAXPROCS: with a load
	// generator on the same machine, giving each its own share of the
	// cores keeps them from preempting each other, as on separate
	// machines.
	Procs int
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
	if opts.Procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(opts.Procs))
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
		s.CPU = MetricsCPU(s.URL)
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
