package androidkey

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/keybind/keybind/attest"
)

// KeyDescription is the Android Key Attestation extension (OID
// 1.3.6.1.4.1.11129.2.1.17) of an attested key's certificate: what the
// secure hardware says about the key. Field names follow Android's schema.
type KeyDescription struct {
	// AttestationVersion is the schema version: 1, 2, 3, 4 (Keymaster),
	// 100, 200, 300, 400, … (KeyMint). No upper bound is assumed.
	AttestationVersion       int64
	AttestationSecurityLevel SecurityLevel
	// KeyMintVersion is the Keymaster or KeyMint version (keymasterVersion
	// in older schemas).
	KeyMintVersion       int64
	KeyMintSecurityLevel SecurityLevel
	AttestationChallenge []byte
	UniqueID             []byte
	SoftwareEnforced     AuthorizationList
	// HardwareEnforced is teeEnforced in older schemas.
	HardwareEnforced AuthorizationList
	// Extra holds elements that follow hardwareEnforced (DER, in order).
	// No published version has any; they are kept, not refused, so that a
	// later schema that appends fields still parses.
	Extra [][]byte
}

// SecurityLevel is where a key lives. Its zero value means "not given":
// in a Policy it stands for the default minimum, TrustedEnvironment. A
// parsed KeyDescription always holds one of the three named levels.
type SecurityLevel int

// Security levels, weakest first.
const (
	Software           SecurityLevel = 1 + iota // ASN.1 value 0
	TrustedEnvironment                          // ASN.1 value 1 (a TEE)
	StrongBox                                   // ASN.1 value 2 (a separate secure element)
)

// String returns the name used in facts and policies: "software", "tee" or
// "strongbox" ("" for the zero value).
func (l SecurityLevel) String() string {
	switch l {
	case Software:
		return "software"
	case TrustedEnvironment:
		return "tee"
	case StrongBox:
		return "strongbox"
	case 0:
		return ""
	}
	return fmt.Sprintf("SecurityLevel(%d)", int(l))
}

// ASN1 returns the level's value in the schema's ENUMERATED.
func (l SecurityLevel) ASN1() int64 { return int64(l) - 1 }

