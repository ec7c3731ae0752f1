package forge

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// App Attest, as an iPhone makes it: the Secure Enclave key's attestation
// object (CBOR {fmt, attStmt {x5c, receipt}, authData}) with a credential
// certificate issued by an intermediate under a root, and the assertions the
// key signs afterwards. A phone simulator does:
//
//	ca, _ := forge.NewAppAttestCA(time.Now())
//	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
//	att, _ := ca.Attest(key, forge.AppAttestOptions{AppID: "TEAMID.com.example.app", ClientDataHash: h})
//	// send att.Object and att.KeyID; the server trusts ca.RootPEM()
//	as, _ := forge.AppAssert(key, forge.AppAssertOptions{AppID: "TEAMID.com.example.app", ClientData: cd, Counter: 1})
//	// send as.Marshal()

// Object identifiers App Attest uses in credential certificates.
var (
	oidAppAttestNonce     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}
	oidAppAttestOSVersion = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 7}
	// oidAppAttestKeyUsage is the extended key usage that Apple's credential
	// certificates carry since January 2026.
	oidAppAttestKeyUsage = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 24}
)

// AppAttestCA is a test certificate authority shaped like Apple's App
// Attest PKI: a self-signed P-384 root and a P-384 intermediate that issues
// credential certificates (signed with ECDSA-SHA256, as Apple's are).
type AppAttestCA struct {
	Root            *x509.Certificate
	RootKey         *ecdsa.PrivateKey
	Intermediate    *x509.Certificate
	IntermediateKey *ecdsa.PrivateKey
	// Now is the time the CA's certificates are made around: the root and
	// intermediate are valid from a year before it for years, credential
	// certificates for three days from an hour before it.
	Now time.Time
}

// NewAppAttestCA makes a root and an intermediate valid around now.
func NewAppAttestCA(now time.Time) (*AppAttestCA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          appAttestSerial(),
		Subject:               pkix.Name{CommonName: "keybind forge App Attestation Root CA", Organization: []string{"keybind forge (test only)"}},
		NotBefore:             now.Add(-365 * 24 * time.Hour),
		NotAfter:              now.Add(25 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &AppAttestCA{Root: root, RootKey: rootKey, Now: now}
	return ca.WithIntermediate(nil)
}

// WithIntermediate returns a CA with the same root and a new intermediate,
// made from the usual template after edit (when not nil) changed it: an
// intermediate that is not a CA, expired, and so on.
func (ca *AppAttestCA) WithIntermediate(edit func(tmpl *x509.Certificate)) (*AppAttestCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          appAttestSerial(),
		Subject:               pkix.Name{CommonName: "keybind forge App Attestation CA 1", Organization: []string{"keybind forge (test only)"}},
		NotBefore:             ca.Now.Add(-365 * 24 * time.Hour),
		NotAfter:              ca.Now.Add(10 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Root, &key.PublicKey, ca.RootKey)
	if err != nil {
		return nil, err
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &AppAttestCA{Root: ca.Root, RootKey: ca.RootKey, Intermediate: inter, IntermediateKey: key, Now: ca.Now}, nil
}

// RootPEM returns the root certificate as PEM, for a verifier to trust.
func (ca *AppAttestCA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})
}

// AppAttestExtensions are the values iOS 27 appends to the authenticator
// data as a CBOR map (without setting the ED flag).
type AppAttestExtensions struct {
	BundleVersion      string // apple_bundle_version_01, a text string
	ValidationCategory uint32 // apple_validation_category_01, 4 bytes little-endian
}

// encode returns the extension map as iOS 27 writes it.
func (e *AppAttestExtensions) encode() []byte {
	type extMap struct {
		BundleVersion string `cbor:"apple_bundle_version_01"`
		Category      []byte `cbor:"apple_validation_category_01"`
	}
	return appAttestCBOR(extMap{e.BundleVersion, binary.LittleEndian.AppendUint32(nil, e.ValidationCategory)})
}

// AppAttestOptions describe one attestation. The zero value of every field
// after Extensions is what a real device makes; those fields exist to make
// invalid attestations for tests.
type AppAttestOptions struct {
	AppID          string // "TEAMID.bundle.id"; its SHA-256 is the RP ID hash
	ClientDataHash []byte // what the app passes to attestKey
	Development    bool   // the development environment's AAGUID (else production)
	// KeyUsage gives the credential certificate the App Attest extended
	// key usage, as Apple's certificates carry it since 2026.
	KeyUsage bool
	// OSVersion, when not empty, is written in extension
	// 1.2.840.113635.100.8.7.
	OSVersion string
	// Extensions, when not nil, are appended to the authenticator data as
	// iOS 27 does.
	Extensions *AppAttestExtensions
	// Receipt is attStmt.receipt; nil means a placeholder (forged
	// attestations have no Apple receipt).
	Receipt []byte
	// NotBefore and NotAfter bound the credential certificate; zero means
	// the CA's clock minus an hour, and three days after that.
	NotBefore, NotAfter time.Time

	Counter        uint32           // authData counter (a valid attestation has 0)
	AAGUID         []byte           // nil: the environment's
	CredentialID   []byte           // nil: the key id
	CredentialKey  *ecdsa.PublicKey // the COSE key in authData; nil: the attested key
	CertificateKey crypto.PublicKey // the key in the credential certificate; nil: the attested key
	Trailing       []byte           // bytes appended to authData after the extensions
	// EditAuthData, when not nil, changes the finished authData before the
	// nonce is computed over it.
	EditAuthData func(authData []byte) []byte
	// NonceExtension replaces the DER value of the nonce extension
	// 1.2.840.113635.100.8.2; OmitNonce leaves the extension out.
	NonceExtension []byte
	OmitNonce      bool
	// EditLeaf changes the credential certificate's template before it is
	// signed; LeafSigner, when not nil, signs it instead of the
	// intermediate's key.
	EditLeaf   func(tmpl *x509.Certificate)
	LeafSigner crypto.Signer
}

