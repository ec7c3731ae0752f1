package tpm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/keybind/keybind/bench/sidebyside"

	goattest "github.com/google/go-attestation/attest"

	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/testvectors"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

// benchCertification loads an accepted vector of the committed tpm set.
func benchCertification(b *testing.B, id string) (*tpm.AK, tpm.CertificationParameters, []byte) {
	b.Helper()
	dir := filepath.Join("..", "..", "testvectors", "tpm")
	m, err := testvectors.LoadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range m.Vectors {
		if v.ID != id {
			continue
		}
		var in, params map[string]any
		json.Unmarshal(v.Input, &in)
		json.Unmarshal(v.Params, &params)
		decode := func(x any) []byte {
			s, _ := x.(string)
			d, err := testvectors.DecodeValue(s, dir)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
		public, _, err := tpm.ParsePublic2B(decode(in["ak_public"]))
		if err != nil {
			b.Fatal(err)
		}
		ak, err := tpm.TrustedAK(public, "bench")
		if err != nil {
			b.Fatal(err)
		}
		return ak, tpm.CertificationParameters{Public: decode(in["public"]), CreateAttestation: decode(in["create_attestation"]), CreateSignature: decode(in["create_signature"])}, decode(params["challenge"])
	}
	b.Fatalf("no vector %s", id)
	return nil, tpm.CertificationParameters{}, nil
}

// BenchmarkVerifyCertification measures the check of one sign-in key
// certified by an enrolled AK (ECDSA P-256 AK, RSA-2048 AK). interleaved
// runs both and a bare P-256 ecdsa.VerifyASN1 in turn in each iteration (in
// alternating order) and reports the median of their per-iteration ratios
// to the bare signature check, so that the load of the shared machine
// cancels out.
func BenchmarkVerifyCertification(b *testing.B) {
	var fns []func()
	for _, c := range []struct{ name, id string }{
		{"ecdsa-ak", "tpm/accept/go-attestation-ecdsa"},
		{"rsa-ak", "tpm/accept/go-attestation-rsa"},
	} {
		ak, p, challenge := benchCertification(b, c.id)
		verify := func() {
			if _, err := tpm.VerifyCertification(ak, p, challenge); err != nil {
				b.Fatal(err)
			}
		}
		fns = append(fns, verify)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				verify()
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		digest := sha256.Sum256([]byte("keybind"))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		bare := func() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("signature")
			}
		}
		var ecdsaAK, rsaAK []float64
		for i := 0; b.Loop(); i++ {
			t := sidebyside.Times(i, bare, fns[0], fns[1])
			ecdsaAK = append(ecdsaAK, float64(t[1])/float64(t[0]))
			rsaAK = append(rsaAK, float64(t[2])/float64(t[0]))
		}
		b.ReportMetric(sidebyside.Median(ecdsaAK), "ecdsa-ak/VerifyASN1")
		b.ReportMetric(sidebyside.Median(rsaAK), "rsa-ak/VerifyASN1")
	})
}

// BenchmarkEnrollment measures the server's side of an AK enrollment: the
// checks and the activation challenge for an RSA EK (StartEnrollment), and
// the answer (Activate).
func BenchmarkEnrollment(b *testing.B) {
	sim, err := tpmsim.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	ek, err := sim.EK()
	if err != nil {
		b.Fatal(err)
	}
	vendor, err := forge.NewTPMCA("Bench TPM Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		b.Fatal(err)
	}
	ekCert, err := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	if err != nil {
		b.Fatal(err)
	}
	ak, err := sim.TPM.NewAK(&goattest.AKConfig{Algorithm: goattest.ECDSA})
	if err != nil {
		b.Fatal(err)
	}
	defer ak.Close(sim.TPM)
	req := &tpm.EnrollmentRequest{EKChain: [][]byte{ekCert, vendor.Intermediate.Raw}, AK: ak.AttestationParameters()}
	opts := &tpm.Options{Time: t0, EKRoots: []*x509.Certificate{vendor.Root}}
	b.Run("start", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := tpm.StartEnrollment(req, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("activate", func(b *testing.B) {
		ch, pending, err := tpm.StartEnrollment(req, opts)
		if err != nil {
			b.Fatal(err)
		}
		secret, err := ak.ActivateCredential(sim.TPM, *ch)
		if err != nil {
			b.Fatal(err)
		}
		stored, _ := pending.MarshalBinary()
		b.ReportAllocs()
		for b.Loop() {
			a, err := tpm.ParseActivation(stored)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.Activate(secret, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
