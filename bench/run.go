package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/verify"
)

// The modes of a run.
const (
	ModeCrypto   = "crypto"
	ModePipeline = "pipeline"
	ModeHTTP     = "http"
	ModeAttest   = "attest"
	ModeBar      = "bar"
)

// Modes are every mode, in the order a run measures them.
var Modes = []string{ModeCrypto, ModePipeline, ModeHTTP, ModeAttest, ModeBar}

// Config configures a run of `keybind bench`.
type Config struct {
	// Modes to run; empty means all of them.
	Modes []string
	// Duration of each measurement (default 2s) and the warm-up before it
	// (default 500ms).
	Duration, Warmup time.Duration
	// Binary is the keybind executable run as the server of the http mode
	// (without Server) and of the bar.
	Binary string
	// Server is the base URL of a running server for the http mode (empty:
	// a server is started); Key an API key of it (verify, auth_server or
	// admin role) for the verify requests, and, with Tenant, an admin key
	// of that tenant for sign-ins and enrollments.
	Server, Key, Tenant string
	// Connections of the http mode (default 64), Rate its fixed rate in
	// operations per second (0: closed loop), Mix its operations (default
	// verify=90,signin=5,enroll=5; verify alone against a given server
	// without Tenant).
	Connections int
	Rate        float64
	Mix         []MixEntry
	// Algorithm (ecdsa-p256, ecdsa-p256-raw, ed25519) and items per
	// request of the verify operations of the http mode (default
	// ecdsa-p256, 1).
	Algorithm string
	Items     int
	// Formats of the attest mode (default AttestFormats).
	Formats []string
	// Rounds of the bar (default 5).
	Rounds int
	// Split places the server (and the in-process measurements) and the
	// load generator on disjoint CPUs; zero: SplitCPUs(0).
	Split CPUSplit
	// Progress reports the run as it goes (nil: silently).
	Progress *Progress
}

