package appattest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/keybind/keybind/bench/sidebyside"

	"github.com/keybind/keybind/testvectors/forge"
)

// BenchmarkVerifyAttestation compares an attestation checked by a Verifier
// that has already seen the intermediate (warm: one credential certificate
// parse and one signature check), by a new Verifier each time (cold: the
// intermediate is parsed and its root link checked too), and the chain
// check alone done with crypto/x509 (parse both certificates, Verify with
// any key usage) as a reference.
func BenchmarkVerifyAttestation(b *testing.B) {
	f := newFixture(b, forge.AppAttestOptions{KeyUsage: true, OSVersion: "27.0", Extensions: &forge.AppAttestExtensions{BundleVersion: "7", ValidationCategory: 4}})
	opts := f.opts()
	b.Run("warm", func(b *testing.B) {
		v := NewVerifier()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyAttestation(f.att.Object, f.att.KeyID, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewVerifier().VerifyAttestation(f.att.Object, f.att.KeyID, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(f.ca.Root)
	x509Chain := func() {
		leaf, err := x509.ParseCertificate(f.att.X5C[0])
		if err != nil {
			b.Fatal(err)
		}
		inter, err := x509.ParseCertificate(f.att.X5C[1])
		if err != nil {
			b.Fatal(err)
		}
		inters := x509.NewCertPool()
		inters.AddCert(inter)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: f.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("x509.Verify-chain-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x509Chain()
		}
	})
	// interleaved runs the three in turn in every iteration (in alternating
	// order), so that a shared, noisy machine slows them alike, and reports
	// the medians of their per-iteration ratios.
	b.Run("interleaved", func(b *testing.B) {
		v := NewVerifier()
		warm := func() {
			if _, err := v.VerifyAttestation(f.att.Object, f.att.KeyID, opts); err != nil {
				b.Fatal(err)
			}
		}
		cold := func() {
			if _, err := NewVerifier().VerifyAttestation(f.att.Object, f.att.KeyID, opts); err != nil {
				b.Fatal(err)
			}
		}
		var warmCold, warmX509 []float64
		var warmSum time.Duration
		for i := 0; b.Loop(); i++ {
			t := sidebyside.Times(i, warm, cold, x509Chain)
			warmSum += t[0]
			warmCold = append(warmCold, float64(t[0])/float64(t[1]))
			warmX509 = append(warmX509, float64(t[0])/float64(t[2]))
		}
		b.ReportMetric(float64(warmSum.Nanoseconds())/float64(len(warmCold)), "warm-ns/op")
		b.ReportMetric(sidebyside.Median(warmCold), "warm/cold")
		b.ReportMetric(sidebyside.Median(warmX509), "warm/x509")
	})
}

// BenchmarkVerifyAssertion puts the sign-in hot path next to the bare
// signature check it contains: ecdsa.VerifyASN1 over a precomputed digest,
// the whole VerifyAssertion, and the checks without the signature
// (ParseAssertion, Check, SignedDigest), which a batched verifier pays per
// assertion besides its share of the batch.
func BenchmarkVerifyAssertion(b *testing.B) {
	f := newFixture(b, forge.AppAttestOptions{Extensions: &forge.AppAttestExtensions{BundleVersion: "7", ValidationCategory: 4}})
	pub := &f.key.PublicKey
	opts := AssertionOptions{AppIDs: []string{testAppID}, Challenge: []byte("c-123")}
	a, err := ParseAssertion(f.assertion)
	if err != nil {
		b.Fatal(err)
	}
	digest := a.SignedDigest(f.clientData)
	b.Run("ecdsa.VerifyASN1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(pub, digest[:], a.Signature) {
				b.Fatal("signature")
			}
		}
	})
	b.Run("VerifyAssertion", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := VerifyAssertion(f.assertion, f.clientData, pub, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	// interleaved runs VerifyAssertion and ecdsa.VerifyASN1 in turn in
	// every iteration (in alternating order) and reports the median of the
	// per-iteration ratios of their times.
	b.Run("interleaved", func(b *testing.B) {
		full := func() {
			if _, err := VerifyAssertion(f.assertion, f.clientData, pub, opts); err != nil {
				b.Fatal(err)
			}
		}
		plain := func() {
			if !ecdsa.VerifyASN1(pub, digest[:], a.Signature) {
				b.Fatal("signature")
			}
		}
		var ratios []float64
		var plainSum time.Duration
		for i := 0; b.Loop(); i++ {
			t := sidebyside.Times(i, full, plain)
			plainSum += t[1]
			ratios = append(ratios, float64(t[0])/float64(t[1]))
		}
		b.ReportMetric(float64(plainSum.Nanoseconds())/float64(len(ratios)), "VerifyASN1-ns/op")
		b.ReportMetric(sidebyside.Median(ratios), "VerifyAssertion/VerifyASN1")
	})
	b.Run("Parse+Check+SignedDigest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a, err := ParseAssertion(f.assertion)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.Check(f.clientData, opts); err != nil {
				b.Fatal(err)
			}
			_ = a.SignedDigest(f.clientData)
		}
	})
}
