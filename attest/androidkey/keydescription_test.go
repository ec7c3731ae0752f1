package androidkey_test

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors/forge"
)

func i64(v int64) *int64 { return &v }

// fullList sets every field of the schema.
func fullList() androidkey.AuthorizationList {
	alg, curve, auth, origin := androidkey.AlgorithmEC, androidkey.CurveP256, androidkey.AuthFingerprint, androidkey.OriginGenerated
	return androidkey.AuthorizationList{
		Purpose:                     []androidkey.Purpose{androidkey.PurposeSign, androidkey.PurposeVerify},
		Algorithm:                   &alg,
		KeySize:                     i64(256),
		BlockMode:                   []int64{1, 2},
		Digest:                      []int64{4, 0},
		Padding:                     []int64{1},
		ECCurve:                     &curve,
		RSAPublicExponent:           i64(65537),
		MGFDigest:                   []int64{4},
		RollbackResistance:          true,
		EarlyBootOnly:               true,
		ActiveDateTime:              i64(1700000000000),
		OriginationExpireDateTime:   i64(1800000000000),
		UsageExpireDateTime:         i64(1900000000000),
		UsageCountLimit:             i64(1),
		NoAuthRequired:              true,
		UserAuthType:                &auth,
		AuthTimeout:                 i64(30),
		AllowWhileOnBody:            true,
		TrustedUserPresenceRequired: true,
		TrustedConfirmationRequired: true,
		UnlockedDeviceRequired:      true,
		AllApplications:             true,
		ApplicationID:               []byte("app"),
		CreationDateTime:            i64(1727389885586),
		Origin:                      &origin,
		RollbackResistant:           true,
		RootOfTrust: &androidkey.RootOfTrust{
			VerifiedBootKey: bytes.Repeat([]byte{1}, 32), DeviceLocked: true,
			VerifiedBootState: androidkey.SelfSigned, VerifiedBootHash: bytes.Repeat([]byte{2}, 32),
		},
		OSVersion:    i64(140000),
		OSPatchLevel: i64(202408),
		AttestationApplicationID: &androidkey.AttestationApplicationID{
			Packages:         []androidkey.PackageInfo{{Name: "com.example.a", Version: 7}, {Name: "com.example.b", Version: -1}},
			SignatureDigests: [][]byte{bytes.Repeat([]byte{3}, 32), {}},
		},
		AttestationIDBrand:        []byte("brand"),
		AttestationIDDevice:       []byte("device"),
		AttestationIDProduct:      []byte("product"),
		AttestationIDSerial:       []byte("serial"),
		AttestationIDIMEI:         []byte("imei"),
		AttestationIDMEID:         []byte("meid"),
		AttestationIDManufacturer: []byte("maker"),
		AttestationIDModel:        []byte("model"),
		VendorPatchLevel:          i64(20240805),
		BootPatchLevel:            i64(20240805),
		DeviceUniqueAttestation:   true,
		AttestationIDSecondIMEI:   []byte("imei2"),
		ModuleHash:                bytes.Repeat([]byte{4}, 32),
	}
}

// withTags returns l with Tags set to what a parse reports.
func withTags(l androidkey.AuthorizationList, tags ...androidkey.Tag) androidkey.AuthorizationList {
	l.Tags = tags
	return l
}

// TestKeyDescriptionRoundTrip encodes a description with every field of the
// schema, in every attestation version, and parses it back.
func TestKeyDescriptionRoundTrip(t *testing.T) {
	for _, version := range []int64{1, 2, 3, 4, 100, 200, 300, 400, 500, 600, 1 << 40} {
		kd := &androidkey.KeyDescription{
			AttestationVersion:       version,
			AttestationSecurityLevel: androidkey.StrongBox,
			KeyMintVersion:           version,
			KeyMintSecurityLevel:     androidkey.StrongBox,
			AttestationChallenge:     []byte("challenge"),
			UniqueID:                 []byte{},
			SoftwareEnforced:         androidkey.AuthorizationList{CreationDateTime: i64(1)},
			HardwareEnforced:         fullList(),
		}
		der, err := forge.EncodeKeyDescription(kd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := androidkey.ParseKeyDescription(der)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		want := *kd
		want.SoftwareEnforced = withTags(kd.SoftwareEnforced, androidkey.TagCreationDateTime)
		want.HardwareEnforced = withTags(kd.HardwareEnforced, androidkey.SchemaTags()...)
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("version %d: round trip\n got %+v\nwant %+v", version, got.HardwareEnforced, want.HardwareEnforced)
		}
		if !got.HardwareEnforced.InOrder() {
			t.Error("tags encoded in ascending order are reported out of order")
		}
	}
}