// AppAttestObject holds the fields of an attestation object; Marshal
// encodes them. Tests change a field and marshal again.
type AppAttestObject struct {
	Fmt      string
	X5C      [][]byte
	Receipt  []byte
	AuthData []byte
}

// Marshal encodes the object as CBOR, with the keys in Apple's order.
func (o AppAttestObject) Marshal() []byte {
	type stmt struct {
		X5C     [][]byte `cbor:"x5c"`
		Receipt []byte   `cbor:"receipt"`
	}
	type object struct {
		Fmt      string `cbor:"fmt"`
		AttStmt  stmt   `cbor:"attStmt"`
		AuthData []byte `cbor:"authData"`
	}
	return appAttestCBOR(object{o.Fmt, stmt{o.X5C, o.Receipt}, o.AuthData})
}

// AppAttestation is a forged attestation.
type AppAttestation struct {
	AppAttestObject
	// Object is the encoded attestation object, as the app sends it.
	Object []byte
	// KeyID is the key id the app reports: SHA-256 of the key's
	// uncompressed point.
	KeyID []byte
	// Leaf is the credential certificate.
	Leaf *x509.Certificate
}

// AppAttestKeyID returns the key id of a key: SHA-256 of its uncompressed
// point.
func AppAttestKeyID(pub *ecdsa.PublicKey) []byte {
	p, err := pub.Bytes()
	if err != nil {
		panic(fmt.Sprintf("forge: %v", err))
	}
	h := sha256.Sum256(p)
	return h[:]
}

// Attest makes the attestation of key, a P-256 key, with the options.
func (ca *AppAttestCA) Attest(key *ecdsa.PrivateKey, opts AppAttestOptions) (*AppAttestation, error) {
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("forge: App Attest keys are P-256")
	}
	keyID := AppAttestKeyID(&key.PublicKey)

	rp := sha256.Sum256([]byte(opts.AppID))
	auth := append([]byte{}, rp[:]...)
	auth = append(auth, 0x40) // AT; App Attest sets nothing else
	auth = binary.BigEndian.AppendUint32(auth, opts.Counter)
	switch {
	case opts.AAGUID != nil:
		auth = append(auth, opts.AAGUID...)
	case opts.Development:
		auth = append(auth, "appattestdevelop"...)
	default:
		auth = append(auth, "appattest\x00\x00\x00\x00\x00\x00\x00"...)
	}
	credID := keyID
	if opts.CredentialID != nil {
		credID = opts.CredentialID
	}
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(credID)))
	auth = append(auth, credID...)
	coseKey := &key.PublicKey
	if opts.CredentialKey != nil {
		coseKey = opts.CredentialKey
	}
	auth = append(auth, appAttestCOSEKey(coseKey)...)
	if opts.Extensions != nil {
		auth = append(auth, opts.Extensions.encode()...)
	}
	auth = append(auth, opts.Trailing...)
	if opts.EditAuthData != nil {
		auth = opts.EditAuthData(auth)
	}

	h := sha256.New()
	h.Write(auth)
	h.Write(opts.ClientDataHash)
	nonceExt := append([]byte{0x30, 0x24, 0xa1, 0x22, 0x04, 0x20}, h.Sum(nil)...)
	if opts.NonceExtension != nil {
		nonceExt = opts.NonceExtension
	}

	notBefore, notAfter := opts.NotBefore, opts.NotAfter
	if notBefore.IsZero() {
		notBefore = ca.Now.Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(72 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: appAttestSerial(),
		Subject: pkix.Name{CommonName: hex.EncodeToString(keyID), OrganizationalUnit: []string{"AAA Certification"},
			Organization: []string{"keybind forge (test only)"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	if opts.KeyUsage {
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidAppAttestKeyUsage}
	}
	if opts.OSVersion != "" {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidAppAttestOSVersion, Value: appAttestOSVersion(opts.OSVersion)})
	}
	if !opts.OmitNonce {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidAppAttestNonce, Value: nonceExt})
	}
	if opts.EditLeaf != nil {
		opts.EditLeaf(tmpl)
	}
	var certKey crypto.PublicKey = &key.PublicKey
	if opts.CertificateKey != nil {
		certKey = opts.CertificateKey
	}
	var signer crypto.Signer = ca.IntermediateKey
	parent := ca.Intermediate
	if opts.LeafSigner != nil {
		// The intermediate's name with another key: the certificate names
		// its issuer as usual but its signature does not verify.
		signer = opts.LeafSigner
		p := *ca.Intermediate
		p.PublicKey = signer.Public()
		parent = &p
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, certKey, signer)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	receipt := opts.Receipt
	if receipt == nil {
		receipt = []byte("keybind forge: placeholder, not an Apple receipt")
	}
	o := AppAttestObject{Fmt: "apple-appattest", X5C: [][]byte{der, ca.Intermediate.Raw}, Receipt: receipt, AuthData: auth}
	return &AppAttestation{AppAttestObject: o, Object: o.Marshal(), KeyID: keyID, Leaf: leaf}, nil
}

