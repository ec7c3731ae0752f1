package tpm

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
)

// generatedValue is TPM_GENERATED_VALUE, the magic a TPM puts at the start of
// every TPMS_ATTEST it signs, and never at the start of data it signs for
// anyone else.
const generatedValue = 0xff544347

// maxStructure bounds every TPM structure keybind decodes. The largest
// legitimate one, an RSA-4096 TPMT_PUBLIC with a policy, is under 700 bytes.
const maxStructure = 4096

// ParsePublic decodes a TPMT_PUBLIC (go-attestation's Public fields, a
// WebAuthn pubArea) strictly: decoded by go-tpm, and encoding the result
// again must give back exactly the input. Only RSA and ECC keys are
// accepted, with their key material consistent with their parameters (an
// RSA modulus of the declared size, EC coordinates of the curve's size).
func ParsePublic(b []byte) (tpm2.Public, error) {
	if len(b) > maxStructure {
		return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC of %d bytes (at most %d)", len(b), maxStructure)
	}
	pub, err := tpm2.DecodePublic(b)
	if err != nil {
		return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC: %v", err)
	}
	if err := roundTrip(b, pub.Encode); err != nil {
		return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC: %v", err)
	}
	if _, err := pub.NameAlg.Hash(); err != nil {
		return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC: name algorithm: %v", err)
	}
	switch pub.Type {
	case tpm2.AlgRSA:
		p := pub.RSAParameters
		if int(p.KeyBits) != 8*len(p.ModulusRaw) || len(p.ModulusRaw) == 0 || p.ModulusRaw[0] == 0 {
			return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC: RSA modulus of %d bytes for a %d-bit key", len(p.ModulusRaw), p.KeyBits)
		}
	case tpm2.AlgECC:
		p := pub.ECCParameters
		if size, ok := curveBytes[p.CurveID]; ok && (len(p.Point.XRaw) != size || len(p.Point.YRaw) != size) {
			return tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPMT_PUBLIC: EC point of %d+%d bytes on a curve of %d-byte coordinates", len(p.Point.XRaw), len(p.Point.YRaw), size)
		}
	default:
		return tpm2.Public{}, attest.Errorf(CodeUnsupportedKey, "TPMT_PUBLIC of type %v: only RSA and ECC keys are attested", pub.Type)
	}
	return pub, nil
}

// curveBytes is the coordinate size of the curves Go implements.
var curveBytes = map[tpm2.EllipticCurve]int{
	tpm2.CurveNISTP224: 28,
	tpm2.CurveNISTP256: 32,
	tpm2.CurveNISTP384: 48,
	tpm2.CurveNISTP521: 66,
}

// ParsePublic2B decodes a TPM2B_PUBLIC (a TPMT_PUBLIC behind its 16-bit
// size, as tpm2_readpublic and TPM2_ReadPublic return it): the size must
// cover exactly the rest of the input. It returns the TPMT_PUBLIC bytes and
// their decoding.
func ParsePublic2B(b []byte) ([]byte, tpm2.Public, error) {
	if len(b) < 2 {
		return nil, tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPM2B_PUBLIC of %d bytes has no size", len(b))
	}
	if n := int(binary.BigEndian.Uint16(b)); n != len(b)-2 {
		return nil, tpm2.Public{}, attest.Errorf(CodeMalformedPublic, "TPM2B_PUBLIC says %d bytes and holds %d", n, len(b)-2)
	}
	pub, err := ParsePublic(b[2:])
	return b[2:], pub, err
}

// ParseAttestation decodes a TPMS_ATTEST (go-attestation's
// CreateAttestation, a WebAuthn certInfo) strictly. A structure whose magic
// is not TPM_GENERATED_VALUE is refused first, with tpm.bad_magic: the TPM
// never signs such a structure for itself. Only certify and creation
// attestations decode.
func ParseAttestation(b []byte) (*tpm2.AttestationData, error) {
	if len(b) > maxStructure {
		return nil, attest.Errorf(CodeMalformedAttestation, "TPMS_ATTEST of %d bytes (at most %d)", len(b), maxStructure)
	}
	if len(b) < 4 {
		return nil, attest.Errorf(CodeMalformedAttestation, "TPMS_ATTEST of %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != generatedValue {
		return nil, attest.Errorf(CodeBadMagic, "TPMS_ATTEST magic is %#08x, not TPM_GENERATED_VALUE", m)
	}
	att, err := tpm2.DecodeAttestationData(b)
	if err != nil {
		return nil, attest.Errorf(CodeMalformedAttestation, "TPMS_ATTEST: %v", err)
	}
	if att.Type != tpm2.TagAttestCertify && att.Type != tpm2.TagAttestCreation {
		return nil, attest.Errorf(CodeAttestationType, "TPMS_ATTEST of type %#04x: neither a certify nor a creation attestation", uint16(att.Type))
	}
	if err := roundTrip(b, att.Encode); err != nil {
		return nil, attest.Errorf(CodeMalformedAttestation, "TPMS_ATTEST: %v", err)
	}
	return att, nil
}

// ParseSignature decodes a TPMT_SIGNATURE (go-attestation's CreateSignature)
// strictly: RSASSA, RSAPSS or ECDSA, with nothing after it.
func ParseSignature(b []byte) (*tpm2.Signature, error) {
	if len(b) > maxStructure {
		return nil, attest.Errorf(CodeMalformedSignature, "TPMT_SIGNATURE of %d bytes (at most %d)", len(b), maxStructure)
	}
	buf := bytes.NewBuffer(b)
	sig, err := tpm2.DecodeSignature(buf)
	if err != nil {
		return nil, attest.Errorf(CodeMalformedSignature, "TPMT_SIGNATURE: %v", err)
	}
	if buf.Len() != 0 {
		return nil, attest.Errorf(CodeMalformedSignature, "TPMT_SIGNATURE: %d bytes after the structure", buf.Len())
	}
	return sig, nil
}

// ParseCreationData decodes a TPMS_CREATION_DATA (go-attestation's
// CreateData of an AK) strictly.
func ParseCreationData(b []byte) (*tpm2.CreationData, error) {
	if len(b) > maxStructure {
		return nil, attest.Errorf(CodeMalformedCreationData, "TPMS_CREATION_DATA of %d bytes (at most %d)", len(b), maxStructure)
	}
	cd, err := tpm2.DecodeCreationData(b)
	if err != nil {
		return nil, attest.Errorf(CodeMalformedCreationData, "TPMS_CREATION_DATA: %v", err)
	}
	if err := roundTrip(b, cd.EncodeCreationData); err != nil {
		return nil, attest.Errorf(CodeMalformedCreationData, "TPMS_CREATION_DATA: %v", err)
	}
	return cd, nil
}

// roundTrip checks that encoding a decoded structure gives back the input,
// which go-tpm's decoders do not: they ignore trailing bytes, and read a
// short digest inside a name without complaint.
func roundTrip(in []byte, encode func() ([]byte, error)) error {
	out, err := encode()
	if err != nil {
		return fmt.Errorf("does not encode again: %v", err)
	}
	if len(out) < len(in) && bytes.Equal(out, in[:len(out)]) {
		return fmt.Errorf("%d bytes after the structure", len(in)-len(out))
	}
	if !bytes.Equal(out, in) {
		return fmt.Errorf("not the canonical encoding of its content (truncated or padded field)")
	}
	return nil
}
