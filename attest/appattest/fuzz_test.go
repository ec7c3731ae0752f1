package appattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/testvectors/forge"
)

// fuzzSeeds adds as seeds the files matching pattern in dir of the
// project's generated set, and in the real-world samples when they are at
// hand (read in place).
func fuzzSeeds(f *testing.F, dir, pattern string) {
	for _, d := range []string{
		filepath.Join("..", "..", "testvectors", "appattest", dir),
		filepath.Join("..", "..", "..", "shared", "vectors", "appattest", "*"),
		filepath.Join("..", "..", "..", "shared", "vectors", "appattest", "*", "*"),
	} {
		files, _ := filepath.Glob(filepath.Join(d, pattern))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzParseAttestationObject feeds the attestation object decoder and the
// whole attestation check arbitrary bytes: nothing may panic, every refusal
// carries a code, and a refused input yields no partial result.
func FuzzParseAttestationObject(f *testing.F) {
	fuzzSeeds(f, "attestation", "*.cbor")
	fuzzSeeds(f, "", "attestation*.cbor")
	fx := newFixture(f, forge.AppAttestOptions{KeyUsage: true, OSVersion: "27.0", Extensions: &forge.AppAttestExtensions{BundleVersion: "5", ValidationCategory: 4}})
	f.Add(fx.att.Object)
	v := NewVerifier()
	opts := fx.opts()
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := parseAttestationObject(b)
		if err != nil {
			if obj != nil {
				t.Fatalf("refused (%v) with a partial result", err)
			}
			if attest.CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
		} else if len(obj.receipt) == 0 || len(obj.authData.rpIDHash) != rpIDHashLen || len(obj.coseX) != 32 || len(obj.coseY) != 32 {
			t.Fatalf("accepted an incomplete object: %+v", obj)
		}
		keyID := fx.att.KeyID
		if obj != nil && len(obj.authData.credentialID) == 32 {
			keyID = obj.authData.credentialID
		}
		att, err := v.VerifyAttestation(b, keyID, opts)
		if (att == nil) == (err == nil) {
			t.Fatalf("result %v with error %v", att, err)
		}
		if err != nil && attest.CodeOf(err) == "" {
			t.Fatalf("refusal without a code: %v", err)
		}
	})
}

// FuzzParseAssertion feeds the assertion decoder arbitrary bytes: nothing
// may panic, a refusal yields the zero Assertion and a code, and the
// reflection-free reader agrees with the strict profile of
// attest.UnmarshalCBOR on what is well-formed.
func FuzzParseAssertion(f *testing.F) {
	fuzzSeeds(f, "assertion", "*.cbor")
	fuzzSeeds(f, "", "assertion*.cbor")
	fx := newFixture(f, forge.AppAttestOptions{Extensions: &forge.AppAttestExtensions{BundleVersion: "5", ValidationCategory: 4}})
	f.Add(fx.assertion)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	as, _ := forge.AppAssert(key, forge.AppAssertOptions{AppID: testAppID, Counter: 9})
	f.Add(as.Marshal())
	pub := &fx.key.PublicKey
	opts := AssertionOptions{AppIDs: []string{testAppID}}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAssertion(b)
		if err != nil {
			if !reflect.DeepEqual(a, Assertion{}) {
				t.Fatalf("refused (%v) with a partial result %+v", err, a)
			}
			if attest.CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
		}

		// The strict profile's verdict on the same bytes.
		var m map[string]cbor.RawMessage
		refErr := attest.UnmarshalCBOR("assertion", b, &m)
		var sig, auth []byte
		isBytes := func(raw cbor.RawMessage) bool { return len(raw) > 0 && raw[0]>>5 == majorBytes }
		refOK := refErr == nil && len(m) == 2 &&
			isBytes(m["signature"]) && attest.UnmarshalCBOR("signature", m["signature"], &sig) == nil &&
			isBytes(m["authenticatorData"]) && attest.UnmarshalCBOR("authenticatorData", m["authenticatorData"], &auth) == nil
		switch {
		case err == nil && !refOK:
			t.Fatalf("accepted what the strict profile refuses: %v", refErr)
		case err == nil && (!bytes.Equal(sig, a.Signature) || !bytes.Equal(auth, a.AuthenticatorData)):
			t.Fatalf("values differ from the strict profile's")
		case err != nil && refErr == nil && attest.CodeOf(err).Family() == "cbor" && refOK:
			t.Fatalf("refused as %v what the strict profile accepts", err)
		}
		if err == nil && len(a.AuthenticatorData) > authHeaderLen {
			var ext map[string]cbor.RawMessage
			if e := attest.UnmarshalCBOR("extensions", a.AuthenticatorData[authHeaderLen:], &ext); e != nil {
				t.Fatalf("accepted an extension map the strict profile refuses: %v", e)
			}
		}

		res, verr := VerifyAssertion(b, []byte("client data"), pub, opts)
		if verr != nil && (!reflect.DeepEqual(res, AssertionResult{}) || attest.CodeOf(verr) == "") {
			t.Fatalf("refusal %v with result %+v", verr, res)
		}
		if err == nil {
			_ = a.SignedDigest(b)
		}
	})
}
