package androidkey

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPolicyZeroValueIsSafe(t *testing.T) {
	var p Policy
	if p.minLevel() != TrustedEnvironment || p.AllowUnverifiedBoot || p.AllowUnlockedDevice || p.Expiry != ExpiryGoogle {
		t.Errorf("zero policy: %+v", p)
	}
	parsed, err := ParsePolicy([]byte(`{}`))
	if err != nil || !reflect.DeepEqual(parsed, p) {
		t.Errorf("ParsePolicy({}) = %+v, %v; want the zero policy", parsed, err)
	}
}

func TestParsePolicy(t *testing.T) {
	digest := bytes.Repeat([]byte{0xab}, 32)
	got, err := ParsePolicy([]byte(`{
		"min_security_level": "strongbox",
		"require_verified_boot": false,
		"require_device_locked": false,
		"require_user_auth": true,
		"packages": ["com.example.a", "com.example.b"],
		"signing_digests": ["hex:` + strings.Repeat("ab", 32) + `", "b64:q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", "b64url:q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"],
		"min_os_patch_level": 202401,
		"expiry": "strict"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		MinSecurityLevel:    StrongBox,
		AllowUnverifiedBoot: true,
		AllowUnlockedDevice: true,
		RequireUserAuth:     true,
		Packages:            []string{"com.example.a", "com.example.b"},
		SigningDigests:      [][]byte{digest, digest, digest},
		MinOSPatchLevel:     202401,
		Expiry:              ExpiryStrict,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// MarshalJSON writes what ParsePolicy reads.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip through %s: %+v, %v", b, back, err)
	}
	b, err = json.Marshal(Policy{})
	if err != nil || string(b) != `{"min_security_level":"tee","require_verified_boot":true,"require_device_locked":true,"require_user_auth":false,"expiry":"google"}` {
		t.Errorf("zero policy as JSON: %s, %v", b, err)
	}
	for _, e := range []string{"google", "strict", "ignore"} {
		p, err := ParsePolicy([]byte(`{"expiry":"` + e + `"}`))
		if err != nil || p.Expiry.String() != e {
			t.Errorf("expiry %s: %v %v", e, p.Expiry, err)
		}
	}
	p, err := ParsePolicy([]byte(`{"min_security_level":"software"}`))
	if err != nil || p.MinSecurityLevel != Software {
		t.Errorf("software: %+v %v", p, err)
	}
}

func TestParsePolicyRefusals(t *testing.T) {
	for _, bad := range []string{
		``,
		`[]`,
		`{"min_security_level": "hardware"}`,
		`{"min_security_level": 1}`,
		`{"require_verified_boot": "yes"}`,
		`{"require_user_auth": null, "unknown_field": 1}`,
		`{"packages": "com.example"}`,
		`{"packages": [""]}`,
		`{"signing_digests": ["abab"]}`,
		`{"signing_digests": ["hex:abab"]}`,
		`{"signing_digests": ["text:` + strings.Repeat("a", 32) + `"]}`,
		`{"signing_digests": ["hex:zz"]}`,
		`{"min_os_patch_level": 0}`,
		`{"min_os_patch_level": 20240101}`,
		`{"min_os_patch_level": 202413}`,
		`{"min_os_patch_level": "202401"}`,
		`{"expiry": "lenient"}`,
		`{} {}`,
		`{"expiry": "google"} x`,
	} {
		if p, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) = %+v, want an error", bad, p)
		}
	}
	for _, p := range []Policy{
		{MinSecurityLevel: 7},
		{Expiry: 9},
		{SigningDigests: [][]byte{{1}}},
		{Packages: []string{""}},
		{MinOSPatchLevel: 1},
	} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", p)
		}
	}
}
