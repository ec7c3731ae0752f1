package webauthn_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

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
			Time      time.Time         `json:"time"`
			Challenge string            `json:"challenge"`
			Origin    string            `json:"origin"`
			RPID      string            `json:"rp_id"`
			Roots     []string          `json:"roots"`
			Policy    map[string]string `json:"policy"`
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
		opts.Policy.AllowSoftwareKeys = params.Policy["min_security_level"] == "software"
		for _, r := range params.Roots {
			c, err := x509.ParseCertificate(pemBlock(b, decode(r)))
			if err != nil {
				b.Fatal(err)
			}
			opts.TPMRoots = append(opts.TPMRoots, c)
		}
		return object, clientData, opts
	}
	b.Fatalf("no vector %s", id)
	return
}

// BenchmarkVerify measures the verification of one registration of each
// format, with one Verifier kept across calls as a server keeps it (its
// certificate cache warm), and with a Verifier per call (nocache).
func BenchmarkVerify(b *testing.B) {
	for _, c := range []struct {
		name, id string
		cache    bool
	}{
		{"tpm-es256", "webauthn/tpm/accept/es256", true},
		{"tpm-es256-nocache", "webauthn/tpm/accept/es256", false},
		{"tpm-rs256", "webauthn/tpm/accept/rs256", true},
		{"none", "webauthn/none/accept/software-allowed", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			object, clientData, opts := benchCase(b, c.id)
			verify := webauthn.Verify
			if c.cache {
				verify = webauthn.NewVerifier().Verify
			}
			if _, err := verify(object, clientData, &opts); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := verify(object, clientData, &opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func pemBlock(b *testing.B, data []byte) []byte {
	blk, _ := pem.Decode(data)
	if blk == nil {
		b.Fatal("not PEM")
	}
	return blk.Bytes
}
