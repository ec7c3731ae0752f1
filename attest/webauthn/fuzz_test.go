package webauthn_test

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
)

// objectSeeds returns the attestation objects of the committed webauthn
// vectors.
func objectSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	err := filepath.WalkDir(filepath.Join("..", "..", "testvectors", "webauthn"), func(p string, d os.DirEntry, err error) error {
		if err == nil && filepath.Ext(p) == ".cbor" {
			b, err := os.ReadFile(p)
			if err == nil {
				seeds = append(seeds, b)
			}
		}
		return err
	})
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	return seeds
}

// authDataOf returns the authData member of an attestation object, or nil.
func authDataOf(object []byte) []byte {
	var m map[string]cbor.RawMessage
	var ad []byte
	if cbor.Unmarshal(object, &m) != nil || cbor.Unmarshal(m["authData"], &ad) != nil {
		return nil
	}
	return ad
}

func wantCode(t *testing.T, err error) {
	if err != nil && attest.CodeOf(err) == "" {
		t.Fatalf("error without a code: %v", err)
	}
}

// FuzzAuthenticatorData feeds the authenticator data parser.
func FuzzAuthenticatorData(f *testing.F) {
	for _, o := range objectSeeds(f) {
		if ad := authDataOf(o); ad != nil {
			f.Add(ad)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := webauthn.ParseAuthenticatorData(b)
		wantCode(t, err)
		if err != nil {
			return
		}
		if (a.Flags&webauthn.FlagAT != 0) != (a.CredentialKey != nil) {
			t.Fatalf("flags %#x and credential key %v disagree", a.Flags, a.CredentialKey)
		}
		if a.CredentialKey != nil && !bytes.Contains(b, a.RawCredentialKey) {
			t.Fatal("the raw credential key is not part of the data")
		}
		if (a.Flags&webauthn.FlagED != 0) != (a.Extensions != nil) {
			t.Fatalf("flags %#x and extensions %v disagree", a.Flags, a.Extensions)
		}
	})
}

// FuzzCOSEKey feeds the COSE key parser; an accepted key encodes back to a
// key that parses to the same key.
func FuzzCOSEKey(f *testing.F) {
	for _, o := range objectSeeds(f) {
		if a, err := webauthn.ParseAuthenticatorData(authDataOf(o)); err == nil && a.CredentialKey != nil {
			f.Add(a.RawCredentialKey)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := webauthn.ParseCOSEKey(b)
		wantCode(t, err)
		if err != nil {
			return
		}
		if k.Algorithm() == "unknown" {
			t.Fatalf("accepted a key of type %T", k.Key)
		}
		enc, err := forge.COSEKey(k.Key, k.Alg)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := webauthn.ParseCOSEKey(enc)
		if err != nil || k2.Alg != k.Alg {
			t.Fatalf("the key does not parse again: %v", err)
		}
		if e, ok := k.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !e.Equal(k2.Key) {
			t.Fatal("the key parses again to another key")
		}
	})
}

// FuzzClientData feeds the clientDataJSON parser.
func FuzzClientData(f *testing.F) {
	f.Add([]byte(`{"type":"webauthn.create","challenge":"AAAA","origin":"https://a.example","crossOrigin":false}`))
	f.Add([]byte(`{"type":"webauthn.create","challenge":"AAAA","origin":"https://a.example","tokenBinding":{"status":"present"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cd, err := webauthn.ParseClientData(b)
		wantCode(t, err)
		if err == nil && (cd.Type == "" && cd.Origin == "" && len(cd.Challenge) == 0) {
			t.Fatal("accepted client data without its members")
		}
	})
}

// FuzzVerify feeds whole attestation objects to the verifier: nothing made
// for another challenge is accepted.
func FuzzVerify(f *testing.F) {
	for _, o := range objectSeeds(f) {
		f.Add(o)
	}
	cd := []byte(`{"type":"webauthn.create","challenge":"ZnV6eg","origin":"https://login.keybind.test"}`)
	opts := &webauthn.Options{Challenge: []byte("fuzz"), Origins: []string{"https://login.keybind.test"}, RPID: "login.keybind.test"}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := webauthn.Verify(b, cd, opts)
		wantCode(t, err)
		if err == nil && v.Trust != attest.TrustNone {
			t.Fatalf("accepted a registration nothing signed over this client data: %+v", v)
		}
	})
}
