package forge

import (
	"fmt"
	"slices"

	"github.com/keybind/keybind/attest/androidkey"
)

// EncodeKeyDescription writes a KeyDescription as DER, exactly as given:
// any attestation version and security levels, every field of both
// authorization lists, unknown tags (AuthorizationList.Unknown, written
// with their Value as the explicit tag's content) and any tag order.
//
// Tags are written in the order of AuthorizationList.Tags; present fields
// that Tags does not list follow in ascending tag order (so a list built
// field by field, with Tags nil, comes out in DER order), and tags listed
// but absent are skipped. SET OF members are written in the order given.
// KeyDescription.Extra elements are appended after hardwareEnforced.
func EncodeKeyDescription(kd *androidkey.KeyDescription) ([]byte, error) {
	var body []byte
	body = append(body, derInt(kd.AttestationVersion)...)
	body = append(body, tlv(0, false, 10, derIntContent(kd.AttestationSecurityLevel.ASN1()))...)
	body = append(body, derInt(kd.KeyMintVersion)...)
	body = append(body, tlv(0, false, 10, derIntContent(kd.KeyMintSecurityLevel.ASN1()))...)
	body = append(body, tlv(0, false, 4, kd.AttestationChallenge)...)
	body = append(body, tlv(0, false, 4, kd.UniqueID)...)
	for _, l := range []*androidkey.AuthorizationList{&kd.SoftwareEnforced, &kd.HardwareEnforced} {
		b, err := encodeAuthorizationList(l)
		if err != nil {
			return nil, err
		}
		body = append(body, b...)
	}
	for _, e := range kd.Extra {
		body = append(body, e...)
	}
	return tlv(0, true, 16, body), nil
}

