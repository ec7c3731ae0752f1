package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/keybind/keybind/bench"
)

const benchHelp = `
Measure keybind's verification speed and print a table (or JSON) of every
workload: throughput, latency percentiles, allocations per operation, and
the ratio to the crypto ceiling measured in the same run. Modes (default:
all of them, the bar included):

  crypto    the ceiling: bare single-signature checks of the standard
            library (crypto/ecdsa P-256, crypto/ed25519), one goroutine on
            one core. Measured in every run, first: every ratio is taken
            against it.
  pipeline  the batching verification pipeline (package verify) in this
            process: requests of 1 and 16 P-256 items and 16 Ed25519 items
            from concurrent callers.
  http      a load of a server's HTTP API from a built-in load generator:
            closed loop (--connections workers, each sending its next
            operation when the previous one is answered) or fixed rate
            (--rate). The operations mix (--mix) verify requests (POST
            /v1/verify with --items signatures of --alg), whole phone
            sign-ins (start, the phone's pending list and signed approval,
            the outcome) and enrollment starts. Without --server, keybind
            serve is started on a temporary data directory, and a tenant,
            its users and API keys, and an enrolled phone per user are set
            up through its admin API; with --server URL, --key is an API key
            of it for verify requests, or, with --tenant, an admin key of
            that tenant, in which the users are created (sign-ins then need
            the tenant to trust the bench's development root, which only a
            started server does: use verify and enroll against your own).
            CPU time and allocations are the server's, from its /metrics.
  attest    attestation verification per format (android-key,
            apple-appattest, webauthn-android-key, tpm-certify: a PC's key
            certified by its enrolled attestation key), of evidence made by
            testvectors/forge under development roots (or an attestation
            key) that the verifiers are told to trust, and nothing else;
            one goroutine.
  bar       the performance bar of the verify endpoint: a server started as
            a child process, in rounds: the endpoint with 1 and 16 P-256
            items and 16 Ed25519 items per request (verifications per
            second of the server's CPU time), in 8 slices with the ceiling
            measured before each slice and after the last, each slice
            weighed against the ceilings on either side of it; the same
            through the pipeline in process; then the p99 latency at 70% of
            the one-item peak, at a fixed rate.
            The bar: P-256 ≥ 0.85 (1 item) and ≥ 0.95 (16 items) of the
            ceiling, Ed25519 ≥ 2× crypto/ed25519, p99 ≤ 5ms. Exit status 1
            when it is missed.

The server (and every in-process measurement) and the load generator run
on disjoint CPUs (on Linux, bound with sched_setaffinity; elsewhere only
their GOMAXPROCS differ): --generator-cpus of the lowest CPUs go to the
generator, the rest to the server.

Columns: ops/s is operations per second of wall time; ops/CPU-s per second
of CPU time: of this process (crypto, pipeline, attest), or of the server
(http); ratio is signatures (or, for sign-ins, enrollments and
attestations, operations) per CPU-second over the P-256 ceiling (Ed25519
workloads: over crypto/ed25519); p50…p99.9 are latencies per operation;
allocs/op the heap allocations per operation (the server's, for http).

Output: the table on standard output, or with --json the report as JSON
(schema keybind-bench/1, see the README); --html FILE also writes a
self-contained HTML page with charts. Progress goes to standard error (a
line rewritten in place on a terminal). Exit status: 0; 1 when the bar is
missed, a measurement fails or operations of the http mode failed; 2 on bad
arguments.`

