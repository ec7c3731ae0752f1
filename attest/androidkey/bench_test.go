package androidkey_test

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/keybind/keybind/bench/sidebyside"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors/forge"
)

// benchChain is a chain to measure, with what verifies it.
type benchChain struct {
	name  string
	chain [][]byte
	opts  androidkey.Options
	roots []*x509.Certificate // for crypto/x509's Verify
}

// benchChains returns real device chains from ../shared/vectors when they
// are at hand (a factory-provisioned Pixel 3 and a remotely provisioned
// Pixel 9a ending in the 2025 EC root), else forged chains of both shapes.
func benchChains(b *testing.B) []benchChain {
	google := googleRootCerts(b)
	var out []benchChain
	if dir, ok := sharedDir(); ok {
		vecs := loadShared(b, dir)
		for _, c := range []struct{ name, id string }{
			{"factory-pixel3", "android/blueline-sdk28/TEE_EC_NONE"},
			{"remote-pixel9a", "android/tegu-sdk36/TEE_EC_2026_ROOT"},
		} {
			sv := vecs[c.id]
			out = append(out, benchChain{c.name, sv.chain, androidkey.Options{Challenge: sv.challenge, Time: sv.time, Policy: sv.policy}, google})
		}
		return out
	}
	fx := getFixture(b)
	for _, c := range []struct {
		name string
		ca   *forge.AndroidCA
	}{{"factory-forged", fx.factory}, {"remote-forged", fx.remote}} {
		a := mustAttest(b, c.ca, forge.AndroidKey{})
		out = append(out, benchChain{c.name, a.Chain, androidkey.Options{Challenge: challenge, Time: t0, Roots: c.ca.Roots()}, []*x509.Certificate{c.ca.Root.Cert}})
	}
	return out
}

func sharedDir() (string, bool) {
	dir := os.Getenv("KEYBIND_SHARED_VECTORS")
	if dir == "" {
		dir = "../../../shared/vectors"
	}
	dir += "/android"
	_, err := os.Stat(dir + "/manifest.json")
	return dir, err == nil
}

func googleRootCerts(b *testing.B) []*x509.Certificate {
	data, err := os.ReadFile("google-hardware-attestation-roots.pem")
	if err != nil {
		b.Fatal(err)
	}
	var certs []*x509.Certificate
	for _, der := range pemBlocks(data) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			b.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

// BenchmarkVerify measures, side by side on the same chain: a cold
// verification (a new Verifier, nothing cached), a warm one (the chain's
// upper part seen before: the leaf's parse and one signature check), and
// crypto/x509 parsing the chain and running Verify, which checks every
// signature every time (and is not an attestation check: no extension,
// policy or revocation).
func BenchmarkVerify(b *testing.B) {
	for _, c := range benchChains(b) {
		b.Run(c.name+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := androidkey.NewVerifier().Verify(c.chain, c.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/warm", func(b *testing.B) {
			v := androidkey.NewVerifier()
			if _, err := v.Verify(c.chain, c.opts); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(c.chain, c.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		roots := x509.NewCertPool()
		for _, r := range c.roots {
			roots.AddCert(r)
		}
		x509Verify := func() error {
			certs := make([]*x509.Certificate, len(c.chain))
			for i, der := range c.chain {
				var err error
				if certs[i], err = x509.ParseCertificate(der); err != nil {
					return err
				}
			}
			inter := x509.NewCertPool()
			for _, ci := range certs[1:] {
				inter.AddCert(ci)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.opts.Time, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			return err
		}
		x509Err := x509Verify()
		b.Run(c.name+"/x509", func(b *testing.B) {
			if x509Err != nil {
				b.Skipf("crypto/x509 refuses this chain: %v", x509Err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := x509Verify(); err != nil {
					b.Fatal(err)
				}
			}
		})
		// interleaved runs warm, cold and x509 in turn in every iteration
		// (rotating their order), so that the load of a shared machine
		// slows them alike, and reports the medians of the per-iteration
		// ratios.
		b.Run(c.name+"/interleaved", func(b *testing.B) {
			if x509Err != nil {
				b.Skipf("crypto/x509 refuses this chain: %v", x509Err)
			}
			v := androidkey.NewVerifier()
			run := []func() error{
				func() error { _, err := v.Verify(c.chain, c.opts); return err },
				func() error { _, err := androidkey.NewVerifier().Verify(c.chain, c.opts); return err },
				x509Verify,
			}
			if err := run[0](); err != nil {
				b.Fatal(err)
			}
			var coldWarm, x509Warm []float64
			for i := 0; b.Loop(); i++ {
				var d [3]time.Duration
				for j := range 3 {
					k := (i + j) % 3
					start := time.Now()
					if err := run[k](); err != nil {
						b.Fatal(err)
					}
					d[k] = time.Since(start)
				}
				coldWarm = append(coldWarm, float64(d[1])/float64(d[0]))
				x509Warm = append(x509Warm, float64(d[2])/float64(d[0]))
			}
			b.ReportMetric(sidebyside.Median(coldWarm), "cold/warm")
			b.ReportMetric(sidebyside.Median(x509Warm), "x509/warm")
		})
	}
}
