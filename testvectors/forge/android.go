package forge

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keybind/keybind/attest/androidkey"
)

// Android Key Attestation chains.
//
// A phone simulator makes an attested key in two calls:
//
//	ca, _ := forge.NewAndroidCA(forge.AndroidCAOptions{})          // a factory-provisioned device
//	att, _ := ca.Attest(forge.AndroidKey{Challenge: c, UserAuth: true, Package: "com.example"})
//	// att.Key signs sign-ins; att.Chain (leaf first) is what the app sends;
//	// ca.Roots() (or ca.RootPEM()) is what the verifier must trust.

// AndroidShape is the shape of the chain above the attestation key.
type AndroidShape int

const (
	// FactoryShape: root → intermediate CA → batch certificate → leaf. The
	// batch certificate, like those of real OEM chains, carries no basic
	// constraints at all (crypto/x509's Verify refuses such chains).
	FactoryShape AndroidShape = iota
	// RemoteShape: root → "Droid CA2" → "Droid CA3" → short-lived
	// attestation key certificate carrying the provisioning-info extension
	// → leaf, as Google's remote key provisioning issues them.
	RemoteShape
)

// AndroidRoot is a test root for Android chains (an EC P-384 key, like
// Google's "Key Attestation CA1").
type AndroidRoot struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewAndroidRoot makes a self-signed root valid from 5 years before t to
// 20 years after (t zero: now).
func NewAndroidRoot(name string, t time.Time) (*AndroidRoot, error) {
	if t.IsZero() {
		t = time.Now()
	}
	if name == "" {
		name = "Keybind Test Android Attestation Root"
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Keybind Test"}},
		NotBefore:             t.AddDate(-5, 0, 0),
		NotAfter:              t.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &AndroidRoot{Cert: cert, Key: key}, nil
}

// PEM returns the root certificate as PEM, for a caller to trust it.
func (r *AndroidRoot) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Cert.Raw})
}

// Roots returns a trust store holding only this root.
func (r *AndroidRoot) Roots() *androidkey.Roots { return androidkey.NewRoots(r.Cert) }

// AndroidCAOptions shape the certificates above a device's attested keys.
type AndroidCAOptions struct {
	Shape AndroidShape
	// Time is when the certificates are issued (zero: now). Factory
	// certificates are valid from a year before to nine years after;
	// remote ones are short-lived: "Droid CA3" from 7 days before to 63
	// days after, the attestation key from a day before to 13 days after.
	Time time.Time
	// Level names the secure hardware in the certificates' subjects
	// ("tee" or "strongbox"; default "tee").
	Level string
	// ProvisioningInfo is the CBOR of the remote attestation key's
	// provisioning-info extension (nil: {1: 8, 3: "Keybind Test"}).
	ProvisioningInfo []byte
	// Edit, when set, may change each intermediate's template before it
	// is signed (validity, extensions, constraints, names): depth 0 is the
	// certificate that signs leaves, the highest depth the one the root
	// signs.
	Edit func(depth int, tmpl *x509.Certificate)
}

// AndroidCA is the chain above a device's attested keys: a root and the
// intermediates down to the attestation key that signs leaves.
type AndroidCA struct {
	Root  *AndroidRoot
	Shape AndroidShape
	// Intermediates, the attestation key's certificate first and the one
	// the root signed last.
	Intermediates []*x509.Certificate
	// Time is when the certificates were issued.
	Time time.Time

	attestKey crypto.Signer
}

// NewAndroidCA makes a new root and the chain below it.
func NewAndroidCA(opts AndroidCAOptions) (*AndroidCA, error) {
	root, err := NewAndroidRoot("", opts.Time)
	if err != nil {
		return nil, err
	}
	return root.NewCA(opts)
}

