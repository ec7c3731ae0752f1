package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestAppAttestItem checks App Attest assertions through the pipeline, one
// valid and one invalid case per check, against appattest.VerifyAssertion.
func TestAppAttestItem(t *testing.T) {
	p := New(Options{})
	defer p.Close()
	dev, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&dev.PublicKey)
	key, err := ParsePublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	other := newSigner(t)
	const appID = "8YE23NZS57.com.example.keybind"
	clientData := []byte(`{"challenge":"c-1234","number":42}`)
	assert := func(o forge.AppAssertOptions) []byte {
		if o.AppID == "" {
			o.AppID = appID
		}
		if o.ClientData == nil {
			o.ClientData = clientData
		}
		a, err := forge.AppAssert(dev, o)
		if err != nil {
			t.Fatal(err)
		}
		return a.Marshal()
	}
	opts := appattest.AssertionOptions{AppIDs: []string{appID}, PreviousCounter: 4, Challenge: []byte("c-1234")}
	good := assert(forge.AppAssertOptions{Counter: 5})
	for _, c := range []struct {
		name       string
		key        *PublicKey
		assertion  []byte
		clientData []byte
		opts       appattest.AssertionOptions
		want       string // "" for valid, else a prefix of the code
	}{
		{"valid", key, good, clientData, opts, ""},
		{"valid, high S", key, assert(forge.AppAssertOptions{Counter: 9, HighS: true}), clientData, opts, ""},
		{"other client data", key, good, []byte(`{"challenge":"c-1234","number":43}`), opts, string(CodeSignature)},
		{"other key", other.p256Key, good, clientData, opts, string(CodeSignature)},
		{"Ed25519 key", other.edKey, good, clientData, opts, string(CodeKeyAlgorithm)},
		{"counter not greater", key, good, clientData, appattest.AssertionOptions{AppIDs: []string{appID}, PreviousCounter: 5}, string(appattest.CodeAssertionCounter)},
		{"other App ID", key, good, clientData, appattest.AssertionOptions{AppIDs: []string{"8YE23NZS57.com.example.other"}}, string(appattest.CodeAssertionAppID)},
		{"no App ID", key, good, clientData, appattest.AssertionOptions{}, string(appattest.CodeAppIDs)},
		{"challenge absent", key, good, clientData, appattest.AssertionOptions{AppIDs: []string{appID}, Challenge: []byte("c-9999")}, string(appattest.CodeAssertionChallenge)},
		{"not CBOR", key, []byte("not cbor"), clientData, opts, "cbor."},
		{"truncated", key, good[:len(good)-1], clientData, opts, "cbor."},
	} {
		var digest [32]byte
		it, counter, err := AppAttestItem(c.key, c.assertion, c.clientData, c.opts, &digest)
		got := attest.CodeOf(err)
		if err == nil {
			res := make([]Result, 1)
			if err := p.Verify([]Item{it}, res); err != nil {
				t.Fatal(err)
			}
			got = res[0].Code
			if got == "" && counter <= c.opts.PreviousCounter {
				t.Errorf("%s: counter %d", c.name, counter)
			}
		}
		if (c.want == "") != (got == "") || !got.HasPrefix(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		// The same verdict as appattest.VerifyAssertion.
		var want attest.Code
		if c.key.ECDSA() == nil {
			want = CodeKeyAlgorithm
		} else if _, err := appattest.VerifyAssertion(c.assertion, c.clientData, c.key.ECDSA(), c.opts); err != nil {
			want = attest.CodeOf(err)
		}
		if got != want {
			t.Errorf("%s: pipeline %q, appattest.VerifyAssertion %q", c.name, got, want)
		}
	}
}
