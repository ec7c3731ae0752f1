package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseState: any bytes as a state file are a phone whose fields
// check out, or an error; never a panic.
func FuzzParseState(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemKey, err := encodeKey(key)
	if err != nil {
		f.Fatal(err)
	}
	for _, kind := range []string{KindAndroid, KindApple} {
		st := State{Version: StateVersion, Kind: kind, Server: "http://127.0.0.1:8443", Tenant: "contoso", User: "alice",
			Credential: "c1", Device: "d1", App: DefaultAppID, Key: pemKey, Root: RootRef{Dir: "/tmp/devroot", SHA256: "00"},
			EnrolledAt: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
		if kind == KindApple {
			st.Counter = 7
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`{"version": 1}`))
	f.Add([]byte(`{"version": 1, "kind": "apple", "counter": 4294967296}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, key, err := parseState(b)
		if err != nil {
			if st != nil || key != nil {
				t.Fatal("an error with a result")
			}
			return
		}
		if st.Version != StateVersion || (st.Kind != KindAndroid && st.Kind != KindApple) || key.Curve != elliptic.P256() {
			t.Fatalf("accepted %+v", st)
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if st2, _, err := parseState(again); err != nil || *st2 != *st {
			t.Fatalf("accepted state does not survive a write: %v", err)
		}
	})
}

// FuzzParseRootFile: any bytes as a root's key file are a matching key
// and self-signed CA certificate, or an error; never a panic.
func FuzzParseRootFile(f *testing.F) {
	r, err := OpenRoot(filepath.Join(f.TempDir(), "devroot"))
	if err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, RootKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(r.PEM())
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, cert, err := parseRootFile(b)
		if err != nil {
			if key != nil || cert != nil {
				t.Fatal("an error with a result")
			}
			return
		}
		if !key.PublicKey.Equal(cert.PublicKey) || !cert.IsCA || key.Curve != elliptic.P384() {
			t.Fatal("accepted a key file that does not check out")
		}
	})
}
