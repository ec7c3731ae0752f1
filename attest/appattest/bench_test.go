package appattest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"

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
	b.Run("x509.Verify-chain-only", func(b *testing.B) {
		roots := x509.NewCertPool()
		roots.AddCert(f.ca.Root)
		b.ReportAllocs()
		for b.Loop() {
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