// ParseSecurityLevel parses "software", "tee" or "strongbox".
func ParseSecurityLevel(s string) (SecurityLevel, error) {
	for _, l := range []SecurityLevel{Software, TrustedEnvironment, StrongBox} {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("unknown security level %q (want software, tee or strongbox)", s)
}

func securityLevelFromASN1(v int64) (SecurityLevel, error) {
	if v < 0 || v > 2 {
		return 0, fmt.Errorf("unknown security level %d", v)
	}
	return SecurityLevel(v + 1), nil
}

// VerifiedBootState is the boot state in RootOfTrust (the schema's values).
type VerifiedBootState int64

// Verified boot states.
const (
	Verified   VerifiedBootState = 0 // boot chain verified by the OEM's key
	SelfSigned VerifiedBootState = 1 // verified by a user-installed key
	Unverified VerifiedBootState = 2 // bootloader unlocked, no verification
	Failed     VerifiedBootState = 3 // verification failed
)

// String returns "verified", "self_signed", "unverified" or "failed".
func (s VerifiedBootState) String() string {
	switch s {
	case Verified:
		return "verified"
	case SelfSigned:
		return "self_signed"
	case Unverified:
		return "unverified"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("unknown(%d)", int64(s))
}

// Purpose is a KeyMint key purpose.
type Purpose int64

// Key purposes.
const (
	PurposeEncrypt   Purpose = 0
	PurposeDecrypt   Purpose = 1
	PurposeSign      Purpose = 2
	PurposeVerify    Purpose = 3
	PurposeWrapKey   Purpose = 5
	PurposeAgreeKey  Purpose = 6
	PurposeAttestKey Purpose = 7
)

// Algorithm is a KeyMint key algorithm.
type Algorithm int64

// Key algorithms.
const (
	AlgorithmRSA       Algorithm = 1
	AlgorithmEC        Algorithm = 3
	AlgorithmAES       Algorithm = 32
	AlgorithmTripleDES Algorithm = 33
	AlgorithmHMAC      Algorithm = 128
)

// Curve is a KeyMint elliptic curve.
type Curve int64

// Curves.
const (
	CurveP224       Curve = 0
	CurveP256       Curve = 1
	CurveP384       Curve = 2
	CurveP521       Curve = 3
	CurveCurve25519 Curve = 4
)

// Origin says where a key came from.
type Origin int64

// Key origins.
const (
	OriginGenerated        Origin = 0
	OriginDerived          Origin = 1
	OriginImported         Origin = 2
	OriginReserved         Origin = 3
	OriginSecurelyImported Origin = 4
)

// String returns "generated", "derived", "imported", "reserved" or
// "securely_imported".
func (o Origin) String() string {
	switch o {
	case OriginGenerated:
		return "generated"
	case OriginDerived:
		return "derived"
	case OriginImported:
		return "imported"
	case OriginReserved:
		return "reserved"
	case OriginSecurelyImported:
		return "securely_imported"
	}
	return fmt.Sprintf("unknown(%d)", int64(o))
}

// AuthenticatorType is the bit set of userAuthType.
type AuthenticatorType int64

// Authenticator types.
const (
	AuthPassword    AuthenticatorType = 1 // PIN, pattern or password
	AuthFingerprint AuthenticatorType = 2 // a biometric
	AuthAny         AuthenticatorType = 0xffffffff
)

// Tag is the number of an AuthorizationList entry (the KeyMint tag without
// its type bits).
type Tag int

// The tags of Android's attestation schema.
const (
	TagPurpose                     Tag = 1
	TagAlgorithm                   Tag = 2
	TagKeySize                     Tag = 3
	TagBlockMode                   Tag = 4
	TagDigest                      Tag = 5
	TagPadding                     Tag = 6
	TagECCurve                     Tag = 10
	TagRSAPublicExponent           Tag = 200
	TagMGFDigest                   Tag = 203
	TagRollbackResistance          Tag = 303
	TagEarlyBootOnly               Tag = 305
	TagActiveDateTime              Tag = 400
	TagOriginationExpireDateTime   Tag = 401
	TagUsageExpireDateTime         Tag = 402
	TagUsageCountLimit             Tag = 405
	TagNoAuthRequired              Tag = 503
	TagUserAuthType                Tag = 504
	TagAuthTimeout                 Tag = 505
	TagAllowWhileOnBody            Tag = 506
	TagTrustedUserPresenceRequired Tag = 507
	TagTrustedConfirmationRequired Tag = 508
	TagUnlockedDeviceRequired      Tag = 509
	TagAllApplications             Tag = 600
	TagApplicationID               Tag = 601
	TagCreationDateTime            Tag = 701
	TagOrigin                      Tag = 702
	TagRollbackResistant           Tag = 703
	TagRootOfTrust                 Tag = 704
	TagOSVersion                   Tag = 705
	TagOSPatchLevel                Tag = 706
	TagAttestationApplicationID    Tag = 709
	TagAttestationIDBrand          Tag = 710
	TagAttestationIDDevice         Tag = 711
	TagAttestationIDProduct        Tag = 712
	TagAttestationIDSerial         Tag = 713
	TagAttestationIDIMEI           Tag = 714
	TagAttestationIDMEID           Tag = 715
	TagAttestationIDManufacturer   Tag = 716
	TagAttestationIDModel          Tag = 717
	TagVendorPatchLevel            Tag = 718
	TagBootPatchLevel              Tag = 719
	TagDeviceUniqueAttestation     Tag = 720
	TagAttestationIDSecondIMEI     Tag = 723
	TagModuleHash                  Tag = 724
)

// TagKind is the ASN.1 type of a schema tag's value.
type TagKind int

// Kinds of tag values.
const (
	KindUnknown       TagKind = iota // not a schema tag
	KindInteger                      // INTEGER
	KindIntegerSet                   // SET OF INTEGER
	KindNull                         // NULL (a flag: present or absent)
	KindOctetString                  // OCTET STRING
	KindRootOfTrust                  // RootOfTrust
	KindApplicationID                // OCTET STRING holding AttestationApplicationId
)

var tagInfo = map[Tag]struct {
	name string
	kind TagKind
}{
	TagPurpose:                     {"purpose", KindIntegerSet},
	TagAlgorithm:                   {"algorithm", KindInteger},
	TagKeySize:                     {"keySize", KindInteger},
	TagBlockMode:                   {"blockMode", KindIntegerSet},
	TagDigest:                      {"digest", KindIntegerSet},
	TagPadding:                     {"padding", KindIntegerSet},
	TagECCurve:                     {"ecCurve", KindInteger},
	TagRSAPublicExponent:           {"rsaPublicExponent", KindInteger},
	TagMGFDigest:                   {"mgfDigest", KindIntegerSet},
	TagRollbackResistance:          {"rollbackResistance", KindNull},
	TagEarlyBootOnly:               {"earlyBootOnly", KindNull},
	TagActiveDateTime:              {"activeDateTime", KindInteger},
	TagOriginationExpireDateTime:   {"originationExpireDateTime", KindInteger},
	TagUsageExpireDateTime:         {"usageExpireDateTime", KindInteger},
	TagUsageCountLimit:             {"usageCountLimit", KindInteger},
	TagNoAuthRequired:              {"noAuthRequired", KindNull},
	TagUserAuthType:                {"userAuthType", KindInteger},
	TagAuthTimeout:                 {"authTimeout", KindInteger},
	TagAllowWhileOnBody:            {"allowWhileOnBody", KindNull},
	TagTrustedUserPresenceRequired: {"trustedUserPresenceRequired", KindNull},
	TagTrustedConfirmationRequired: {"trustedConfirmationRequired", KindNull},
	TagUnlockedDeviceRequired:      {"unlockedDeviceRequired", KindNull},
	TagAllApplications:             {"allApplications", KindNull},
	TagApplicationID:               {"applicationId", KindOctetString},
	TagCreationDateTime:            {"creationDateTime", KindInteger},
	TagOrigin:                      {"origin", KindInteger},
	TagRollbackResistant:           {"rollbackResistant", KindNull},
	TagRootOfTrust:                 {"rootOfTrust", KindRootOfTrust},
	TagOSVersion:                   {"osVersion", KindInteger},
	TagOSPatchLevel:                {"osPatchLevel", KindInteger},
	TagAttestationApplicationID:    {"attestationApplicationId", KindApplicationID},
	TagAttestationIDBrand:          {"attestationIdBrand", KindOctetString},
	TagAttestationIDDevice:         {"attestationIdDevice", KindOctetString},
	TagAttestationIDProduct:        {"attestationIdProduct", KindOctetString},
	TagAttestationIDSerial:         {"attestationIdSerial", KindOctetString},
	TagAttestationIDIMEI:           {"attestationIdImei", KindOctetString},
	TagAttestationIDMEID:           {"attestationIdMeid", KindOctetString},
	TagAttestationIDManufacturer:   {"attestationIdManufacturer", KindOctetString},
	TagAttestationIDModel:          {"attestationIdModel", KindOctetString},
	TagVendorPatchLevel:            {"vendorPatchLevel", KindInteger},
	TagBootPatchLevel:              {"bootPatchLevel", KindInteger},
	TagDeviceUniqueAttestation:     {"deviceUniqueAttestation", KindNull},
	TagAttestationIDSecondIMEI:     {"attestationIdSecondImei", KindOctetString},
	TagModuleHash:                  {"moduleHash", KindOctetString},
}

// String returns the schema's name of the tag ("rootOfTrust"), or
// "tag(N)" for a tag the schema does not list.
func (t Tag) String() string {
	if i, ok := tagInfo[t]; ok {
		return i.name
	}
	return fmt.Sprintf("tag(%d)", int(t))
}

// Kind returns the ASN.1 type of the tag's value (KindUnknown for a tag the
// schema does not list).
func (t Tag) Kind() TagKind { return tagInfo[t].kind }

// SchemaTags returns every tag of the schema in ascending order.
func SchemaTags() []Tag {
	tags := make([]Tag, 0, len(tagInfo))
	for t := range tagInfo {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags
}

// AuthorizationList is one of the two lists of key properties: those the
// secure hardware enforces, and those only the Android system enforces.
// Presence is tracked: a nil pointer or slice is an absent tag (an absent
// origin is not OriginGenerated), a NULL-typed tag is a true bool when
// present, and Has reports any tag, including an empty SET or OCTET STRING.
type AuthorizationList struct {
	Purpose                     []Purpose                 // [1]
	Algorithm                   *Algorithm                // [2]
	KeySize                     *int64                    // [3]
	BlockMode                   []int64                   // [4]
	Digest                      []int64                   // [5]
	Padding                     []int64                   // [6]
	ECCurve                     *Curve                    // [10]
	RSAPublicExponent           *int64                    // [200]
	MGFDigest                   []int64                   // [203]
	RollbackResistance          bool                      // [303]
	EarlyBootOnly               bool                      // [305]
	ActiveDateTime              *int64                    // [400] milliseconds since 1970
	OriginationExpireDateTime   *int64                    // [401]
	UsageExpireDateTime         *int64                    // [402]
	UsageCountLimit             *int64                    // [405]
	NoAuthRequired              bool                      // [503]
	UserAuthType                *AuthenticatorType        // [504]
	AuthTimeout                 *int64                    // [505] seconds
	AllowWhileOnBody            bool                      // [506]
	TrustedUserPresenceRequired bool                      // [507]
	TrustedConfirmationRequired bool                      // [508]
	UnlockedDeviceRequired      bool                      // [509]
	AllApplications             bool                      // [600]
	ApplicationID               []byte                    // [601]
	CreationDateTime            *int64                    // [701] milliseconds since 1970
	Origin                      *Origin                   // [702]
	RollbackResistant           bool                      // [703]
	RootOfTrust                 *RootOfTrust              // [704]
	OSVersion                   *int64                    // [705] e.g. 140000 for Android 14
	OSPatchLevel                *int64                    // [706] YYYYMM
	AttestationApplicationID    *AttestationApplicationID // [709]
	AttestationIDBrand          []byte                    // [710]
	AttestationIDDevice         []byte                    // [711]
	AttestationIDProduct        []byte                    // [712]
	AttestationIDSerial         []byte                    // [713]
	AttestationIDIMEI           []byte                    // [714]
	AttestationIDMEID           []byte                    // [715]
	AttestationIDManufacturer   []byte                    // [716]
	AttestationIDModel          []byte                    // [717]
	VendorPatchLevel            *int64                    // [718] YYYYMMDD
	BootPatchLevel              *int64                    // [719] YYYYMMDD
	DeviceUniqueAttestation     bool                      // [720]
	AttestationIDSecondIMEI     []byte                    // [723]
	ModuleHash                  []byte                    // [724]

	// Unknown holds the entries whose tag the schema does not list, in the
	// order they were encoded. They are kept and reported, never refused.
	Unknown []RawTag
	// Tags lists every tag present, in the order they were encoded. Real
	// devices do not always encode them in ascending order; that is
	// accepted.
	Tags []Tag
}

// RawTag is an AuthorizationList entry kept as it was encoded.
type RawTag struct {
	Tag Tag
	// Value is the content of the explicit tag: normally the DER of one
	// element, kept as is.
	Value []byte
}

// Has reports whether the tag is present.
func (a *AuthorizationList) Has(t Tag) bool { return slices.Contains(a.Tags, t) }

// InOrder reports whether the tags were encoded in ascending order, as the
// schema's DER encoding would have them.
func (a *AuthorizationList) InOrder() bool { return slices.IsSorted(a.Tags) }

// RootOfTrust describes the device's boot.
type RootOfTrust struct {
	VerifiedBootKey   []byte
	DeviceLocked      bool
	VerifiedBootState VerifiedBootState
	// VerifiedBootHash is present from attestation version 3 (nil before).
	VerifiedBootHash []byte
}

// AttestationApplicationID names the app that asked for the key: every
// package sharing its Linux user id, and the SHA-256 digests of the
// certificates that signed it.
type AttestationApplicationID struct {
	Packages         []PackageInfo
	SignatureDigests [][]byte
}

// PackageInfo is one package of an AttestationApplicationID.
type PackageInfo struct {
	Name    string
	Version int64
}

// CodeKeyDescription is the code of every refusal of the parser.
const CodeKeyDescription attest.Code = "asn1.key_description"

// ParseKeyDescription parses the DER of a KeyDescription (the value of the
// attestation extension). Every failure is an *attest.Error with code
// asn1.key_description whose reason names the field.
func ParseKeyDescription(der []byte) (*KeyDescription, error) {
	r := derReader{b: der}
	seq, err := r.expect(classUniversal, true, tagSequence)
	if err != nil {
		return nil, kdErr("KeyDescription", err)
	}
	if !r.empty() {
		return nil, attest.Errorf(CodeKeyDescription, "KeyDescription: %d bytes after the SEQUENCE", len(r.b))
	}
	kd := &KeyDescription{}
	f := derReader{b: seq.content}
	if kd.AttestationVersion, err = readInt(&f); err != nil {
		return nil, kdErr("attestationVersion", err)
	}
	lv, err := readEnum(&f)
	if err == nil {
		kd.AttestationSecurityLevel, err = securityLevelFromASN1(lv)
	}
	if err != nil {
		return nil, kdErr("attestationSecurityLevel", err)
	}
	if kd.KeyMintVersion, err = readInt(&f); err != nil {
		return nil, kdErr("keyMintVersion", err)
	}
	lv, err = readEnum(&f)
	if err == nil {
		kd.KeyMintSecurityLevel, err = securityLevelFromASN1(lv)
	}
	if err != nil {
		return nil, kdErr("keyMintSecurityLevel", err)
	}
	if kd.AttestationChallenge, err = readOctets(&f); err != nil {
		return nil, kdErr("attestationChallenge", err)
	}
	if kd.UniqueID, err = readOctets(&f); err != nil {
		return nil, kdErr("uniqueId", err)
	}
	if err := parseAuthorizationList(&f, &kd.SoftwareEnforced); err != nil {
		return nil, kdErr("softwareEnforced", err)
	}
	if err := parseAuthorizationList(&f, &kd.HardwareEnforced); err != nil {
		return nil, kdErr("hardwareEnforced", err)
	}
	for !f.empty() {
		e, err := f.next()
		if err != nil {
			return nil, kdErr("KeyDescription (after hardwareEnforced)", err)
		}
		kd.Extra = append(kd.Extra, e.full)
	}
	return kd, nil
}

func kdErr(where string, err error) error {
	return attest.Errorf(CodeKeyDescription, "%s: %v", where, err)
}

// parseAuthorizationList reads one AuthorizationList SEQUENCE from r.
func parseAuthorizationList(r *derReader, a *AuthorizationList) error {
	seq, err := r.expect(classUniversal, true, tagSequence)
	if err != nil {
		return err
	}
	entries := derReader{b: seq.content}
	for !entries.empty() {
		e, err := entries.next()
		if err != nil {
			return err
		}
		if e.class != classContext || !e.constructed {
			return fmt.Errorf("entry %d: %s is not an explicitly tagged field", len(a.Tags), describeTag(e.class, e.constructed, e.tag))
		}
		t := Tag(e.tag)
		if a.Has(t) {
			return fmt.Errorf("[%d] %s appears twice", e.tag, t)
		}
		inner := derReader{b: e.content}
		if err := a.set(t, &inner); err != nil {
			return fmt.Errorf("[%d] %s: %v", e.tag, t, err)
		}
		if !inner.empty() {
			return fmt.Errorf("[%d] %s: %d bytes after the value", e.tag, t, len(inner.b))
		}
		a.Tags = append(a.Tags, t)
	}
	return nil
}

// set parses the value of tag t from r into a.
func (a *AuthorizationList) set(t Tag, r *derReader) error {
	var err error
	switch t.Kind() {
	case KindInteger:
		var v int64
		if v, err = readInt(r); err != nil {
			return err
		}
		a.setInt(t, v)
	case KindIntegerSet:
		var vs []int64
		if vs, err = readIntSet(r); err != nil {
			return err
		}
		a.setIntSet(t, vs)
	case KindNull:
		if err = readNull(r); err != nil {
			return err
		}
		a.setNull(t)
	case KindOctetString:
		var b []byte
		if b, err = readOctets(r); err != nil {
			return err
		}
		a.setOctets(t, b)
	case KindRootOfTrust:
		a.RootOfTrust, err = parseRootOfTrust(r)
	case KindApplicationID:
		var b []byte
		if b, err = readOctets(r); err != nil {
			return err
		}
		a.AttestationApplicationID, err = parseApplicationID(b)
	default:
		// Kept as encoded, whatever it holds.
		a.Unknown = append(a.Unknown, RawTag{Tag: t, Value: r.b})
		r.b = nil
	}
	return err
}

func (a *AuthorizationList) setInt(t Tag, v int64) {
	p := &v
	switch t {
	case TagAlgorithm:
		x := Algorithm(v)
		a.Algorithm = &x
	case TagKeySize:
		a.KeySize = p
	case TagECCurve:
		x := Curve(v)
		a.ECCurve = &x
	case TagRSAPublicExponent:
		a.RSAPublicExponent = p
	case TagActiveDateTime:
		a.ActiveDateTime = p
	case TagOriginationExpireDateTime:
		a.OriginationExpireDateTime = p
	case TagUsageExpireDateTime:
		a.UsageExpireDateTime = p
	case TagUsageCountLimit:
		a.UsageCountLimit = p
	case TagUserAuthType:
		x := AuthenticatorType(v)
		a.UserAuthType = &x
	case TagAuthTimeout:
		a.AuthTimeout = p
	case TagCreationDateTime:
		a.CreationDateTime = p
	case TagOrigin:
		x := Origin(v)
		a.Origin = &x
	case TagOSVersion:
		a.OSVersion = p
	case TagOSPatchLevel:
		a.OSPatchLevel = p
	case TagVendorPatchLevel:
		a.VendorPatchLevel = p
	case TagBootPatchLevel:
		a.BootPatchLevel = p
	}
}

func (a *AuthorizationList) setIntSet(t Tag, vs []int64) {
	switch t {
	case TagPurpose:
		a.Purpose = make([]Purpose, len(vs))
		for i, v := range vs {
			a.Purpose[i] = Purpose(v)
		}
	case TagBlockMode:
		a.BlockMode = vs
	case TagDigest:
		a.Digest = vs
	case TagPadding:
		a.Padding = vs
	case TagMGFDigest:
		a.MGFDigest = vs
	}
}

func (a *AuthorizationList) setNull(t Tag) {
	switch t {
	case TagRollbackResistance:
		a.RollbackResistance = true
	case TagEarlyBootOnly:
		a.EarlyBootOnly = true
	case TagNoAuthRequired:
		a.NoAuthRequired = true
	case TagAllowWhileOnBody:
		a.AllowWhileOnBody = true
	case TagTrustedUserPresenceRequired:
		a.TrustedUserPresenceRequired = true
	case TagTrustedConfirmationRequired:
		a.TrustedConfirmationRequired = true
	case TagUnlockedDeviceRequired:
		a.UnlockedDeviceRequired = true
	case TagAllApplications:
		a.AllApplications = true
	case TagRollbackResistant:
		a.RollbackResistant = true
	case TagDeviceUniqueAttestation:
		a.DeviceUniqueAttestation = true
	}
}

func (a *AuthorizationList) setOctets(t Tag, b []byte) {
	switch t {
	case TagApplicationID:
		a.ApplicationID = b
	case TagAttestationIDBrand:
		a.AttestationIDBrand = b
	case TagAttestationIDDevice:
		a.AttestationIDDevice = b
	case TagAttestationIDProduct:
		a.AttestationIDProduct = b
	case TagAttestationIDSerial:
		a.AttestationIDSerial = b
	case TagAttestationIDIMEI:
		a.AttestationIDIMEI = b
	case TagAttestationIDMEID:
		a.AttestationIDMEID = b
	case TagAttestationIDManufacturer:
		a.AttestationIDManufacturer = b
	case TagAttestationIDModel:
		a.AttestationIDModel = b
	case TagAttestationIDSecondIMEI:
		a.AttestationIDSecondIMEI = b
	case TagModuleHash:
		a.ModuleHash = b
	}
}

// readIntSet reads a SET OF INTEGER. The members are kept in encoded order
// (DER would sort them; devices do not always).
func readIntSet(r *derReader) ([]int64, error) {
	set, err := r.expect(classUniversal, true, tagSet)
	if err != nil {
		return nil, err
	}
	vs := []int64{}
	m := derReader{b: set.content}
	for !m.empty() {
		v, err := readInt(&m)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

func parseRootOfTrust(r *derReader) (*RootOfTrust, error) {
	seq, err := r.expect(classUniversal, true, tagSequence)
	if err != nil {
		return nil, err
	}
	f := derReader{b: seq.content}
	rot := &RootOfTrust{}
	if rot.VerifiedBootKey, err = readOctets(&f); err != nil {
		return nil, fmt.Errorf("verifiedBootKey: %v", err)
	}
	if rot.DeviceLocked, err = readBool(&f); err != nil {
		return nil, fmt.Errorf("deviceLocked: %v", err)
	}
	st, err := readEnum(&f)
	if err != nil {
		return nil, fmt.Errorf("verifiedBootState: %v", err)
	}
	rot.VerifiedBootState = VerifiedBootState(st)
	if !f.empty() {
		if rot.VerifiedBootHash, err = readOctets(&f); err != nil {
			return nil, fmt.Errorf("verifiedBootHash: %v", err)
		}
	}
	if !f.empty() {
		return nil, fmt.Errorf("%d bytes after verifiedBootHash", len(f.b))
	}
	return rot, nil
}

// parseApplicationID parses the DER inside attestationApplicationId.
func parseApplicationID(der []byte) (*AttestationApplicationID, error) {
	r := derReader{b: der}
	seq, err := r.expect(classUniversal, true, tagSequence)
	if err != nil {
		return nil, err
	}
	if !r.empty() {
		return nil, fmt.Errorf("%d bytes after the AttestationApplicationId", len(r.b))
	}
	f := derReader{b: seq.content}
	pkgs, err := f.expect(classUniversal, true, tagSet)
	if err != nil {
		return nil, fmt.Errorf("package_infos: %v", err)
	}
	id := &AttestationApplicationID{}
	p := derReader{b: pkgs.content}
	for !p.empty() {
		info, err := p.expect(classUniversal, true, tagSequence)
		if err != nil {
			return nil, fmt.Errorf("package_infos[%d]: %v", len(id.Packages), err)
		}
		pi := derReader{b: info.content}
		name, err := readOctets(&pi)
		if err != nil {
			return nil, fmt.Errorf("package_infos[%d].package_name: %v", len(id.Packages), err)
		}
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("package_infos[%d].package_name is not UTF-8", len(id.Packages))
		}
		version, err := readInt(&pi)
		if err != nil {
			return nil, fmt.Errorf("package_infos[%d].version: %v", len(id.Packages), err)
		}
		if !pi.empty() {
			return nil, fmt.Errorf("package_infos[%d]: %d bytes after the version", len(id.Packages), len(pi.b))
		}
		id.Packages = append(id.Packages, PackageInfo{Name: string(name), Version: version})
	}
	digests, err := f.expect(classUniversal, true, tagSet)
	if err != nil {
		return nil, fmt.Errorf("signature_digests: %v", err)
	}
	d := derReader{b: digests.content}
	for !d.empty() {
		b, err := readOctets(&d)
		if err != nil {
			return nil, fmt.Errorf("signature_digests[%d]: %v", len(id.SignatureDigests), err)
		}
		id.SignatureDigests = append(id.SignatureDigests, b)
	}
	if !f.empty() {
		return nil, fmt.Errorf("%d bytes after signature_digests", len(f.b))
	}
	return id, nil
}
