package webauthn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/keybind/keybind/bench/sidebyside"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors"
)

// benchCase loads an accepted vector of the committed webauthn set.
func benchCase(b *testing.B, id string) (object, clientData []byte, opts webauthn.Options) {
	b.Helper()
	dir := filepath.Join("..", "..", "testvectors", "webauthn")
	m, err := testvectors.LoadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range m.Vectors {
		if v.ID != id {
			continue
		}
		var in map[string]string
		var params struct {
			Time      time.Time       `json:"time"`
			Challenge string          `json:"challenge"`
			Origin    string          `json:"origin"`
			RPID      string          `json:"rp_id"`
			Roots     []string        `json:"roots"`
			Policy    json.RawMessage `json:"policy"`
		}
		if err := json.Unmarshal(v.Input, &in); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(v.Params, &params); err != nil {
			b.Fatal(err)
		}
		decode := func(s string) []byte {
			d, err := testvectors.DecodeValue(s, dir)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
		object, clientData = decode(in["attestation_object"]), decode(in["client_data_json"])
		opts = webauthn.Options{Challenge: decode(params.Challenge), Origins: []string{params.Origin}, RPID: params.RPID, Time: params.Time}
		if params.Policy != nil {
			if opts.Policy, err = webauthn.ParsePolicy(params.Policy); err != nil {
				b.Fatal(err)
			}
		}
		var roots []*x509.Certificate
		for _, r := range params.Roots {
			blk, _ := pem.Decode(decode(r))
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				b.Fatal(err)
			}
			roots = append(roots, c)
		}
		if roots != nil {
			opts.TPMRoots, opts.AppAttestRoots, opts.AndroidRoots = roots, roots, androidkey.NewRoots(roots...)
		}
		return object, clientData, opts
	}
	b.Fatalf("no vector %s", id)
	return
}

var benchFormats = []struct{ name, id string }{
	{"tpm-es256", "webauthn/tpm/accept/es256"},
	{"tpm-rs256", "webauthn/tpm/accept/rs256"},
	{"android-key", "webauthn/android/accept/tee-ecdsa-p256"},
	{"apple-appattest", "webauthn/appattest/accept/production"},
	{"none", "webauthn/none/accept/software-allowed"},
}

// BenchmarkVerify measures the verification of one registration of each
// format with one Verifier kept across calls, as a server keeps it (its
// certificate caches warm); tpm-es256-cold makes a Verifier per call.
// interleaved runs every format and a bare P-256 ecdsa.VerifyASN1 in turn
// in each iteration (in alternating order), and reports the median of each
// format's per-iteration ratio to the bare signature check, so that the
// load of the shared machine cancels out.
func BenchmarkVerify(b *testing.B) {
	verifier := webauthn.NewVerifier()
	type prepared struct {
		name       string
		object, cd []byte
		opts       webauthn.Options
		verify     func()
	}
	var all []*prepared
	for _, f := range benchFormats {
		p := &prepared{name: f.name}
		p.object, p.cd, p.opts = benchCase(b, f.id)
		p.verify = func() {
			if _, err := verifier.Verify(p.object, p.cd, &p.opts); err != nil {
				b.Fatal(err)
			}
		}
		p.verify()
		all = append(all, p)
	}
	for _, p := range all {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.verify()
			}
		})
	}
	b.Run("tpm-es256-cold", func(b *testing.B) {
		p := all[0]
		b.ReportAllocs()
		for b.Loop() {
			if _, err := webauthn.NewVerifier().Verify(p.object, p.cd, &p.opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		digest := sha256.Sum256([]byte("keybind"))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		bare := func() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("signature")
			}
		}
		fns := []func(){bare}
		for _, p := range all {
			fns = append(fns, p.verify)
		}
		ratios := make([][]float64, len(all))
		for i := 0; b.Loop(); i++ {
			t := sidebyside.Times(i, fns...)
			for j := range all {
				ratios[j] = append(ratios[j], float64(t[j+1])/float64(t[0]))
			}
		}
		for j, p := range all {
			b.ReportMetric(sidebyside.Median(ratios[j]), p.name+"/VerifyASN1")
		}
	})
}