// TestEveryTagAlone parses each schema tag on its own, so that a tag the
// parser knows by name but does not store cannot go unnoticed.
func TestEveryTagAlone(t *testing.T) {
	full := fullList()
	for _, tag := range androidkey.SchemaTags() {
		kd := &androidkey.KeyDescription{
			AttestationVersion: 400, AttestationSecurityLevel: androidkey.TrustedEnvironment,
			KeyMintVersion: 400, KeyMintSecurityLevel: androidkey.TrustedEnvironment,
			AttestationChallenge: []byte{}, UniqueID: []byte{},
			HardwareEnforced: full,
		}
		// Parse the full list, keep only the field that encodes this tag,
		// and check that a list holding just that field parses back to it.
		der, err := forge.EncodeKeyDescription(kd)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := androidkey.ParseKeyDescription(der)
		if err != nil {
			t.Fatal(err)
		}
		one := keepOnly(t, parsed.HardwareEnforced, tag)
		kd.HardwareEnforced = one
		der, err = forge.EncodeKeyDescription(kd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := androidkey.ParseKeyDescription(der)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if !slices.Equal(got.HardwareEnforced.Tags, []androidkey.Tag{tag}) || !got.HardwareEnforced.Has(tag) {
			t.Errorf("%s: parsed tags %v", tag, got.HardwareEnforced.Tags)
		}
		one.Tags = []androidkey.Tag{tag}
		if !reflect.DeepEqual(got.HardwareEnforced, one) {
			t.Errorf("%s: got %+v, want %+v", tag, got.HardwareEnforced, one)
		}
		if tag.Kind() == androidkey.KindUnknown || tag.String() == "" {
			t.Errorf("%s: kind or name missing", tag)
		}
	}
}

// keepOnly returns a list holding only tag's field of l, found by clearing
// every other field through reflection on the parsed structure.
func keepOnly(t *testing.T, l androidkey.AuthorizationList, tag androidkey.Tag) androidkey.AuthorizationList {
	t.Helper()
	var out androidkey.AuthorizationList
	lv, ov := reflect.ValueOf(l), reflect.ValueOf(&out).Elem()
	found := false
	for i := range lv.NumField() {
		name := lv.Type().Field(i).Name
		if name == "Tags" || name == "Unknown" {
			continue
		}
		// Encode a list with just this field and see which tag it makes.
		var probe androidkey.AuthorizationList
		reflect.ValueOf(&probe).Elem().Field(i).Set(lv.Field(i))
		der, err := forge.EncodeKeyDescription(&androidkey.KeyDescription{
			AttestationVersion: 1, AttestationSecurityLevel: androidkey.Software, KeyMintSecurityLevel: androidkey.Software,
			HardwareEnforced: probe,
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err := androidkey.ParseKeyDescription(der)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(p.HardwareEnforced.Tags, []androidkey.Tag{tag}) {
			ov.Field(i).Set(lv.Field(i))
			found = true
		}
	}
	if !found {
		t.Fatalf("no field of AuthorizationList encodes tag %s", tag)
	}
	return out
}

func TestKeyDescriptionPresenceAndOrder(t *testing.T) {
	purpose := []androidkey.Purpose{androidkey.PurposeSign}
	kd := &androidkey.KeyDescription{
		AttestationVersion: 300, AttestationSecurityLevel: androidkey.TrustedEnvironment,
		KeyMintVersion: 300, KeyMintSecurityLevel: androidkey.TrustedEnvironment,
		AttestationChallenge: []byte("c"), UniqueID: []byte{},
		HardwareEnforced: androidkey.AuthorizationList{
			Purpose:      purpose,
			OSPatchLevel: i64(202401),
			Digest:       []int64{}, // present, empty
			Unknown: []androidkey.RawTag{
				{Tag: 9999, Value: []byte{0x02, 0x01, 0x05}},
				{Tag: 42, Value: []byte{}},
			},
			// Encoded out of ascending order, as some devices do.
			Tags: []androidkey.Tag{androidkey.TagOSPatchLevel, 9999, androidkey.TagPurpose},
		},
	}
	der, err := forge.EncodeKeyDescription(kd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := androidkey.ParseKeyDescription(der)
	if err != nil {
		t.Fatal(err)
	}
	hw := got.HardwareEnforced
	if hw.Origin != nil {
		t.Error("an absent origin is reported present")
	}
	if !hw.Has(androidkey.TagDigest) || hw.Digest == nil || len(hw.Digest) != 0 {
		t.Errorf("empty digest set: has %v, %#v", hw.Has(androidkey.TagDigest), hw.Digest)
	}
	wantTags := []androidkey.Tag{androidkey.TagOSPatchLevel, 9999, androidkey.TagPurpose, androidkey.TagDigest, 42}
	if !slices.Equal(hw.Tags, wantTags) {
		t.Errorf("tags %v, want %v", hw.Tags, wantTags)
	}
	if hw.InOrder() {
		t.Error("out-of-order tags reported in order")
	}
	if len(hw.Unknown) != 2 || hw.Unknown[0].Tag != 9999 || !bytes.Equal(hw.Unknown[0].Value, []byte{0x02, 0x01, 0x05}) || hw.Unknown[1].Tag != 42 {
		t.Errorf("unknown tags %+v", hw.Unknown)
	}
	if androidkey.Tag(9999).String() != "tag(9999)" || androidkey.TagRootOfTrust.String() != "rootOfTrust" {
		t.Error("tag names")
	}
}

// TestKeyDescriptionRefusals checks malformed encodings: each is an
// asn1.key_description error, and no truncation of a valid description
// panics or parses.
func TestKeyDescriptionRefusals(t *testing.T) {
	kd := &androidkey.KeyDescription{
		AttestationVersion: 4, AttestationSecurityLevel: androidkey.TrustedEnvironment,
		KeyMintVersion: 41, KeyMintSecurityLevel: androidkey.TrustedEnvironment,
		AttestationChallenge: []byte("c"), UniqueID: []byte{},
		HardwareEnforced: fullList(),
	}
	good, err := forge.EncodeKeyDescription(kd)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(good); n++ {
		if _, err := androidkey.ParseKeyDescription(good[:n]); attest.CodeOf(err) != androidkey.CodeKeyDescription {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	enc := func(edit func(*androidkey.KeyDescription)) []byte {
		k := *kd
		edit(&k)
		b, err := forge.EncodeKeyDescription(&k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"trailing byte":     append(append([]byte{}, good...), 0),
		"indefinite length": append([]byte{0x30, 0x80}, good[2:]...),
		"not a sequence":    {0x04, 0x00},
		"empty":             {},
		"unknown level":     enc(func(k *androidkey.KeyDescription) { k.AttestationSecurityLevel = 9 }),
		"seven fields":      {0x30, 0x03, 0x02, 0x01, 0x01},
		"duplicate tag": enc(func(k *androidkey.KeyDescription) {
			k.HardwareEnforced = androidkey.AuthorizationList{OSVersion: i64(1), Unknown: nil}
			k.HardwareEnforced.Tags = nil
		}),
		"non-minimal integer":  {0x30, 0x04, 0x02, 0x02, 0x00, 0x01},
		"non-minimal length":   {0x30, 0x81, 0x03, 0x02, 0x01, 0x01},
		"universal in a list":  nil,
		"integer too large":    {0x30, 0x0b, 0x02, 0x09, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0},
		"bad package encoding": nil,
	}
	// A duplicate: the same tag twice, written by hand.
	dup := androidkey.AuthorizationList{Unknown: []androidkey.RawTag{{Tag: 705, Value: []byte{0x02, 0x01, 0x01}}}}
	okList, err := forge.EncodeKeyDescription(&androidkey.KeyDescription{AttestationSecurityLevel: androidkey.Software, KeyMintSecurityLevel: androidkey.Software, HardwareEnforced: dup})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := androidkey.ParseKeyDescription(okList); err != nil {
		t.Fatalf("one osVersion: %v", err)
	}
	cases["duplicate tag"] = doubleLastEntry(t, okList)
	// A universal element directly inside an AuthorizationList.
	uni := androidkey.AuthorizationList{Unknown: []androidkey.RawTag{{Tag: 800, Value: nil}}}
	b, err := forge.EncodeKeyDescription(&androidkey.KeyDescription{AttestationSecurityLevel: androidkey.Software, KeyMintSecurityLevel: androidkey.Software, HardwareEnforced: uni})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte{0xbf, 0x86, 0x20, 0x00})
	if i < 0 {
		t.Fatal("tag 800 not found")
	}
	b[i], b[i+1], b[i+2] = 0x05, 0x00, 0x05 // NULL, then a NULL header for the last byte
	cases["universal in a list"] = b
	// A package name that is not UTF-8.
	bad := fullList()
	bad.AttestationApplicationID.Packages[0].Name = "\xff"
	cases["bad package encoding"] = enc(func(k *androidkey.KeyDescription) { k.HardwareEnforced = bad })
	for name, der := range cases {
		_, err := androidkey.ParseKeyDescription(der)
		if attest.CodeOf(err) != androidkey.CodeKeyDescription {
			t.Errorf("%s: %v, want %s", name, err, androidkey.CodeKeyDescription)
		}
	}
}

// doubleLastEntry repeats the last entry of the hardware-enforced list,
// fixing up the enclosing lengths (all short-form here).
func doubleLastEntry(t *testing.T, der []byte) []byte {
	t.Helper()
	// The last entry is [705] { INTEGER 1 }: bf 85 41 03 02 01 01.
	entry := []byte{0xbf, 0x85, 0x41, 0x03, 0x02, 0x01, 0x01}
	if !bytes.HasSuffix(der, entry) {
		t.Fatalf("unexpected encoding %x", der)
	}
	out := append(append([]byte{}, der...), entry...)
	out[1] += byte(len(entry))                     // KeyDescription length
	out[len(der)-len(entry)-1] += byte(len(entry)) // hardwareEnforced length
	return out
}
