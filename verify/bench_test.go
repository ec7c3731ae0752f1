package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/keybind/keybind/bench/sidebyside"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BenchmarkCrypto is the ceiling: the bare single-signature checks of the
// standard library and curve25519-voi's batch, on one goroutine.
func BenchmarkCrypto(b *testing.B) {
	s := newSigner(b)
	msg := []byte("approve sign-in 42")
	der := s.der(b, msg)
	edSig := ed25519.Sign(s.ed, msg)
	b.Run("p256/stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(s.p256Key.p256, d[:], der) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("ed25519/stdlib", func(b *testing.B) {
		b.ReportAllocs()
		pub := s.edKey.Ed25519()
		for b.Loop() {
			if !ed25519.Verify(pub, msg, edSig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("ed25519/voi-expanded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !voi.VerifyExpanded(s.edKey.ed, msg, edSig) {
				b.Fatal("invalid")
			}
		}
	})
	for _, n := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("ed25519/voi-batch-%d", n), func(b *testing.B) {
			var items []Item
			for i := range n {
				items = append(items, s.item(b, Ed25519, []byte(fmt.Sprint("m", i))))
			}
			bv := voi.NewBatchVerifierWithCapacity(n)
			b.ReportAllocs()
			for b.Loop() {
				bv.Reset()
				for i := range items {
					bv.AddExpanded(items[i].Key.ed, items[i].Message, items[i].Signature)
				}
				if !bv.VerifyBatchOnly(nil) {
					b.Fatal("invalid")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
		})
	}
}

// BenchmarkPipeline drives the pipeline from concurrent callers (4 per
// core) with requests of 1, 16 or 64 items; "queued" sends every request
// through the queue and a worker, "adaptive" is the default (callers verify
// on the spot when a core is free). ns/sig is wall time per signature over
// all cores.
func BenchmarkPipeline(b *testing.B) {
	s := newSigner(b)
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		for _, n := range []int{1, 16, 64} {
			items := make([]Item, n)
			for i := range items {
				items[i] = s.item(b, alg, []byte(fmt.Sprint("sign-in ", i)))
			}
			for _, mode := range []string{"adaptive", "queued"} {
				b.Run(fmt.Sprintf("%v/items=%d/%s", alg, n, mode), func(b *testing.B) {
					p := New(Options{})
					p.queueAlways = mode == "queued"
					defer p.Close()
					b.SetParallelism(4)
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						res := make([]Result, n)
						for pb.Next() {
							if err := p.Verify(items, res); err != nil {
								b.Fatal(err)
							}
							if !res[n-1].Valid() {
								b.Fatal(res[n-1].Code)
							}
						}
					})
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
				})
			}
		}
	}
}

// BenchmarkRatio shows the bar's in-process ratios side by side: in each
// iteration, a request of n items through a pipeline of one worker, and
// the same n signatures checked one by one by the standard library
// (crypto/ecdsa.VerifyASN1 over SHA-256, crypto/ed25519.Verify), in
// alternating order; it reports the median of the per-iteration speed
// ratios (the standard library's time over the pipeline's: above 1 the
// pipeline is faster), so that the machine's load cancels out.
func BenchmarkRatio(b *testing.B) {
	s := newSigner(b)
	for _, c := range []struct {
		alg Algorithm
		n   int
	}{{ECDSAP256, 1}, {ECDSAP256, 16}, {Ed25519, 16}} {
		b.Run(fmt.Sprintf("%v/items=%d", c.alg, c.n), func(b *testing.B) {
			items := make([]Item, c.n)
			for i := range items {
				items[i] = s.item(b, c.alg, []byte(fmt.Sprint("sign-in ", i)))
			}
			pub, edPub := &s.p256.PublicKey, s.ed.Public().(ed25519.PublicKey)
			stdlib := func() {
				for _, it := range items {
					ok := false
					if c.alg == Ed25519 {
						ok = ed25519.Verify(edPub, it.Message, it.Signature)
					} else {
						d := sha256.Sum256(it.Message)
						ok = ecdsa.VerifyASN1(pub, d[:], it.Signature)
					}
					if !ok {
						b.Fatal("invalid")
					}
				}
			}
			p := New(Options{Workers: 1})
			defer p.Close()
			res := make([]Result, c.n)
			pipeline := func() {
				if err := p.Verify(items, res); err != nil || !res[c.n-1].Valid() {
					b.Fatal(err, res[c.n-1].Code)
				}
			}
			var ratios []float64
			for i := 0; b.Loop(); i++ {
				t := sidebyside.Times(i, stdlib, pipeline)
				ratios = append(ratios, float64(t[0])/float64(t[1]))
			}
			b.ReportMetric(sidebyside.Median(ratios), "stdlib/pipeline")
		})
	}
}
