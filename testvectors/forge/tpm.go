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
	"fmt"
	"math/big"
	"time"
)

// TPMCA is a test certificate authority for TPM certificates, a root and the
// intermediate that issues: an EK CA standing for a TPM vendor, or an AIK CA
// standing for Microsoft's TPM root. No production trust store holds it.
type TPMCA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	rootKey      *ecdsa.PrivateKey
	intKey       *ecdsa.PrivateKey
}

// TPMDevice names a TPM in the subject alternative name of its EK and AIK
// certificates (TCG EK credential profile).
type TPMDevice struct {
	Manufacturer string // "id:" and the TCG vendor id in hex
	Model        string
	Version      string // "id:" and the firmware version in hex
}

// SimulatorDevice is how the TCG reference simulator names itself.
var SimulatorDevice = TPMDevice{Manufacturer: "id:4D534654", Model: "TPM Simulator", Version: "id:20191023"}

// TCG and FIDO object identifiers of TPM certificates.
var (
	oidTCGManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTCGModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTCGVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	oidTCGEKCert       = asn1.ObjectIdentifier{2, 23, 133, 8, 1}
	// OIDTCGAIKCert is tcg-kp-AIKCertificate, the extended key usage of an
	// AIK certificate.
	OIDTCGAIKCert = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	oidSAN        = asn1.ObjectIdentifier{2, 5, 29, 17}
	// OIDFIDOAAGUID is id-fido-gen-ce-aaguid, the extension that names the
	// authenticator model in attestation certificates.
	OIDFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}
)

// NewTPMCA makes a test TPM CA named name, valid from notBefore to notAfter.
func NewTPMCA(name string, notBefore, notAfter time.Time) (*TPMCA, error) {
	ca := &TPMCA{}
	var err error
	if ca.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if ca.intKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: tpmSerial(), Subject: pkix.Name{CommonName: name + " Root CA", Organization: []string{"keybind test"}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &ca.rootKey.PublicKey, ca.rootKey)
	if err != nil {
		return nil, err
	}
	if ca.Root, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	intTmpl := &x509.Certificate{
		SerialNumber: tpmSerial(), Subject: pkix.Name{CommonName: name + " Issuing CA", Organization: []string{"keybind test"}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	if der, err = x509.CreateCertificate(rand.Reader, intTmpl, ca.Root, &ca.intKey.PublicKey, ca.rootKey); err != nil {
		return nil, err
	}
	if ca.Intermediate, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return ca, nil
}

// EKCertificate issues an EK certificate for key in the shape of the TCG EK
// credential profile: empty subject, a critical subject alternative name
// naming the TPM, the tcg-kp-EKCertificate extended key usage.
func (ca *TPMCA) EKCertificate(key crypto.PublicKey, dev TPMDevice, notBefore, notAfter time.Time) ([]byte, error) {
	san, err := tpmSAN(dev)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: tpmSerial(), NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageKeyEncipherment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidTCGEKCert},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidSAN, Critical: true, Value: san}},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key, ca.intKey)
}

// AIKProfile describes an AIK certificate. The zero value (with a device)
// is a certificate as the WebAuthn "tpm" format requires it; each other
// field breaks one requirement, for the vectors that must be refused.
type AIKProfile struct {
	Device              TPMDevice
	NotBefore, NotAfter time.Time
	// AAGUID, when set, adds the id-fido-gen-ce-aaguid extension.
	AAGUID []byte
	// Subject, when set, gives the certificate a subject (WebAuthn wants
	// it empty).
	Subject pkix.Name
	// NoAIKUsage leaves tcg-kp-AIKCertificate out of the extended key usage.
	NoAIKUsage bool
	// CA makes the certificate a CA.
	CA bool
	// NoSAN leaves the subject alternative name out.
	NoSAN bool
	// Version1 makes an X.509 version 1 certificate (no extensions at all).
	Version1 bool
}

// AIKCertificate issues an AIK certificate for key.
func (ca *TPMCA) AIKCertificate(key crypto.PublicKey, p AIKProfile) ([]byte, error) {
	if p.Version1 {
		return ca.version1(key, p)
	}
	tmpl := &x509.Certificate{
		SerialNumber: tpmSerial(), Subject: p.Subject, NotBefore: p.NotBefore, NotAfter: p.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: p.CA,
	}
	if !p.NoAIKUsage {
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDTCGAIKCert}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if !p.NoSAN {
		san, err := tpmSAN(p.Device)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSAN, Critical: len(p.Subject.Names) == 0 && p.Subject.CommonName == "", Value: san})
	}
	if p.AAGUID != nil {
		v, err := asn1.Marshal(p.AAGUID)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: OIDFIDOAAGUID, Value: v})
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key, ca.intKey)
}

// version1 builds and signs an X.509 version 1 certificate by hand (Go's
// x509 package makes only version 3).
func (ca *TPMCA) version1(key crypto.PublicKey, p AIKProfile) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, err
	}
	ecdsaSHA256 := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}
	type validity struct{ NotBefore, NotAfter time.Time }
	tbs, err := asn1.Marshal(struct {
		Serial    *big.Int
		Algorithm pkix.AlgorithmIdentifier
		Issuer    asn1.RawValue
		Validity  validity
		Subject   asn1.RawValue
		SPKI      asn1.RawValue
	}{
		tpmSerial(), ecdsaSHA256, asn1.RawValue{FullBytes: ca.Intermediate.RawSubject},
		validity{p.NotBefore.UTC(), p.NotAfter.UTC()},
		asn1.RawValue{FullBytes: []byte{0x30, 0x00}}, asn1.RawValue{FullBytes: spki},
	})
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, ca.intKey, digest[:])
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, ecdsaSHA256, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// tpmSAN encodes a subject alternative name holding one directoryName with
// the TPM's manufacturer, model and version.
func tpmSAN(d TPMDevice) ([]byte, error) {
	name, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oidTCGManufacturer, Value: d.Manufacturer}},
		{{Type: oidTCGModel, Value: d.Model}},
		{{Type: oidTCGVersion, Value: d.Version}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
}

func tpmSerial() *big.Int {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("forge: reading randomness: %v", err))
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}