// encodeCOSEKey encodes a P-256 key as the COSE_Key App Attest writes:
// {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
func appAttestCOSEKey(pub *ecdsa.PublicKey) []byte {
	p, err := pub.Bytes()
	if err != nil {
		panic(fmt.Sprintf("forge: %v", err))
	}
	type coseKey struct {
		Kty int    `cbor:"1,keyasint"`
		Alg int    `cbor:"3,keyasint"`
		Crv int    `cbor:"-1,keyasint"`
		X   []byte `cbor:"-2,keyasint"`
		Y   []byte `cbor:"-3,keyasint"`
	}
	return appAttestCBOR(coseKey{2, -7, 1, p[1:33], p[33:]})
}

// osVersionExtension encodes SEQUENCE { [1400] EXPLICIT OCTET STRING v }.
func appAttestOSVersion(v string) []byte {
	inner, err := asn1.Marshal([]byte(v))
	if err != nil {
		panic(err)
	}
	field, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1400, IsCompound: true, Bytes: inner})
	if err != nil {
		panic(err)
	}
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: field})
	if err != nil {
		panic(err)
	}
	return seq
}

// AppAssertOptions describe one assertion.
type AppAssertOptions struct {
	AppID      string // "TEAMID.bundle.id"; its SHA-256 is the RP ID hash
	ClientData []byte // the bytes the app signs (their SHA-256 is the clientDataHash)
	Counter    uint32 // the key's use counter, from 1
	// Extensions, when not nil, are appended to the authenticator data as
	// iOS 27 does.
	Extensions *AppAttestExtensions
	// HighS makes the signature's s the larger of its two valid values, as
	// the Secure Enclave sometimes does; otherwise s is the smaller one.
	HighS bool
	// EditAuthData, when not nil, changes the authenticator data before it
	// is signed.
	EditAuthData func(authData []byte) []byte
}

// AppAssertion is a forged assertion; Marshal encodes it.
type AppAssertion struct {
	Signature         []byte
	AuthenticatorData []byte
}

// Marshal encodes the assertion as CBOR {signature, authenticatorData}.
func (a AppAssertion) Marshal() []byte {
	type assertion struct {
		Signature         []byte `cbor:"signature"`
		AuthenticatorData []byte `cbor:"authenticatorData"`
	}
	return appAttestCBOR(assertion{a.Signature, a.AuthenticatorData})
}

// AppAssert signs an assertion with key, as DCAppAttestService's
// generateAssertion does: nonce = SHA-256(authenticatorData ‖
// SHA-256(clientData)), signed with ECDSA-SHA256 (which hashes the nonce
// once more).
func AppAssert(key *ecdsa.PrivateKey, opts AppAssertOptions) (AppAssertion, error) {
	rp := sha256.Sum256([]byte(opts.AppID))
	auth := append([]byte{}, rp[:]...)
	auth = append(auth, 0x40) // real assertions keep the AT flag of the key
	auth = binary.BigEndian.AppendUint32(auth, opts.Counter)
	if opts.Extensions != nil {
		auth = append(auth, opts.Extensions.encode()...)
	}
	if opts.EditAuthData != nil {
		auth = opts.EditAuthData(auth)
	}
	cdh := sha256.Sum256(opts.ClientData)
	nonce := sha256.Sum256(append(append([]byte{}, auth...), cdh[:]...))
	digest := sha256.Sum256(nonce[:])
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return AppAssertion{}, err
	}
	n := key.Curve.Params().N
	half := new(big.Int).Rsh(n, 1)
	if high := s.Cmp(half) > 0; high != opts.HighS {
		s.Sub(n, s)
	}
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		return AppAssertion{}, err
	}
	return AppAssertion{Signature: sig, AuthenticatorData: auth}, nil
}

func appAttestSerial() *big.Int {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}

func appAttestCBOR(v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("forge: %v", err))
	}
	return b
}
