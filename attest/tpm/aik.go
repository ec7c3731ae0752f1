package tpm

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/keybind/keybind/attest"
)

// OIDs of the TCG certificate profiles.
var (
	// OIDAIKCertificate is tcg-kp-AIKCertificate, the extended key usage of
	// an attestation key certificate.
	OIDAIKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	// OIDSubjectAltName is the subject alternative name extension, which a
	// TPM certificate marks critical when its subject is empty, and which
	// holds only a directoryName that crypto/x509 does not read.
	OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

	oidTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTPMModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTPMVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
)

// Device is what a TPM certificate's subject alternative name says about the
// TPM (TCG EK credential profile, "Subject Alternative Name").
type Device struct {
	Manufacturer string // "id:" and the TCG vendor id in hex, such as "id:49465800"
	Model        string
	Version      string // "id:" and the firmware version in hex
}

// CheckAIKCertificate checks the TCG profile of an attestation key (AIK)
// certificate, one check and one code each: X.509 version 3, the
// tcg-kp-AIKCertificate extended key usage, basic constraints present with
// CA false, and a subject alternative name naming the TPM. It returns what
// the certificate says about the TPM.
func CheckAIKCertificate(c *x509.Certificate) (Device, error) {
	if c.Version != 3 {
		return Device{}, attest.Errorf(CodeAIKVersion, "AIK certificate of X.509 version %d, not 3", c.Version)
	}
	found := false
	for _, oid := range c.UnknownExtKeyUsage {
		found = found || oid.Equal(OIDAIKCertificate)
	}
	if !found {
		return Device{}, attest.Errorf(CodeAIKExtKeyUsage, "AIK certificate without the extended key usage tcg-kp-AIKCertificate (%v)", OIDAIKCertificate)
	}
	if !c.BasicConstraintsValid || c.IsCA {
		return Device{}, attest.Errorf(CodeAIKBasicConstraints, "AIK certificate without basic constraints CA false")
	}
	var san []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDSubjectAltName) {
			san = e.Value
		}
	}
	if san == nil {
		return Device{}, attest.Errorf(CodeAIKSubjectAltName, "AIK certificate without a subject alternative name")
	}
	d, err := parseDeviceSAN(san)
	if err != nil {
		return Device{}, attest.Errorf(CodeAIKSubjectAltName, "AIK certificate: %v", err)
	}
	return d, nil
}

// parseDeviceSAN reads the TPM manufacturer, model and version from the
// directoryName of a subject alternative name (GeneralNames).
func parseDeviceSAN(ext []byte) (Device, error) {
	var names []asn1.RawValue
	rest, err := asn1.Unmarshal(ext, &names)
	if err != nil || len(rest) != 0 {
		return Device{}, fmt.Errorf("subject alternative name does not decode")
	}
	var d Device
	for _, n := range names {
		// directoryName [4] Name, explicitly tagged (Name is a CHOICE).
		if n.Class != asn1.ClassContextSpecific || n.Tag != 4 || !n.IsCompound {
			continue
		}
		var rdns pkix.RDNSequence
		rest, err := asn1.Unmarshal(n.Bytes, &rdns)
		if err != nil || len(rest) != 0 {
			return Device{}, fmt.Errorf("directoryName of the subject alternative name does not decode")
		}
		for _, set := range rdns {
			for _, atv := range set {
				v, ok := atv.Value.(string)
				if !ok {
					continue
				}
				switch {
				case atv.Type.Equal(oidTPMManufacturer):
					d.Manufacturer = v
				case atv.Type.Equal(oidTPMModel):
					d.Model = v
				case atv.Type.Equal(oidTPMVersion):
					d.Version = v
				}
			}
		}
	}
	if d.Manufacturer == "" || d.Model == "" || d.Version == "" {
		return Device{}, fmt.Errorf("subject alternative name does not name the TPM's manufacturer, model and version")
	}
	return d, nil
}
