package androidkey_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors"
)

// sharedAndroid returns the folder of the real-world Android vectors
// (../shared/vectors/android, or $KEYBIND_SHARED_VECTORS/android), or skips
// when it is absent and not demanded.
func sharedAndroid(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KEYBIND_SHARED_VECTORS"); d != "" {
		return filepath.Join(d, "android")
	}
	d := filepath.Join("..", "..", "..", "shared", "vectors", "android")
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		t.Skipf("no real-world vectors at %s; set KEYBIND_SHARED_VECTORS to run them", d)
	}
	return d
}

// sharedVector is the part of a real-world vector these tests read.
type sharedVector struct {
	chain     [][]byte
	time      time.Time
	challenge []byte
	policy    androidkey.Policy
}

func loadShared(t testing.TB, dir string) map[string]sharedVector {
	t.Helper()
	m, err := testvectors.LoadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sharedVector{}
	for _, v := range m.Vectors {
		var in struct {
			Chain json.RawMessage `json:"chain"`
		}
		var params struct {
			Time      time.Time       `json:"time"`
			Challenge string          `json:"challenge"`
			Policy    json.RawMessage `json:"policy"`
		}
		if err := json.Unmarshal(v.Input, &in); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(v.Params, &params); err != nil {
			t.Fatal(err)
		}
		sv := sharedVector{time: params.Time}
		if sv.challenge, err = testvectors.DecodeValue(params.Challenge, dir); err != nil {
			t.Fatal(err)
		}
		if params.Policy != nil {
			if sv.policy, err = androidkey.ParsePolicy(params.Policy); err != nil {
				t.Fatal(err)
			}
		}
		var values []string
		if json.Unmarshal(in.Chain, &values) != nil {
			var one string
			if err := json.Unmarshal(in.Chain, &one); err != nil {
				t.Fatal(err)
			}
			values = []string{one}
		}
		for _, s := range values {
			b, err := testvectors.DecodeValue(s, dir)
			if err != nil {
				t.Fatal(err)
			}
			if blk, _ := pem.Decode(b); blk == nil {
				sv.chain = append(sv.chain, b)
				continue
			}
			for rest := b; ; {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				sv.chain = append(sv.chain, blk.Bytes)
			}
		}
		out[v.ID] = sv
	}
	return out
}

// TestSharedChains pins down why each real-world reject is rejected (the
// manifest only gives a prefix, or none), and which Google root each
// accepted chain ends in.
func TestSharedChains(t *testing.T) {
	vecs := loadShared(t, sharedAndroid(t))
	v := androidkey.NewVerifier()
	rsa, ec := "Google Hardware Attestation Root (RSA-4096)", "Google Key Attestation CA1 (EC P-384)"
	for id, want := range map[string]string{
		"android/marlin-sdk29/TEE_EC_NONE":                                          string(androidkey.CodeSoftwareRoot),
		"android/marlin-sdk29/TEE_RSA_NONE":                                         string(androidkey.CodeSoftwareRoot),
		"android/invalid/tags_not_in_ascending_order":                               string(androidkey.CodeSignature),
		"android/allow_while_on_body":                                               string(androidkey.CodeChainTooShort),
		"android/android-key-attestation/pem/algorithm_EC_SecurityLevel_StrongBox":  string(androidkey.CodeUntrustedRoot),
		"android/android-key-attestation/der/algorithm_RSA_SecurityLevel_StrongBox": string(androidkey.CodeUntrustedRoot),
		"android/expiry/caiman-sdk36/TEE_EC_RKP@2026-11-26":                         string(androidkey.CodeExpired),
		"android/expiry/blueline-sdk28/TEE_EC_NONE@2026-11-26":                      rsa,
		"android/akita-sdk34/TEE_EC_NONE":                                           rsa,
		"android/tegu-sdk36/TEE_EC_2026_ROOT":                                       ec,
		"android/tegu-sdk36/SB_EC_2026_ROOT":                                        ec,
	} {
		sv, ok := vecs[id]
		if !ok {
			t.Errorf("%s: not in the manifest", id)
			continue
		}
		res, err := v.Verify(sv.chain, androidkey.Options{Challenge: sv.challenge, Time: sv.time, Policy: sv.policy})
		switch {
		case err != nil && string(attest.CodeOf(err)) != want:
			t.Errorf("%s: %v, want %s", id, err, want)
		case err == nil && res.Verdict.Root != want:
			t.Errorf("%s: accepted under %q, want %s", id, res.Verdict.Root, want)
		}
	}

	// The devices' descriptions parse even where the chain fails: tags
	// out of order, a lone leaf with usage-time limits.
	leafDescription := func(id string) *androidkey.KeyDescription {
		c := parseLeaf(t, vecs[id].chain[0])
		for _, e := range c.Extensions {
			if e.Id.Equal(androidkey.OIDKeyDescription) {
				kd, err := androidkey.ParseKeyDescription(e.Value)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				return kd
			}
		}
		t.Fatalf("%s: no extension", id)
		return nil
	}
	if kd := leafDescription("android/invalid/tags_not_in_ascending_order"); kd.HardwareEnforced.InOrder() || kd.HardwareEnforced.Algorithm == nil {
		t.Errorf("out-of-order tags: in order %v, algorithm %v", kd.HardwareEnforced.InOrder(), kd.HardwareEnforced.Algorithm)
	}
	if kd := leafDescription("android/allow_while_on_body"); !kd.SoftwareEnforced.AllowWhileOnBody || kd.SoftwareEnforced.UsageExpireDateTime == nil || kd.HardwareEnforced.UserAuthType == nil {
		t.Errorf("allow_while_on_body: %+v", kd.SoftwareEnforced)
	}

	// A user-authentication key passes require_user_auth; a key without
	// it does not.
	auth := vecs["android/akita-sdk34/TEE_RSA_NONE_USERAUTH"]
	auth.policy.RequireUserAuth = true
	if _, err := v.Verify(auth.chain, androidkey.Options{Challenge: auth.challenge, Time: auth.time, Policy: auth.policy}); err != nil {
		t.Errorf("user-auth key with require_user_auth: %v", err)
	}
	none := vecs["android/akita-sdk34/TEE_RSA_NONE"]
	none.policy.RequireUserAuth = true
	if _, err := v.Verify(none.chain, androidkey.Options{Challenge: none.challenge, Time: none.time, Policy: none.policy}); attest.CodeOf(err) != androidkey.CodeUserAuth {
		t.Errorf("no-auth key with require_user_auth: %v", err)
	}
	// The default policy refuses these development devices.
	dev := vecs["android/blueline-sdk28/TEE_EC_NONE"]
	if _, err := v.Verify(dev.chain, androidkey.Options{Challenge: dev.challenge, Time: dev.time}); attest.CodeOf(err) != androidkey.CodeVerifiedBoot {
		t.Errorf("unverified device under the default policy: %v", err)
	}
}

func parseLeaf(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