// NewCA makes the chain of one device below the root.
func (r *AndroidRoot) NewCA(opts AndroidCAOptions) (*AndroidCA, error) {
	t := opts.Time
	if t.IsZero() {
		t = time.Now()
	}
	title := "TEE"
	switch opts.Level {
	case "", "tee":
	case "strongbox":
		title = "StrongBox"
	default:
		return nil, fmt.Errorf("forge: unknown level %q for a CA (tee or strongbox)", opts.Level)
	}
	ca := &AndroidCA{Root: r, Shape: opts.Shape, Time: t}
	parent, parentKey := r.Cert, r.Key
	type step struct {
		tmpl *x509.Certificate
		key  crypto.Signer
	}
	var steps []step
	switch opts.Shape {
	case FactoryShape:
		interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		batchKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		steps = []step{
			{&x509.Certificate{
				Subject:               titledName(title),
				NotBefore:             t.AddDate(-1, 0, 0),
				NotAfter:              t.AddDate(9, 0, 0),
				KeyUsage:              x509.KeyUsageCertSign,
				BasicConstraintsValid: true,
				IsCA:                  true,
			}, interKey},
			{&x509.Certificate{
				// A batch certificate: no basic constraints at all.
				Subject:   titledName(title),
				NotBefore: t.AddDate(-1, 0, 0),
				NotAfter:  t.AddDate(9, 0, 0),
				KeyUsage:  x509.KeyUsageCertSign,
			}, batchKey},
		}
	case RemoteShape:
		ca2Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		ca3Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		info := opts.ProvisioningInfo
		if info == nil {
			info, err = cbor.Marshal(struct {
				CertificatesIssued int    `cbor:"1,keyasint"`
				Manufacturer       string `cbor:"3,keyasint"`
			}{8, "Keybind Test"})
			if err != nil {
				return nil, err
			}
		}
		serial := randomSerial()
		steps = []step{
			{&x509.Certificate{
				Subject:               pkix.Name{Organization: []string{"Keybind Test"}, CommonName: "Droid CA2"},
				NotBefore:             t.AddDate(-1, 0, 0),
				NotAfter:              t.AddDate(10, 0, 0),
				KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
				BasicConstraintsValid: true,
				IsCA:                  true,
				MaxPathLen:            2,
			}, ca2Key},
			{&x509.Certificate{
				Subject:               pkix.Name{Organization: []string{"Keybind Test"}, CommonName: "Droid CA3"},
				NotBefore:             t.AddDate(0, 0, -7),
				NotAfter:              t.AddDate(0, 0, 63),
				KeyUsage:              x509.KeyUsageCertSign,
				BasicConstraintsValid: true,
				IsCA:                  true,
			}, ca3Key},
			{&x509.Certificate{
				SerialNumber:          serial,
				Subject:               pkix.Name{Organization: []string{title}, CommonName: serial.Text(16)},
				NotBefore:             t.AddDate(0, 0, -1),
				NotAfter:              t.AddDate(0, 0, 13),
				KeyUsage:              x509.KeyUsageCertSign,
				BasicConstraintsValid: true,
				IsCA:                  true,
				ExtraExtensions:       []pkix.Extension{{Id: androidkey.OIDProvisioningInfo, Value: info}},
			}, attKey},
		}
	default:
		return nil, fmt.Errorf("forge: unknown chain shape %d", opts.Shape)
	}
	for i, s := range steps {
		if s.tmpl.SerialNumber == nil {
			s.tmpl.SerialNumber = randomSerial()
		}
		if opts.Edit != nil {
			opts.Edit(len(steps)-1-i, s.tmpl)
		}
		cert, err := create(s.tmpl, parent, s.key.Public(), parentKey)
		if err != nil {
			return nil, err
		}
		ca.Intermediates = append([]*x509.Certificate{cert}, ca.Intermediates...)
		parent, parentKey = cert, s.key
	}
	ca.attestKey = parentKey
	return ca, nil
}

func titledName(title string) pkix.Name {
	return pkix.Name{
		SerialNumber: hex.EncodeToString(randomSerial().Bytes()[:8]),
		ExtraNames:   []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 12}, Value: title}},
	}
}

// RootPEM returns the root certificate as PEM.
func (ca *AndroidCA) RootPEM() []byte { return ca.Root.PEM() }

// Roots returns a trust store holding only the CA's root.
func (ca *AndroidCA) Roots() *androidkey.Roots { return ca.Root.Roots() }