// Run measures the modes of cfg and returns the report. The crypto
// ceilings are measured in every run, first, on the server's CPUs: every
// ratio of the report is taken against them.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Modes) == 0 {
		cfg.Modes = Modes
	}
	for _, m := range cfg.Modes {
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("bench: unknown mode %q (%s)", m, strings.Join(Modes, ", "))
		}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 500 * time.Millisecond
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 64
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = "ecdsa-p256"
	}
	if cfg.Items <= 0 {
		cfg.Items = 1
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = AttestFormats
	}
	if len(cfg.Split.Server) == 0 {
		cfg.Split = SplitCPUs(0)
	}
	rep := &Report{Started: time.Now(), Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(),
		CPUModel: cpuModel(), CPUs: runtime.NumCPU(), Split: cfg.Split}}
	p := cfg.Progress
	has := func(m string) bool { return slices.Contains(cfg.Modes, m) }

	// The ceilings, on one of the server's CPUs.
	for _, c := range []struct {
		alg  CryptoAlg
		name string
	}{{CryptoP256, "P-256 (crypto/ecdsa)"}, {CryptoEd25519, "Ed25519 (crypto/ed25519)"}} {
		check, err := cryptoCheck(c.alg)
		if err != nil {
			return nil, err
		}
		var r Result
		onCPUs(cfg.Split.Server, func() {
			r, err = measure(ctx, measureConfig{Callers: 1, Warmup: cfg.Warmup / 2, Duration: cfg.Duration / 2, Progress: status(p, "crypto: "+c.name, "signatures")},
				func(int, int) error {
					if !check() {
						return fmt.Errorf("bench: %s check failed", c.alg)
					}
					return nil
				})
		})
		if err != nil {
			return nil, err
		}
		r.Mode, r.Name, r.Unit, r.Signatures, r.Ceiling = ModeCrypto, c.name, "signature", r.Ops, string(c.alg)
		rep.Ceilings = append(rep.Ceilings, r)
		p.Logf("crypto: %s: %.0f signatures per CPU-second", c.name, r.PerCPUSecond())
	}
	for i := range rep.Ceilings {
		rep.Ceilings[i].CeilingRate = rep.Ceilings[i].PerCPUSecond()
	}
	if has(ModePipeline) {
		if err := runPipeline(ctx, cfg, rep); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	if has(ModeHTTP) {
		if err := runHTTP(ctx, cfg, rep); err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	if has(ModeAttest) {
		if err := runAttest(ctx, cfg, rep); err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
	}
	if has(ModeBar) {
		bar, err := Bar(ctx, BarConfig{Binary: cfg.Binary, Rounds: cfg.Rounds, Duration: cfg.Duration, Warmup: cfg.Warmup,
			Connections: cfg.Connections, Split: cfg.Split, Progress: p})
		if err != nil {
			return nil, fmt.Errorf("bar: %w", err)
		}
		rep.Bar = bar
	}
	p.Done()
	return rep, nil
}

// status returns a progress function showing a measurement's rate.
func status(p *Progress, what, unit string) func(int64, time.Duration) {
	if p == nil {
		return nil
	}
	return func(n int64, d time.Duration) {
		p.Status("%s: %s, %d %s, %.0f/s", what, d.Round(100*time.Millisecond), n, unit, per(float64(n), d))
	}
}

// ceilingOf returns the name of the ceiling an algorithm's signatures are
// compared with.
func ceilingOf(alg string) CryptoAlg {
	if alg == "ed25519" {
		return CryptoEd25519
	}
	return CryptoP256
}

// runPipeline measures the verification pipeline in this process, on the
// server's CPUs, with as many workers as the server has.
func runPipeline(ctx context.Context, cfg Config, rep *Report) error {
	defer pinSelf(cfg.Split.Server)()
	p := verify.New(verify.Options{Workers: len(cfg.Split.Server)})
	defer p.Close()
	for _, wl := range []struct {
		alg   string
		items int
	}{{"ecdsa-p256", 1}, {"ecdsa-p256", 16}, {"ed25519", 16}} {
		w, err := NewWorkload(wl.alg, wl.items, 64, 256)
		if err != nil {
			return err
		}
		reqs, err := w.Items()
		if err != nil {
			return err
		}
		callers := 4 * len(cfg.Split.Server)
		results := make([][]verify.Result, callers)
		for i := range results {
			results[i] = make([]verify.Result, wl.items)
		}
		name := fmt.Sprintf("%s ×%d", wl.alg, wl.items)
		r, err := measure(ctx, measureConfig{Callers: callers, Warmup: cfg.Warmup, Duration: cfg.Duration, Progress: status(cfg.Progress, "pipeline: "+name, "requests")},
			func(c, i int) error {
				res := results[c]
				if err := p.Verify(reqs[(c+i*callers)%len(reqs)], res); err != nil {
					return err
				}
				for _, v := range res {
					if !v.Valid() {
						return fmt.Errorf("bench: item refused: %s", v.Code)
					}
				}
				return nil
			})
		if err != nil {
			return err
		}
		r.Mode, r.Name, r.Unit, r.Signatures = ModePipeline, name, "request", r.Ops*int64(wl.items)
		r.Ceiling = string(ceilingOf(wl.alg))
		r.CeilingRate = rep.ceilingRate(ceilingName(r.Ceiling))
		rep.Results = append(rep.Results, r)
		cfg.Progress.Logf("pipeline: %s: %.0f signatures per CPU-second, ratio %.3f", name, float64(r.Signatures)/r.CPU.Seconds(), r.Ratio())
	}
	return nil
}

// ceilingName maps a ceiling to the name of its result.
func ceilingName(alg string) string {
	if alg == string(CryptoEd25519) {
		return "Ed25519 (crypto/ed25519)"
	}
	return "P-256 (crypto/ecdsa)"
}

// runAttest measures attestation verification in this process, one
// goroutine on the server's CPUs, per format.
func runAttest(ctx context.Context, cfg Config, rep *Report) error {
	for _, f := range cfg.Formats {
		ev, err := newAttestEvidence(f, 8)
		if err != nil {
			return err
		}
		var r Result
		onCPUs(cfg.Split.Server, func() {
			r, err = measure(ctx, measureConfig{Callers: 1, Warmup: cfg.Warmup, Duration: cfg.Duration, Progress: status(cfg.Progress, "attest: "+f, "attestations")},
				func(_, i int) error { return ev.verify(i) })
		})
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		r.Mode, r.Name, r.Unit, r.Ceiling = ModeAttest, f, "attestation", string(CryptoP256)
		r.CeilingRate = rep.ceilingRate(ceilingName(r.Ceiling))
		rep.Results = append(rep.Results, r)
		cfg.Progress.Logf("attest: %s: %.0f attestations per CPU-second (%.1f P-256 verifications' worth each)", f, r.PerCPUSecond(), r.CeilingRate/r.PerCPUSecond())
	}
	return nil
}

// runHTTP runs the http mode: a closed-loop (or fixed-rate) load of the
// mix against the given server, or one it starts as a child process.
func runHTTP(ctx context.Context, cfg Config, rep *Report) error {
	mix := cfg.Mix
	if len(mix) == 0 {
		mix = []MixEntry{{MixVerify, 90}, {MixSignIn, 5}, {MixEnroll, 5}}
		if cfg.Server != "" && cfg.Tenant == "" {
			mix = []MixEntry{{MixVerify, 1}}
		}
	}
	needTenant := hasKind(mix, MixSignIn) || hasKind(mix, MixEnroll)
	w, err := NewWorkload(cfg.Algorithm, cfg.Items, 64, 256)
	if err != nil {
		return err
	}
	base := strings.TrimRight(cfg.Server, "/")
	var counters func() (ServerCounters, error)
	var tenant *Tenant
	p := cfg.Progress
	var android *forge.AndroidCA
	if hasKind(mix, MixSignIn) {
		if android, err = forge.NewAndroidCA(forge.AndroidCAOptions{}); err != nil {
			return err
		}
	}
	if base == "" {
		// A server of our own, with an operator key and the development
		// root of the phones' attestations.
		dir, err := os.MkdirTemp("", "keybind-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		op, vk := NewKey(), NewKey()
		args := []string{"--operator-key", op, "--rate-limit", "0", "--phone-rate-limit", "0", "--key", "bench:verify:" + vk}
		if android != nil {
			root := filepath.Join(dir, "android-root.pem")
			if err := os.WriteFile(root, android.RootPEM(), 0o600); err != nil {
				return err
			}
			args = append(args, "--root", "bench-android="+root)
		}
		p.Status("http: starting keybind serve")
		srv, err := StartServer(ctx, ServerOptions{Binary: cfg.Binary, Args: args, CPUs: cfg.Split.Server, Pin: cfg.Split.Pinned})
		if err != nil {
			return err
		}
		defer srv.Stop()
		base, counters = srv.URL, srv.Counters
		if needTenant {
			p.Status("http: setting up a tenant with %d users", cfg.Connections)
			if tenant, err = SetUpTenant(ctx, TenantOptions{BaseURL: base, OperatorKey: op, Users: cfg.Connections, Android: android, AndroidRoot: "bench-android"}); err != nil {
				return err
			}
		} else {
			tenant = &Tenant{BaseURL: base, Key: vk}
		}
	} else {
		counters = MetricsCounters(base)
		if _, err := counters(); err != nil {
			return fmt.Errorf("reading the server's CPU time from its metrics: %w", err)
		}
		switch {
		case needTenant && cfg.Tenant == "":
			return errors.New("sign-ins and enrollments against a running server need --tenant and an admin key of it (--key)")
		case needTenant:
			p.Status("http: setting up %d users in tenant %s", cfg.Connections, cfg.Tenant)
			if tenant, err = SetUpTenantOf(ctx, cfg.Tenant, cfg.Key, TenantOptions{BaseURL: base, Users: cfg.Connections, Android: android, AndroidRoot: "bench-android"}); err != nil {
				return err
			}
		default:
			tenant = &Tenant{BaseURL: base, Key: cfg.Key}
		}
	}
	ops, err := MixOps(mix, tenant, w)
	if err != nil {
		return err
	}
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if cfg.Server == "" {
		defer pinSelf(cfg.Split.Generator)()
	}
	what := "http: " + mixString(mix)
	lr, err := Load(ctx, LoadConfig{Addr: u.Host, TLS: u.Scheme == "https", Ops: ops, Connections: cfg.Connections, Rate: cfg.Rate,
		Warmup: cfg.Warmup, Duration: cfg.Duration, Server: counters, Progress: status(p, what, "operations")})
	if err != nil {
		return err
	}
	total, failed := lr.Total()
	signatures := int64(0)
	for _, o := range lr.Ops {
		signatures += o.Signatures
	}
	mixResult := Result{Mode: ModeHTTP, Name: "mix " + mixString(mix), Unit: "operation", Ops: total, Wall: lr.Wall, CPU: lr.Server.CPU, CPUOf: "server",
		Latency: lr.Latency, Errors: failed, FirstError: lr.FirstError(), Timeline: lr.Timeline, AllocsPerOp: -1}
	if total > 0 && lr.Server.CPU > 0 {
		mixResult.AllocsPerOp = float64(lr.Server.Allocs) / float64(total)
	}
	if len(ops) == 1 && ops[0].Name == MixVerify {
		mixResult.Name = fmt.Sprintf("verify %s ×%d, %d connections", cfg.Algorithm, cfg.Items, cfg.Connections)
		mixResult.Unit, mixResult.Signatures = "request", signatures
		mixResult.Ceiling = string(ceilingOf(cfg.Algorithm))
		mixResult.CeilingRate = rep.ceilingRate(ceilingName(mixResult.Ceiling))
		rep.Results = append(rep.Results, mixResult)
	} else {
		mixResult.Ceiling, mixResult.CeilingRate = string(CryptoP256), rep.ceilingRate(ceilingName(string(CryptoP256)))
		rep.Results = append(rep.Results, mixResult)
		for _, o := range lr.Ops {
			name := o.Name
			if name == MixVerify {
				name = fmt.Sprintf("verify %s ×%d", cfg.Algorithm, cfg.Items)
			}
			rep.Results = append(rep.Results, Result{Mode: ModeHTTP, Name: name + " (in the mix)", Unit: o.Unit, Ops: o.Count, Wall: lr.Wall, CPUOf: "server",
				Latency: o.Latency, Errors: o.Errors, FirstError: o.FirstError, AllocsPerOp: -1})
		}
	}
	p.Logf("http: %s: %.0f operations/s, %.0f per server CPU-second, p99 %s, %d errors", mixResult.Name, mixResult.PerSecond(), mixResult.PerCPUSecond(), dur(lr.Latency.P99), failed)
	return nil
}

func mixString(mix []MixEntry) string {
	var parts []string
	for _, m := range mix {
		parts = append(parts, fmt.Sprintf("%s=%d", m.Kind, m.Weight))
	}
	return strings.Join(parts, ",")
}

// cpuModel returns the CPU's model name (Linux), or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
