package tpm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
)

// vectorSeeds returns the hex values of the named input fields of the
// committed tpm vectors, as fuzzing seeds.
func vectorSeeds(f *testing.F, fields ...string) [][]byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testvectors", "tpm", "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	var m struct {
		Vectors []struct {
			Input map[string]any `json:"input"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, v := range m.Vectors {
		for _, field := range fields {
			s, _ := v.Input[field].(string)
			if h, ok := strings.CutPrefix(s, "hex:"); ok {
				if d, err := hex.DecodeString(h); err == nil {
					seeds = append(seeds, d)
				}
			}
		}
	}
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	return seeds
}

// wantTPMError checks that a refusal is an *attest.Error with a code.
func wantTPMError(t *testing.T, err error) {
	if err != nil && attest.CodeOf(err) == "" {
		t.Fatalf("error without a code: %v", err)
	}
}

// FuzzPublic feeds TPMT_PUBLIC and TPM2B_PUBLIC parsing, and what is done
// with a parsed key: its Go key, its sign-in and AK checks.
func FuzzPublic(f *testing.F) {
	for _, s := range vectorSeeds(f, "public", "ak_public") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := tpm.ParsePublic(b)
		wantTPMError(t, err)
		if err == nil {
			enc, err := pub.Encode()
			if err != nil || !bytes.Equal(enc, b) {
				t.Fatalf("accepted a TPMT_PUBLIC that does not encode back: %v", err)
			}
			pub.Key()
			wantTPMError(t, tpm.CheckSignInKey(pub))
			tpm.KeyAlgorithm(pub)
			_, err = tpm.TrustedAK(b, "fuzz")
			wantTPMError(t, err)
		}
		_, _, err = tpm.ParsePublic2B(b)
		wantTPMError(t, err)
	})
}

// FuzzAttestation feeds TPMS_ATTEST parsing.
func FuzzAttestation(f *testing.F) {
	for _, s := range vectorSeeds(f, "create_attestation") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		att, err := tpm.ParseAttestation(b)
		wantTPMError(t, err)
		if err == nil {
			if enc, err := att.Encode(); err != nil || !bytes.Equal(enc, b) {
				t.Fatalf("accepted a TPMS_ATTEST that does not encode back: %v", err)
			}
			if att.AttestedCertifyInfo == nil && att.AttestedCreationInfo == nil {
				t.Fatal("accepted an attestation of neither type")
			}
		}
	})
}

// FuzzSignature feeds TPMT_SIGNATURE and TPMS_CREATION_DATA parsing.
func FuzzSignature(f *testing.F) {
	for _, s := range vectorSeeds(f, "create_signature") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := tpm.ParseSignature(b)
		wantTPMError(t, err)
		if err == nil && sig.RSA == nil && sig.ECC == nil {
			t.Fatal("accepted a signature with neither RSA nor ECC part")
		}
		_, err = tpm.ParseCreationData(b)
		wantTPMError(t, err)
	})
}

// FuzzVerifyCertification feeds whole certifications to the verifier with
// the AK of a committed vector: a mutated certification is refused with a
// code, never accepted for another challenge.
func FuzzVerifyCertification(f *testing.F) {
	aks := vectorSeeds(f, "ak_public")
	pubs, atts, sigs := vectorSeeds(f, "public"), vectorSeeds(f, "create_attestation"), vectorSeeds(f, "create_signature")
	for i := range pubs {
		f.Add(pubs[i], atts[i], sigs[i])
	}
	_, akPub, err := tpm.ParsePublic2B(aks[0])
	if err != nil {
		f.Fatal(err)
	}
	enc, _ := akPub.Encode()
	ak, err := tpm.TrustedAK(enc, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, public, attestation, signature []byte) {
		_, err := tpm.VerifyCertification(ak, tpm.CertificationParameters{Public: public, CreateAttestation: attestation, CreateSignature: signature}, []byte("fuzz challenge"))
		if err == nil {
			t.Fatal("accepted a certification for a challenge it cannot carry")
		}
		wantTPMError(t, err)
	})
}