func encodeAuthorizationList(a *androidkey.AuthorizationList) ([]byte, error) {
	entries := map[androidkey.Tag][]byte{}
	put := func(t androidkey.Tag, value []byte) error {
		if _, dup := entries[t]; dup {
			return fmt.Errorf("forge: tag %d given twice", int(t))
		}
		entries[t] = tlv(2, true, int(t), value)
		return nil
	}
	ints := map[androidkey.Tag]*int64{
		androidkey.TagKeySize: a.KeySize, androidkey.TagRSAPublicExponent: a.RSAPublicExponent,
		androidkey.TagActiveDateTime: a.ActiveDateTime, androidkey.TagOriginationExpireDateTime: a.OriginationExpireDateTime,
		androidkey.TagUsageExpireDateTime: a.UsageExpireDateTime, androidkey.TagUsageCountLimit: a.UsageCountLimit,
		androidkey.TagAuthTimeout: a.AuthTimeout, androidkey.TagCreationDateTime: a.CreationDateTime,
		androidkey.TagOSVersion: a.OSVersion, androidkey.TagOSPatchLevel: a.OSPatchLevel,
		androidkey.TagVendorPatchLevel: a.VendorPatchLevel, androidkey.TagBootPatchLevel: a.BootPatchLevel,
	}
	if a.Algorithm != nil {
		v := int64(*a.Algorithm)
		ints[androidkey.TagAlgorithm] = &v
	}
	if a.ECCurve != nil {
		v := int64(*a.ECCurve)
		ints[androidkey.TagECCurve] = &v
	}
	if a.UserAuthType != nil {
		v := int64(*a.UserAuthType)
		ints[androidkey.TagUserAuthType] = &v
	}
	if a.Origin != nil {
		v := int64(*a.Origin)
		ints[androidkey.TagOrigin] = &v
	}
	for t, v := range ints {
		if v != nil {
			entries[t] = tlv(2, true, int(t), derInt(*v))
		}
	}
	var purposes []int64
	if a.Purpose != nil {
		purposes = []int64{}
		for _, p := range a.Purpose {
			purposes = append(purposes, int64(p))
		}
	}
	for t, vs := range map[androidkey.Tag][]int64{
		androidkey.TagPurpose: purposes, androidkey.TagBlockMode: a.BlockMode, androidkey.TagDigest: a.Digest,
		androidkey.TagPadding: a.Padding, androidkey.TagMGFDigest: a.MGFDigest,
	} {
		if vs != nil {
			var set []byte
			for _, v := range vs {
				set = append(set, derInt(v)...)
			}
			entries[t] = tlv(2, true, int(t), tlv(0, true, 17, set))
		}
	}
	for t, on := range map[androidkey.Tag]bool{
		androidkey.TagRollbackResistance: a.RollbackResistance, androidkey.TagEarlyBootOnly: a.EarlyBootOnly,
		androidkey.TagNoAuthRequired: a.NoAuthRequired, androidkey.TagAllowWhileOnBody: a.AllowWhileOnBody,
		androidkey.TagTrustedUserPresenceRequired: a.TrustedUserPresenceRequired,
		androidkey.TagTrustedConfirmationRequired: a.TrustedConfirmationRequired,
		androidkey.TagUnlockedDeviceRequired:      a.UnlockedDeviceRequired, androidkey.TagAllApplications: a.AllApplications,
		androidkey.TagRollbackResistant: a.RollbackResistant, androidkey.TagDeviceUniqueAttestation: a.DeviceUniqueAttestation,
	} {
		if on {
			entries[t] = tlv(2, true, int(t), tlv(0, false, 5, nil))
		}
	}
	for t, b := range map[androidkey.Tag][]byte{
		androidkey.TagApplicationID: a.ApplicationID, androidkey.TagAttestationIDBrand: a.AttestationIDBrand,
		androidkey.TagAttestationIDDevice: a.AttestationIDDevice, androidkey.TagAttestationIDProduct: a.AttestationIDProduct,
		androidkey.TagAttestationIDSerial: a.AttestationIDSerial, androidkey.TagAttestationIDIMEI: a.AttestationIDIMEI,
		androidkey.TagAttestationIDMEID: a.AttestationIDMEID, androidkey.TagAttestationIDManufacturer: a.AttestationIDManufacturer,
		androidkey.TagAttestationIDModel: a.AttestationIDModel, androidkey.TagAttestationIDSecondIMEI: a.AttestationIDSecondIMEI,
		androidkey.TagModuleHash: a.ModuleHash,
	} {
		if b != nil {
			entries[t] = tlv(2, true, int(t), tlv(0, false, 4, b))
		}
	}
	if r := a.RootOfTrust; r != nil {
		var body []byte
		body = append(body, tlv(0, false, 4, r.VerifiedBootKey)...)
		locked := byte(0)
		if r.DeviceLocked {
			locked = 0xff
		}
		body = append(body, tlv(0, false, 1, []byte{locked})...)
		body = append(body, tlv(0, false, 10, derIntContent(int64(r.VerifiedBootState)))...)
		if r.VerifiedBootHash != nil {
			body = append(body, tlv(0, false, 4, r.VerifiedBootHash)...)
		}
		entries[androidkey.TagRootOfTrust] = tlv(2, true, int(androidkey.TagRootOfTrust), tlv(0, true, 16, body))
	}
	if id := a.AttestationApplicationID; id != nil {
		var pkgs, digests []byte
		for _, p := range id.Packages {
			pkgs = append(pkgs, tlv(0, true, 16, append(tlv(0, false, 4, []byte(p.Name)), derInt(p.Version)...))...)
		}
		for _, d := range id.SignatureDigests {
			digests = append(digests, tlv(0, false, 4, d)...)
		}
		inner := tlv(0, true, 16, append(tlv(0, true, 17, pkgs), tlv(0, true, 17, digests)...))
		entries[androidkey.TagAttestationApplicationID] = tlv(2, true, int(androidkey.TagAttestationApplicationID), tlv(0, false, 4, inner))
	}
	for _, u := range a.Unknown {
		if err := put(u.Tag, u.Value); err != nil {
			return nil, err
		}
	}

	var order []androidkey.Tag
	for _, t := range a.Tags {
		if _, ok := entries[t]; ok && !slices.Contains(order, t) {
			order = append(order, t)
		}
	}
	var rest []androidkey.Tag
	for t := range entries {
		if !slices.Contains(order, t) {
			rest = append(rest, t)
		}
	}
	slices.Sort(rest)
	var body []byte
	for _, t := range append(order, rest...) {
		body = append(body, entries[t]...)
	}
	return tlv(0, true, 16, body), nil
}

// tlv writes one DER element: class (0 universal, 2 context), form, tag
// number (high-tag-number form from 31) and content.
func tlv(class int, constructed bool, tag int, content []byte) []byte {
	id := byte(class << 6)
	if constructed {
		id |= 0x20
	}
	var b []byte
	if tag < 31 {
		b = append(b, id|byte(tag))
	} else {
		b = append(b, id|0x1f)
		var num []byte
		for t := tag; t > 0; t >>= 7 {
			num = append([]byte{byte(t & 0x7f)}, num...)
		}
		for i := range len(num) - 1 {
			num[i] |= 0x80
		}
		b = append(b, num...)
	}
	n := len(content)
	switch {
	case n < 0x80:
		b = append(b, byte(n))
	default:
		var l []byte
		for x := n; x > 0; x >>= 8 {
			l = append([]byte{byte(x)}, l...)
		}
		b = append(b, 0x80|byte(len(l)))
		b = append(b, l...)
	}
	return append(b, content...)
}

func derInt(v int64) []byte { return tlv(0, false, 2, derIntContent(v)) }

// derIntContent is the minimal two's complement encoding of v.
func derIntContent(v int64) []byte {
	b := []byte{byte(v)}
	for x := v >> 8; ; x >>= 8 {
		last := b[0]
		if (x == 0 && last&0x80 == 0) || (x == -1 && last&0x80 != 0) {
			break
		}
		b = append([]byte{byte(x)}, b...)
	}
	return b
}