// AndroidKey describes a key to make and attest. The zero value is a
// P-256 signing key in a TEE, generated on a verified, locked device, usable
// without user authentication, for the package "com.keybind.test".
type AndroidKey struct {
	// Challenge is the attestation challenge.
	Challenge []byte
	// Level is "tee" (default), "strongbox" or "software".
	Level string
	// Algorithm is "ecdsa-p256" (default), "ecdsa-p384", "ecdsa-p521",
	// "rsa-2048", "ed25519", or "ml-dsa-65" (a key keybind cannot use:
	// random bytes under ML-DSA's identifier, and no private key).
	Algorithm string
	// UserAuth makes the key usable only after the person authenticates
	// with a PIN or a biometric, for every use (userAuthType password |
	// fingerprint, no noAuthRequired).
	UserAuth bool
	// Package is the app's package name (default "com.keybind.test");
	// Packages, when given, replaces it with the full list.
	Package  string
	Packages []androidkey.PackageInfo
	// SigningDigests are the app's signing certificate digests (default:
	// SHA-256 of "keybind test app signing certificate").
	SigningDigests [][]byte
	// Version is the attestation version (default 300, KeyMint 3); the
	// KeyMint version follows it (Keymaster 2, 3, 4, 4.1 for versions 1 to
	// 4).
	Version int64
	// BootState is the verified boot state (zero: Verified); Unlocked
	// marks the bootloader unlocked.
	BootState androidkey.VerifiedBootState
	Unlocked  bool
	// OSPatchLevel is YYYYMM (default 202509).
	OSPatchLevel int64
	// Created is the key's creation time (zero: the CA's time).
	Created time.Time
	// Edit, when set, changes the description before it is encoded: any
	// field, the order of tags (set Tags), unknown tags (append to
	// Unknown).
	Edit func(*androidkey.KeyDescription)
	// Extension, when not nil, is used as the extension's value instead of
	// the encoded description (to make malformed ones); NoExtension leaves
	// the extension out.
	Extension   []byte
	NoExtension bool
}

// AndroidAttestation is an attested key.
type AndroidAttestation struct {
	// Key is the attested private key (nil for "ml-dsa-65").
	Key crypto.Signer
	// Leaf is the attested key's certificate.
	Leaf *x509.Certificate
	// Chain is the chain as an app sends it: leaf first, root last.
	Chain [][]byte
	// Description is what the leaf's extension encodes (nil when
	// AndroidKey.Extension or NoExtension replaced it).
	Description *androidkey.KeyDescription
}

// ChainPEM returns the chain as one PEM file, leaf first.
func (a *AndroidAttestation) ChainPEM() []byte {
	var b bytes.Buffer
	for _, c := range a.Chain {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c})
	}
	return b.Bytes()
}

// WithoutRoot returns the chain without its last certificate (apps may
// send it either way).
func (a *AndroidAttestation) WithoutRoot() [][]byte { return a.Chain[:len(a.Chain)-1] }

// Attest makes a key as k describes and its attestation chain.
func (ca *AndroidCA) Attest(k AndroidKey) (*AndroidAttestation, error) {
	chain := make([][]byte, 0, len(ca.Intermediates)+2)
	for _, c := range ca.Intermediates {
		chain = append(chain, c.Raw)
	}
	chain = append(chain, ca.Root.Cert.Raw)
	return makeAttestation(k, ca.Time, ca.Intermediates[0], ca.attestKey, chain)
}

// Below forges the attack that verifiers must refuse: a new attested key
// whose certificate is signed by this attested key, so that the chain
// continues below a genuine leaf.
func (a *AndroidAttestation) Below(k AndroidKey) (*AndroidAttestation, error) {
	if a.Key == nil {
		return nil, errors.New("forge: this attestation has no private key")
	}
	return makeAttestation(k, a.Leaf.NotBefore, a.Leaf, a.Key, a.Chain)
}

func makeAttestation(k AndroidKey, caTime time.Time, parent *x509.Certificate, parentKey crypto.Signer, above [][]byte) (*AndroidAttestation, error) {
	if k.Created.IsZero() {
		k.Created = caTime
	}
	key, pub, err := newKey(k.Algorithm)
	if err != nil {
		return nil, err
	}
	kd, err := describe(k, pub)
	if err != nil {
		return nil, err
	}
	if k.Edit != nil {
		k.Edit(kd)
	}
	ext := k.Extension
	if ext == nil && !k.NoExtension {
		if ext, err = EncodeKeyDescription(kd); err != nil {
			return nil, err
		}
	}
	if k.Extension != nil || k.NoExtension {
		kd = nil
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Android Keystore Key"},
		NotBefore:    time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2048, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if !k.NoExtension {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: androidkey.OIDKeyDescription, Value: ext}}
	}
	var leaf *x509.Certificate
	if spki, ok := pub.(rawSPKI); ok {
		// crypto/x509 cannot write a key it does not know: make the
		// certificate with a stand-in key, then swap the key in and sign
		// again.
		stand, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c, err := create(tmpl, parent, stand.Public(), parentKey)
		if err != nil {
			return nil, err
		}
		der, err := ReplaceSPKI(c.Raw, spki, parentKey)
		if err != nil {
			return nil, err
		}
		if leaf, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
	} else if leaf, err = create(tmpl, parent, pub, parentKey); err != nil {
		return nil, err
	}
	return &AndroidAttestation{
		Key:         key,
		Leaf:        leaf,
		Chain:       append([][]byte{leaf.Raw}, above...),
		Description: kd,
	}, nil
}

