package forge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
)

// TestAppAttestVerifies checks that what the forge makes verifies under its
// own root (both environments, with and without the 2026 key usage and the
// iOS 27 extensions), and only under it.
func TestAppAttestVerifies(t *testing.T) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	ca, err := NewAppAttestCA(now)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(ca.RootPEM())
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !root.Equal(ca.Root) {
		t.Fatalf("RootPEM: %v", err)
	}
	v := appattest.NewVerifier()
	const appID = "TEAM123456.com.example.signin"
	cdh := sha256.Sum256([]byte("server challenge"))
	for _, tc := range []struct {
		name string
		opts AppAttestOptions
		env  appattest.Environment
	}{
		{"production", AppAttestOptions{}, appattest.Production},
		{"development", AppAttestOptions{Development: true}, appattest.Development},
		{"key usage", AppAttestOptions{KeyUsage: true}, appattest.Production},
		{"ios27", AppAttestOptions{KeyUsage: true, OSVersion: "27.0", Extensions: &AppAttestExtensions{BundleVersion: "42", ValidationCategory: 4}}, appattest.Production},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tc.opts.AppID, tc.opts.ClientDataHash = appID, cdh[:]
			att, err := ca.Attest(key, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			opts := appattest.AttestationOptions{ClientDataHash: cdh[:], AppIDs: []string{appID}, Environment: tc.env, Time: now, Roots: []*x509.Certificate{ca.Root}}
			res, err := v.VerifyAttestation(att.Object, att.KeyID, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.PublicKey.Equal(&key.PublicKey) || res.Environment != tc.env || res.Verdict.Root != "keybind forge App Attestation Root CA" {
				t.Errorf("result %+v", res)
			}
			if tc.opts.Extensions != nil {
				bv, ok1 := res.Extensions.BundleVersion()
				cat, ok2 := res.Extensions.ValidationCategory()
				if bv != "42" || cat != 4 || !ok1 || !ok2 || res.OSVersion != "27.0" {
					t.Errorf("iOS 27 values %q %d %q", bv, cat, res.OSVersion)
				}
			}
			if !bytes.Equal(att.AppAttestObject.Marshal(), att.Object) {
				t.Error("Marshal of the parts differs from Object")
			}
			// Apple's root does not vouch for the forge.
			opts.Roots = nil
			if _, err := v.VerifyAttestation(att.Object, att.KeyID, opts); attest.CodeOf(err) != appattest.CodeUntrustedRoot {
				t.Errorf("under Apple's root: %v", err)
			}

			for _, high := range []bool{false, true} {
				as, err := AppAssert(key, AppAssertOptions{AppID: appID, ClientData: []byte("sign in 7"), Counter: 7, HighS: high, Extensions: tc.opts.Extensions})
				if err != nil {
					t.Fatal(err)
				}
				var sig struct{ R, S *big.Int }
				if _, err := asn1.Unmarshal(as.Signature, &sig); err != nil {
					t.Fatal(err)
				}
				half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
				if (sig.S.Cmp(half) > 0) != high {
					t.Errorf("HighS %v made s %v", high, sig.S)
				}
				r, err := appattest.VerifyAssertion(as.Marshal(), []byte("sign in 7"), res.PublicKey, appattest.AssertionOptions{AppIDs: []string{appID}, PreviousCounter: 6})
				if err != nil || r.Counter != 7 {
					t.Fatalf("assertion (high S %v): %+v %v", high, r, err)
				}
			}
		})
	}
}

// TestAppAttestShape checks the forge's encoding against the layout of real
// attestations: the object's keys in Apple's order and the COSE key as
// devices write it.
func TestAppAttestShape(t *testing.T) {
	ca, err := NewAppAttestCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	att, err := ca.Attest(key, AppAttestOptions{AppID: "T.a", ClientDataHash: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("\xa3cfmtoapple-appattestgattStmt\xa2cx5c\x82"); !bytes.HasPrefix(att.Object, want) {
		t.Errorf("object starts %q", att.Object[:40])
	}
	cose := att.AuthData[55+32:]
	if want := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}; !bytes.HasPrefix(cose, want) || len(cose) != 77 {
		t.Errorf("COSE key % x", cose)
	}
	as, _ := AppAssert(key, AppAssertOptions{AppID: "T.a", Counter: 1})
	if want := []byte("\xa2isignature"); !bytes.HasPrefix(as.Marshal(), want) || len(as.AuthenticatorData) != 37 {
		t.Errorf("assertion % x", as.Marshal())
	}
}
