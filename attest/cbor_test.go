package attest

import (
	"encoding/hex"
	"testing"
)

func TestStrictCBOR(t *testing.T) {
	type obj struct {
		Fmt  string `cbor:"fmt"`
		Data []byte `cbor:"data"`
	}
	for _, tc := range []struct {
		name, hex string
		code      Code
	}{
		{"valid", "a263666d74617864646174614101", ""},
		{"truncated", "a263666d7461", CodeCBORMalformed},
		{"trailing bytes", "a263666d74617864646174614101ff", CodeCBORTrailingBytes},
		{"duplicate key", "a263666d74617863666d746178", CodeCBORDuplicateKey},
		{"indefinite map", "bf63666d746178ff", CodeCBORIndefinite},
		{"indefinite bytes", "a164646174615f4101ff", CodeCBORIndefinite},
		{"tag", "a263666d7461786464617461c24101", CodeCBORTag},
		{"wrong type", "a163666d7401", CodeCBORType},
		{"deep nesting", "818181818181818181818101", CodeCBORLimit},
		{"long array", "a1646461746199001100000000000000000000000000000000000000", CodeCBORLimit},
	} {
		b, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(tc.name, err)
		}
		var v obj
		var dst any = &v
		if tc.name == "deep nesting" {
			var anyv any
			dst = &anyv
		}
		err = UnmarshalCBOR("test object", b, dst)
		if got := CodeOf(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
		if tc.code != "" && err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