// rawSPKI is the DER SubjectPublicKeyInfo of a key crypto/x509 cannot
// marshal.
type rawSPKI []byte

// OIDMLDSA65 identifies ML-DSA-65 public keys.
var OIDMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}

func newKey(alg string) (crypto.Signer, crypto.PublicKey, error) {
	var k crypto.Signer
	var err error
	switch alg {
	case "", "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ecdsa-p521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "ml-dsa-65":
		key := make([]byte, 1952)
		if _, err := rand.Read(key); err != nil {
			return nil, nil, err
		}
		spki, err := asn1.Marshal(struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}{pkix.AlgorithmIdentifier{Algorithm: OIDMLDSA65}, asn1.BitString{Bytes: key, BitLength: len(key) * 8}})
		return nil, rawSPKI(spki), err
	default:
		return nil, nil, fmt.Errorf("forge: unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, err
	}
	return k, k.Public(), nil
}

// AndroidDefaultSigningDigest is the signing certificate digest of AndroidKey's
// default app.
var AndroidDefaultSigningDigest = func() []byte {
	d := sha256.Sum256([]byte("keybind test app signing certificate"))
	return d[:]
}()

// AndroidDefaultPackage is AndroidKey's default package name.
const AndroidDefaultPackage = "com.keybind.test"

// describe builds the KeyDescription a real KeyMint would write for k.
func describe(k AndroidKey, pub crypto.PublicKey) (*androidkey.KeyDescription, error) {
	level := androidkey.TrustedEnvironment
	if k.Level != "" {
		var err error
		if level, err = androidkey.ParseSecurityLevel(k.Level); err != nil {
			return nil, fmt.Errorf("forge: %v", err)
		}
	}
	version := k.Version
	if version == 0 {
		version = 300
	}
	kmVersion := version
	if v, ok := map[int64]int64{1: 2, 2: 3, 3: 4, 4: 41}[version]; ok {
		kmVersion = v
	}
	patch := k.OSPatchLevel
	if patch == 0 {
		patch = 202509
	}
	i64 := func(v int64) *int64 { return &v }

	hw := androidkey.AuthorizationList{
		Purpose:      []androidkey.Purpose{androidkey.PurposeSign, androidkey.PurposeVerify},
		Digest:       []int64{4}, // SHA-256
		OSVersion:    i64(160000),
		OSPatchLevel: i64(patch),
		// Vendor and boot patch levels are YYYYMMDD.
		VendorPatchLevel: i64(patch*100 + 1),
		BootPatchLevel:   i64(patch*100 + 1),
	}
	alg := androidkey.AlgorithmEC
	var curve *androidkey.Curve
	var size int64
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		c := map[string]androidkey.Curve{"P-256": androidkey.CurveP256, "P-384": androidkey.CurveP384, "P-521": androidkey.CurveP521}[p.Curve.Params().Name]
		curve, size = &c, int64(p.Curve.Params().BitSize)
	case ed25519.PublicKey:
		c := androidkey.CurveCurve25519
		curve, size = &c, 256
	case *rsa.PublicKey:
		alg, size = androidkey.AlgorithmRSA, int64(p.N.BitLen())
		hw.RSAPublicExponent = i64(int64(p.E))
		hw.Padding = []int64{5} // RSA_PKCS1_1_5_SIGN
	case rawSPKI:
		// An algorithm keybind does not know: no algorithm tag.
	}
	if _, unknown := pub.(rawSPKI); !unknown {
		hw.Algorithm, hw.KeySize, hw.ECCurve = &alg, &size, curve
	}
	if k.UserAuth {
		t := androidkey.AuthPassword | androidkey.AuthFingerprint
		hw.UserAuthType = &t
	} else {
		hw.NoAuthRequired = true
	}
	origin := androidkey.OriginGenerated
	hw.Origin = &origin
	bootKey := sha256.Sum256([]byte("keybind test verified boot key"))
	bootHash := sha256.Sum256([]byte("keybind test verified boot hash"))
	hw.RootOfTrust = &androidkey.RootOfTrust{
		VerifiedBootKey:   bootKey[:],
		DeviceLocked:      !k.Unlocked,
		VerifiedBootState: k.BootState,
	}
	if version >= 3 {
		hw.RootOfTrust.VerifiedBootHash = bootHash[:]
	}

	pkgs := k.Packages
	if pkgs == nil {
		name := k.Package
		if name == "" {
			name = AndroidDefaultPackage
		}
		pkgs = []androidkey.PackageInfo{{Name: name, Version: 1}}
	}
	digests := k.SigningDigests
	if digests == nil {
		digests = [][]byte{AndroidDefaultSigningDigest}
	}
	sw := androidkey.AuthorizationList{
		CreationDateTime:         i64(k.Created.UnixMilli()),
		AttestationApplicationID: &androidkey.AttestationApplicationID{Packages: pkgs, SignatureDigests: digests},
	}
	if level == androidkey.Software {
		// A software implementation enforces everything itself.
		hw.CreationDateTime, hw.AttestationApplicationID = sw.CreationDateTime, sw.AttestationApplicationID
		sw, hw = hw, androidkey.AuthorizationList{}
	}
	return &androidkey.KeyDescription{
		AttestationVersion:       version,
		AttestationSecurityLevel: level,
		KeyMintVersion:           kmVersion,
		KeyMintSecurityLevel:     level,
		AttestationChallenge:     k.Challenge,
		UniqueID:                 []byte{},
		SoftwareEnforced:         sw,
		HardwareEnforced:         hw,
	}, nil
}

