package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"testing"
)

// FuzzDER checks validDER against encoding/asn1: it accepts exactly the
// inputs that decode to two non-negative integers of at most 256 bits and
// re-encode to the same bytes, and rawToDER inverts it.
func FuzzDER(f *testing.F) {
	s := newSigner(f)
	f.Add(s.der(f, []byte("a")))
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(b, &v)
		want := err == nil && len(rest) == 0 && v.R.Sign() >= 0 && v.S.Sign() >= 0 && v.R.BitLen() <= 256 && v.S.BitLen() <= 256
		if want {
			re, err := asn1.Marshal(v)
			want = err == nil && bytes.Equal(re, b)
		}
		if got := validDER(b); got != want {
			t.Fatalf("validDER(%x) = %v, encoding/asn1 says %v", b, got, want)
		}
		if want {
			rs := make([]byte, 64)
			v.R.FillBytes(rs[:32])
			v.S.FillBytes(rs[32:])
			var buf [72]byte
			if got := rawToDER(&buf, rs); !bytes.Equal(got, b) {
				t.Fatalf("rawToDER(%x) = %x, want %x", rs, got, b)
			}
		}
	})
}

// FuzzParsePublicKey feeds arbitrary bytes to ParsePublicKey: it must not
// panic, and what it accepts must be a usable key of the type it says.
func FuzzParsePublicKey(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	point, _ := k.PublicKey.Bytes()
	s := newSigner(f)
	f.Add(spki)
	f.Add(point)
	f.Add([]byte(s.edKey.Ed25519()))
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		switch key.Type() {
		case KeyP256:
			if key.ECDSA() == nil || !key.ECDSA().Curve.IsOnCurve(key.ECDSA().X, key.ECDSA().Y) {
				t.Fatalf("accepted %x as a P-256 key not on the curve", b)
			}
		case KeyEd25519:
			if len(key.Ed25519()) != 32 || key.ed == nil {
				t.Fatalf("accepted %x as an unusable Ed25519 key", b)
			}
		default:
			t.Fatalf("accepted %x as a key of type %v", b, key.Type())
		}
	})
}

// FuzzPrecheck feeds arbitrary items to the pipeline: no input may panic,
// and every item gets a result.
func FuzzPrecheck(f *testing.F) {
	s := newSigner(f)
	p := New(Options{Workers: 1})
	f.Cleanup(p.Close)
	good := s.item(f, ECDSAP256, []byte("m"))
	f.Add(uint8(ECDSAP256), uint8(0), good.Message, []byte{}, good.Signature)
	f.Add(uint8(Ed25519), uint8(1), []byte("m"), []byte{}, make([]byte, 64))
	f.Add(uint8(ECDSAP256Raw), uint8(0), []byte{}, make([]byte, 32), make([]byte, 64))
	f.Fuzz(func(t *testing.T, alg, key uint8, msg, digest, sig []byte) {
		it := Item{Algorithm: Algorithm(alg), Message: msg, Digest: digest, Signature: sig}
		switch key % 3 {
		case 0:
			it.Key = s.p256Key
		case 1:
			it.Key = s.edKey
		}
		if len(msg) == 0 {
			it.Message = nil
		}
		if len(digest) == 0 {
			it.Digest = nil
		}
		res := []Result{{Code: "unset"}}
		if err := p.Verify([]Item{it}, res); err != nil {
			t.Fatal(err)
		}
		if res[0].Code == "unset" {
			t.Fatal("no result")
		}
	})
}
