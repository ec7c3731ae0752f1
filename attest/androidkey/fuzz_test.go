package androidkey_test

import (
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors/forge"
)

// seedDescriptions returns KeyDescriptions to start fuzzing from: forged
// ones of several versions and shapes, and those of the real-world chains
// when they are at hand (read from there, not copied).
func seedDescriptions(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, v := range []int64{1, 3, 100, 400} {
		kd := &androidkey.KeyDescription{
			AttestationVersion: v, AttestationSecurityLevel: androidkey.TrustedEnvironment,
			KeyMintVersion: v, KeyMintSecurityLevel: androidkey.TrustedEnvironment,
			AttestationChallenge: []byte("challenge"), UniqueID: []byte{},
			SoftwareEnforced: androidkey.AuthorizationList{CreationDateTime: i64(1), Unknown: []androidkey.RawTag{{Tag: 3000, Value: []byte{5, 0}}}},
			HardwareEnforced: fullList(),
		}
		b, err := forge.EncodeKeyDescription(kd)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	dir := os.Getenv("KEYBIND_SHARED_VECTORS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "vectors")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "android", "keyattestation", "*", "*", "*.pem"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, der := range pemBlocks(b) {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			for _, e := range c.Extensions {
				if e.Id.Equal(androidkey.OIDKeyDescription) {
					seeds = append(seeds, e.Value)
				}
			}
		}
	}
	return seeds
}

// FuzzParseKeyDescription checks that no input panics the parser, that
// every refusal carries the parser's code, and that whatever parses
// survives an encode-parse round trip unchanged.
func FuzzParseKeyDescription(f *testing.F) {
	for _, s := range seedDescriptions(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kd, err := androidkey.ParseKeyDescription(data)
		if err != nil {
			if attest.CodeOf(err) != androidkey.CodeKeyDescription {
				t.Fatalf("refusal without the parser's code: %v", err)
			}
			return
		}
		for _, l := range []*androidkey.AuthorizationList{&kd.SoftwareEnforced, &kd.HardwareEnforced} {
			l.InOrder()
			for _, tag := range l.Tags {
				if !l.Has(tag) {
					t.Fatalf("tag %d listed but not present", tag)
				}
			}
		}
		again, err := forge.EncodeKeyDescription(kd)
		if err != nil {
			t.Fatalf("a parsed description does not encode: %v", err)
		}
		kd2, err := androidkey.ParseKeyDescription(again)
		if err != nil {
			t.Fatalf("a re-encoded description does not parse: %v", err)
		}
		if !reflect.DeepEqual(kd, kd2) {
			t.Fatalf("round trip changed the description:\n%+v\n%+v", kd, kd2)
		}
	})
}

// splitChain turns fuzz input into certificates: each is a two-byte
// big-endian length and that many bytes.
func splitChain(data []byte) [][]byte {
	var chain [][]byte
	for len(data) >= 2 && len(chain) < 16 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		chain = append(chain, data[:n])
		data = data[n:]
	}
	return chain
}

func joinChain(chain [][]byte) []byte {
	var out []byte
	for _, c := range chain {
		out = binary.BigEndian.AppendUint16(out, uint16(len(c)))
		out = append(out, c...)
	}
	return out
}

// FuzzVerifyChain feeds the chain parser and verifier mutated chains: no
// input may panic, every refusal has a code, and an accepted chain has a
// key and facts.
func FuzzVerifyChain(f *testing.F) {
	fx := getFixture(f)
	for _, a := range []*forge.AndroidAttestation{
		mustAttest(f, fx.factory, forge.AndroidKey{}),
		mustAttest(f, fx.remote, forge.AndroidKey{Level: "strongbox", UserAuth: true}),
		mustAttest(f, fx.factory, forge.AndroidKey{Algorithm: "rsa-2048"}),
	} {
		f.Add(joinChain(a.Chain))
		f.Add(joinChain(a.WithoutRoot()))
	}
	roots := androidkey.NewRoots(fx.factory.Root.Cert)
	v := androidkey.NewVerifier()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []androidkey.Policy{{}, {Expiry: androidkey.ExpiryStrict, RequireUserAuth: true, MinOSPatchLevel: 202001, Packages: []string{forge.AndroidDefaultPackage}}} {
			res, err := v.Verify(splitChain(data), androidkey.Options{Challenge: challenge, Time: t0, Roots: roots, Policy: p})
			if err != nil {
				code := attest.CodeOf(err)
				if code == "" || !strings.Contains(string(code), ".") {
					t.Fatalf("refusal without a code: %v", err)
				}
				continue
			}
			if res.Verdict.PublicKey == nil || res.Verdict.Facts["security_level"] == nil || res.Description == nil {
				t.Fatalf("accepted without key or facts: %+v", res.Verdict)
			}
		}
	})
}

func pemBlocks(b []byte) [][]byte {
	var out [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		out = append(out, blk.Bytes)
	}
}

// FuzzVerifyDescription signs leaves whose KeyDescription is the fuzz input
// into a valid chain, so that every check after the chain's sees arbitrary
// descriptions: no input may panic, every refusal has a code, and nothing
// is accepted that the parser refuses or whose challenge differs.
func FuzzVerifyDescription(f *testing.F) {
	fx := getFixture(f)
	for _, s := range seedDescriptions(f) {
		f.Add(s)
	}
	for _, k := range []forge.AndroidKey{{}, {UserAuth: true, Level: "strongbox"}, {Level: "software"}} {
		k.Challenge = challenge
		a := mustAttest(f, fx.factory, k)
		b, err := forge.EncodeKeyDescription(a.Description)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	roots := fx.factory.Roots()
	v := androidkey.NewVerifier()
	f.Fuzz(func(t *testing.T, ext []byte) {
		a, err := fx.factory.Attest(forge.AndroidKey{Extension: ext})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []androidkey.Policy{{}, {MinSecurityLevel: androidkey.Software, AllowUnverifiedBoot: true, AllowUnlockedDevice: true, RequireUserAuth: true, MinOSPatchLevel: 202001, Packages: []string{forge.AndroidDefaultPackage}}} {
			res, err := v.Verify(a.Chain, androidkey.Options{Challenge: challenge, Time: t0, Roots: roots, Policy: p})
			if err != nil {
				if attest.CodeOf(err) == "" {
					t.Fatalf("refusal without a code: %v", err)
				}
				continue
			}
			kd, perr := androidkey.ParseKeyDescription(ext)
			if perr != nil || !reflect.DeepEqual(kd, res.Description) || string(kd.AttestationChallenge) != string(challenge) {
				t.Fatalf("accepted a description that does not parse to the same, or another challenge: %v", perr)
			}
		}
	})
}