// AndroidStatusEntry is one entry of a forged revocation status list.
type AndroidStatusEntry struct {
	Serial *big.Int
	Status string // "REVOKED" or "SUSPENDED"
	Reason string // "KEY_COMPROMISE", …
}

// AndroidStatusList returns a status list in Google's JSON format.
func AndroidStatusList(entries ...AndroidStatusEntry) []byte {
	type entry struct {
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	}
	m := map[string]entry{}
	for _, e := range entries {
		m[e.Serial.Text(16)] = entry{e.Status, e.Reason}
	}
	b, err := json.MarshalIndent(map[string]any{"entries": m}, "", "  ")
	if err != nil {
		panic(err) // strings only
	}
	return append(b, '\n')
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	b[0] |= 0x10 // 16 significant bytes, positive
	return new(big.Int).SetBytes(b)
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	return x509.ParseCertificate(der)
}

// ReplaceSPKI returns the certificate der with its SubjectPublicKeyInfo
// replaced by spki, signed again by signer (which must hold the key of the
// certificate's issuer; ECDSA or Ed25519, as the certificate's signature
// algorithm says).
func ReplaceSPKI(der, spki []byte, signer crypto.Signer) ([]byte, error) {
	return Resign(der, signer, func(fields []asn1.RawValue) ([]asn1.RawValue, error) {
		i := 5 // serial, signature, issuer, validity, subject, spki
		if len(fields) > 0 && fields[0].Class == asn1.ClassContextSpecific && fields[0].Tag == 0 {
			i = 6
		}
		if len(fields) <= i {
			return nil, errors.New("forge: TBSCertificate too short")
		}
		fields[i] = asn1.RawValue{FullBytes: spki}
		return fields, nil
	})
}

// Resign lets edit change the fields of a certificate's TBSCertificate
// (each as its DER), then signs the result again with signer, keeping the
// signature algorithm.
func Resign(der []byte, signer crypto.Signer, edit func([]asn1.RawValue) ([]asn1.RawValue, error)) ([]byte, error) {
	var cert struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	var fields []asn1.RawValue
	rest := cert.TBS.Bytes
	for len(rest) > 0 {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
		fields = append(fields, f)
	}
	fields, err := edit(fields)
	if err != nil {
		return nil, err
	}
	var body []byte
	for _, f := range fields {
		body = append(body, f.FullBytes...)
	}
	tbs, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	var sig []byte
	if _, ok := signer.Public().(ed25519.PublicKey); ok {
		sig, err = signer.Sign(rand.Reader, tbs, crypto.Hash(0))
	} else {
		h := hashFor(cert.Algorithm.Algorithm)
		d := h.New()
		d.Write(tbs)
		sig, err = signer.Sign(rand.Reader, d.Sum(nil), h)
	}
	if err != nil {
		return nil, err
	}
	cert.TBS = asn1.RawValue{FullBytes: tbs}
	cert.Signature = asn1.BitString{Bytes: sig, BitLength: len(sig) * 8}
	return asn1.Marshal(cert)
}

func hashFor(sigAlg asn1.ObjectIdentifier) crypto.Hash {
	switch {
	case sigAlg.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}), sigAlg.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}):
		return crypto.SHA384
	case sigAlg.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}), sigAlg.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}):
		return crypto.SHA512
	}
	return crypto.SHA256
}
