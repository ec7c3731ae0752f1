// Package bench measures keybind's verification speed, as `keybind bench`
// reports it: the crypto ceiling (bare single-signature checks on one
// goroutine, per CPU-second), the verification pipeline in process, a
// keybind server's HTTP API under a closed-loop or fixed-rate load of
// verify requests, sign-ins and enrollments (with the server's own CPU time
// and allocations taken from its metrics, so that a load generator sharing
// the machine does not blur the figures), attestation verification per
// format, and the performance bar of the verify endpoint. The server and
// the load generator run on disjoint CPUs (CPUSplit).
//
// Figures are rates per CPU-second, compared as ratios measured side by
// side in one run. Run measures the modes and returns a Report, written as
// text, JSON (schema keybind-bench/1) or a self-contained HTML page:
//
//	rep, err := bench.Run(ctx, bench.Config{Modes: []string{bench.ModeCrypto, bench.ModeHTTP}, Binary: "keybind"})
//	rep.WriteText(os.Stdout)
//
// The parts serve on their own too:
//
//	srv, err := bench.StartServer(ctx, bench.ServerOptions{Binary: "keybind", Args: []string{"--key", "bench:verify:" + key}})
//	defer srv.Stop()
//	ceiling, _ := bench.Crypto(bench.CryptoP256, time.Second)
//	w, _ := bench.NewWorkload("ecdsa-p256", 16, 64, 256) // 16 items, 64 bodies, 256 keys
//	res, _ := bench.LoadHTTP(ctx, bench.HTTPConfig{URL: srv.URL + "/v1/verify", Key: key,
//		Workload: w, Connections: 32, Duration: 5 * time.Second, Server: srv.Counters})
//	ratio := res.ItemsPerServerCPUSecond() / ceiling.PerCPUSecond()
//
// Bar runs the whole bar of the verify endpoint.
package bench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keybind/keybind/verify"
)

// Rate is a count of operations with the CPU and wall time they took.
type Rate struct {
	Ops  int64
	CPU  time.Duration
	Wall time.Duration
}

// PerCPUSecond returns operations per second of CPU time.
func (r Rate) PerCPUSecond() float64 {
	if r.CPU <= 0 {
		return 0
	}
	return float64(r.Ops) / r.CPU.Seconds()
}

// PerSecond returns operations per second of wall time.
func (r Rate) PerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Wall.Seconds()
}

// ProcessCPU returns the CPU time (user and system) this process has used,
// from getrusage.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CryptoAlg names a bare signature check for Crypto.
type CryptoAlg string

const (
	// CryptoP256 is crypto/ecdsa.VerifyASN1 over the SHA-256 of a short
	// message: the single-signature ceiling of the ECDSA items.
	CryptoP256 CryptoAlg = "p256"
	// CryptoEd25519 is crypto/ed25519.Verify, the standard library's
	// single-signature check.
	CryptoEd25519 CryptoAlg = "ed25519"
)

// cryptoCheck returns a bare single-signature check of alg: a fresh key
// and signature, verified by the standard library on each call.
func cryptoCheck(alg CryptoAlg) (func() bool, error) {
	msg := []byte("approve sign-in 042: keybind benchmark")
	switch alg {
	case CryptoP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		pub := &k.PublicKey
		return func() bool {
			h := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(pub, h[:], sig)
		}, nil
	case CryptoEd25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		sig := ed25519.Sign(priv, msg)
		return func() bool { return ed25519.Verify(pub, msg, sig) }, nil
	}
	return nil, fmt.Errorf("bench: unknown crypto algorithm %q", alg)
}

// Crypto measures alg's single-signature checks on one goroutine for about
// d. CPU is the process's CPU time over the run (so garbage collection and
// the runtime count, as they do for a server); run it while the process is
// otherwise idle.
func Crypto(alg CryptoAlg, d time.Duration) (Rate, error) {
	check, err := cryptoCheck(alg)
	if err != nil {
		return Rate{}, err
	}
	runtime.GC()
	var r Rate
	cpu0, t0 := ProcessCPU(), time.Now()
	for time.Since(t0) < d {
		for range 16 {
			if !check() {
				return Rate{}, fmt.Errorf("bench: %s check failed", alg)
			}
		}
		r.Ops += 16
	}
	r.Wall, r.CPU = time.Since(t0), ProcessCPU()-cpu0
	return r, nil
}

// Pipeline measures the verification pipeline in process: callers
// goroutines each verifying requests of w.Items items, back to back, for
// about d. Ops counts items; CPU is the process's CPU time.
func Pipeline(p *verify.Pipeline, w *Workload, callers int, d time.Duration) (Rate, error) {
	reqs, err := w.Items()
	if err != nil {
		return Rate{}, err
	}
	var ops atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Value
	runtime.GC()
	cpu0, t0 := ProcessCPU(), time.Now()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]verify.Result, w.ItemCount)
			for i := g; !stop.Load(); i++ {
				items := reqs[i%len(reqs)]
				if err := p.Verify(items, res); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				for _, r := range res {
					if !r.Valid() {
						firstErr.CompareAndSwap(nil, fmt.Errorf("bench: item refused: %s", r.Code))
						return
					}
				}
				ops.Add(int64(len(items)))
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	r := Rate{Ops: ops.Load(), Wall: time.Since(t0), CPU: ProcessCPU() - cpu0}
	if err, _ := firstErr.Load().(error); err != nil {
		return r, err
	}
	return r, nil
}
