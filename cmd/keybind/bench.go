package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/keybind/keybind/bench"
)

func runBench(e *env, args []string) int {
	fs := newFlags(e, "keybind bench [flags]", `
Measure the verify endpoint against its performance bar and print the
figures and ratios. It starts this keybind binary as a server (keybind serve
on a free loopback port, as a child process so that the server's CPU time is
its own, read from its getrusage), then in rounds measures side by side:

  - the crypto ceiling: crypto/ecdsa and crypto/ed25519 single-signature
    checks per CPU-second, on one goroutine in this process;
  - the endpoint with one-item and 16-item P-256 requests and 16-item
    Ed25519 requests (closed loop), in verifications per server CPU-second;

and finally the p99 latency at 70% of the one-item P-256 peak (fixed rate).
The load generator runs in this process; it and the server get disjoint
shares of the cores (--generator-procs, --server-procs: half each by
default), so that they do not preempt each other, as on separate machines.

The bar: P-256 one-item ≥ 0.85 and 16-item ≥ 0.95 of the crypto ceiling,
Ed25519 ≥ 2× the standard library, p99 at 70% of peak ≤ 5ms. Exit status 1
when the bar is not met.`)
	rounds := fs.Int("rounds", 5, "measurement rounds (the median is reported)")
	dur := fs.Duration("duration", 2*time.Second, "length of each endpoint measurement")
	conns := fs.Int("connections", 16, "connections of the closed-loop runs")
	quiet := fs.Bool("quiet", false, "print only the summary")
	procs := fs.Int("generator-procs", max(1, runtime.NumCPU()/2), "cores (GOMAXPROCS) of the load generator during the endpoint runs (0: no bound)")
	srvProcs := fs.Int("server-procs", max(1, runtime.NumCPU()-max(1, runtime.NumCPU()/2)), "cores (GOMAXPROCS) of the server (0: all)")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	bin, err := os.Executable()
	if err != nil {
		e.errorf("bench: %v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := bench.BarConfig{Binary: bin, Rounds: *rounds, Duration: *dur, Connections: *conns, GeneratorProcs: *procs, ServerProcs: *srvProcs}
	if !*quiet {
		cfg.Progress = e.stderr
	}
	rep, err := bench.Bar(ctx, cfg)
	if err != nil {
		e.errorf("bench: %v", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "verify endpoint, %d cores (server %d, load generator %d), median of %d rounds\n\n", rep.Cores, rep.ServerProcs, rep.GeneratorProcs, rep.Rounds)
	fmt.Fprintf(e.stdout, "crypto ceiling (one goroutine, per CPU-second): P-256 %.0f, Ed25519 (crypto/ed25519) %.0f\n\n", rep.P256Ceiling, rep.Ed25519Ceiling)
	fmt.Fprintf(e.stdout, "%-30s %18s %7s %6s %-6s %9s %9s %10s\n", "workload", "verif/server-CPU-s", "ratio", "bar", "", "pipeline", "req/s", "p99")
	for _, f := range rep.Figures {
		verdict := "ok"
		if !f.Pass() {
			verdict = "MISSED"
		}
		fmt.Fprintf(e.stdout, "%-30s %18.0f %7.2f %6.2f %-6s %9.2f %9.0f %10v\n", f.Name, f.ItemsPerCPUSecond, f.Ratio, f.Want, verdict, f.PipelineRatio, f.RequestsPerSecond, f.P99.Round(time.Microsecond))
	}
	fmt.Fprintf(e.stdout, "(ratio: through the endpoint, per server CPU-second, over the crypto ceiling; pipeline: the same in process, without HTTP)\n")
	verdict := "ok"
	if rep.Load70.P99 > bench.BarP99 || rep.Load70.Errors > 0 {
		verdict = "MISSED"
	}
	fmt.Fprintf(e.stdout, "\nlatency at 70%% of peak (P-256, 1 item; peak %.0f req/s): p50 %v, p99 %v (median of the rounds; bar %v) %s\n",
		rep.PeakRPS, rep.Load70.P50.Round(time.Microsecond), rep.Load70.P99.Round(time.Microsecond), bench.BarP99, verdict)
	if !rep.Pass() {
		return 1
	}
	return 0
}