func runBench(e *env, args []string) int {
	fs := newFlags(e, "keybind bench [flags] [crypto|pipeline|http|attest|bar ...]", benchHelp)
	dur := fs.Duration("duration", 2*time.Second, "length of each measurement")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured run before each measurement")
	rounds := fs.Int("rounds", 5, "bar: measurement rounds (the median is reported)")
	conns := fs.Int("connections", 64, "http and bar: connections of the load generator (workers, one operation at a time each)")
	rate := fs.Float64("rate", 0, "http: operations per second on a fixed schedule (0: closed loop)")
	mixFlag := fs.String("mix", "", "http: operations and weights, of verify, signin, enroll (default verify=90,signin=5,enroll=5; verify against --server without --tenant)")
	server := fs.String("server", "", "http: base `URL` of a running keybind server (default: start one)")
	key := fs.String("key", "", "http with --server: API `key` (default $KEYBIND_KEY): verify, auth_server or admin role; with --tenant an admin key of it")
	tenant := fs.String("tenant", "", "http with --server: the tenant of --key, in which sign-in and enrollment users are created")
	alg := fs.String("alg", "ecdsa-p256", "http: algorithm of the verify items: ecdsa-p256, ecdsa-p256-raw or ed25519")
	items := fs.Int("items", 1, "http: signatures per verify request")
	formats := fs.String("formats", strings.Join(bench.AttestFormats, ","), "attest: formats to measure")
	genCPUs := fs.Int("generator-cpus", 0, "CPUs given to the load generator, the lowest ones (0: half); the server gets the rest")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of tables")
	htmlOut := fs.String("html", "", "also write the report as a self-contained HTML `file`")
	quiet := fs.Bool("quiet", false, "no progress on standard error")

	// Modes and flags may come in any order.
	var modes []string
	for {
		if st := parseFlags(e, fs, args); st >= 0 {
			return st
		}
		if fs.NArg() == 0 {
			break
		}
		m := fs.Arg(0)
		if m == "all" {
			m = ""
		} else if !slices.Contains(bench.Modes, m) {
			e.errorf("bench: unknown mode %q (modes: %s)", m, strings.Join(bench.Modes, ", "))
			return 2
		}
		if m != "" && !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
		args = fs.Args()[1:]
	}
	if *key == "" {
		*key = os.Getenv("KEYBIND_KEY")
	}
	cfg := bench.Config{Modes: modes, Duration: *dur, Warmup: *warmup, Rounds: *rounds, Connections: *conns, Rate: *rate,
		Server: *server, Key: *key, Tenant: *tenant, Algorithm: *alg, Items: *items, Split: bench.SplitCPUs(*genCPUs)}
	usage := func(format string, a ...any) int {
		e.errorf("bench: "+format, a...)
		return 2
	}
	if *dur <= 0 || *warmup < 0 || *rounds <= 0 || *conns <= 0 || *rate < 0 || *items <= 0 {
		return usage("--duration, --rounds, --connections and --items must be positive, --warmup and --rate not negative")
	}
	if *mixFlag != "" {
		mix, err := bench.ParseMix(*mixFlag)
		if err != nil {
			return usage("--mix: %v", err)
		}
		cfg.Mix = mix
	}
	for f := range strings.SplitSeq(*formats, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(bench.AttestFormats, f) {
			return usage("--formats: unknown format %q (%s)", f, strings.Join(bench.AttestFormats, ", "))
		}
		cfg.Formats = append(cfg.Formats, f)
	}
	switch *alg {
	case "ecdsa-p256", "ecdsa-p256-raw", "ed25519":
	default:
		return usage("--alg: unknown algorithm %q (ecdsa-p256, ecdsa-p256-raw, ed25519)", *alg)
	}
	if *server != "" {
		if *key == "" {
			return usage("--server needs --key (or $KEYBIND_KEY)")
		}
		if !strings.HasPrefix(*server, "http://") && !strings.HasPrefix(*server, "https://") {
			return usage("--server: want an http:// or https:// URL, got %q", *server)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		e.errorf("bench: %v", err)
		return 1
	}
	cfg.Binary = bin
	if !*quiet {
		cfg.Progress = bench.NewProgress(e.stderr, isTerminal(e.stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		cfg.Progress.Done()
		e.errorf("bench: %v", err)
		return 1
	}
	if *jsonOut {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	if err != nil {
		e.errorf("bench: %v", err)
		return 1
	}
	if *htmlOut != "" {
		if err := writeHTMLReport(rep, *htmlOut); err != nil {
			e.errorf("bench: --html: %v", err)
			return 1
		}
	}
	status := 0
	for _, r := range rep.Results {
		if r.Errors > 0 {
			e.errorf("bench: %s %s: %d operations failed, the first: %s", r.Mode, r.Name, r.Errors, r.FirstError)
			status = 1
		}
	}
	if !rep.Pass() {
		e.errorf("bench: the performance bar is missed")
		status = 1
	}
	return status
}

func writeHTMLReport(rep *bench.Report, name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := rep.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
