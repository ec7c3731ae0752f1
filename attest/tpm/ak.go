package tpm

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
)

// AK is an attestation key the server trusts: enrolled by credential
// activation (Activation.Activate), vouched for by an AK certificate
// (AKFromCertificate), or loaded back from storage (ParseAK). Only an AK
// certifies sign-in keys (VerifyCertification). An AK is immutable.
type AK struct {
	public []byte // TPMT_PUBLIC
	pub    tpm2.Public
	key    crypto.PublicKey
	hash   crypto.Hash // of the AK's signing scheme
	ekHash []byte      // SHA-256 of the EK's SubjectPublicKeyInfo; nil when not enrolled
	root   string
}

// newAK checks that public is an attestation key: an RSA or ECC key of a
// secure size that never leaves the TPM (fixedTPM, fixedParent), was made by
// it (sensitiveDataOrigin), and signs only what the TPM produced itself
// (restricted, sign, with a signing scheme).
func newAK(public []byte, root string, ekHash []byte) (*AK, error) {
	pub, err := ParsePublic(public)
	if err != nil {
		return nil, err
	}
	if err := checkKeyStrength("AK", pub); err != nil {
		return nil, err
	}
	if err := checkAKAttributes(pub); err != nil {
		return nil, err
	}
	akp, err := goattest.ParseAKPublic(public)
	if err != nil {
		return nil, attest.Errorf(CodeAKInvalid, "%v", err)
	}
	return &AK{
		public: bytes.Clone(public), pub: pub, key: akp.Public, hash: akp.Hash,
		ekHash: bytes.Clone(ekHash), root: root,
	}, nil
}

func checkAKAttributes(pub tpm2.Public) error {
	a := pub.Attributes
	switch {
	case a&tpm2.FlagFixedTPM == 0:
		return attest.Errorf(CodeAKNotFixedTPM, "the AK is not fixedTPM: it can leave the TPM")
	case a&tpm2.FlagRestricted == 0 || a&tpm2.FlagSign == 0:
		return attest.Errorf(CodeAKNotRestricted, "the AK is not a restricted signing key: it could sign data the TPM did not produce")
	case a&tpm2.FlagFixedParent == 0:
		return attest.Errorf(CodeAKNotFixedParent, "the AK is not fixedParent: it can be duplicated")
	case a&tpm2.FlagSensitiveDataOrigin == 0:
		return attest.Errorf(CodeAKNotTPMGenerated, "the AK's sensitiveDataOrigin is clear: its private key came from outside the TPM")
	}
	return nil
}

// TrustedAK returns an AK the caller has established trust in by other means
// than this package (an enrollment kept elsewhere, a test TPM). root names
// what vouched for it, for verdicts. The key must still be an attestation
// key (see AK).
func TrustedAK(public []byte, root string) (*AK, error) {
	return newAK(public, root, nil)
}

// AKFromCertificate returns the AK that an AK (AIK) certificate vouches for:
// public is the AK's TPMT_PUBLIC, chain the certificate and its issuers,
// leaf first. The chain must verify under opts (roots, time), the
// certificate must meet the TCG AIK profile (CheckAIKCertificate), and
// certify exactly this key.
func AKFromCertificate(public []byte, chain [][]byte, opts ChainOptions) (*AK, error) {
	ak, err := newAK(public, "", nil)
	if err != nil {
		return nil, err
	}
	certs, err := ParseChain(chain, opts.Cache)
	if err != nil {
		return nil, err
	}
	opts.LeafCritical = append(opts.LeafCritical[:len(opts.LeafCritical):len(opts.LeafCritical)], OIDSubjectAltName)
	root, err := VerifyChain(certs, opts)
	if err != nil {
		return nil, err
	}
	if _, err := CheckAIKCertificate(certs[0]); err != nil {
		return nil, err
	}
	if !samePublicKey(certs[0].PublicKey, ak.key) {
		return nil, attest.Errorf(CodeAKCertificateKey, "the AK certificate certifies another key than the AK")
	}
	ak.root = RootName(root)
	return ak, nil
}

// samePublicKey compares two public keys by their SubjectPublicKeyInfo.
func samePublicKey(a, b crypto.PublicKey) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}

// Public returns the AK's TPMT_PUBLIC.
func (ak *AK) Public() []byte { return bytes.Clone(ak.public) }

// Key returns the AK's public key (*rsa.PublicKey or *ecdsa.PublicKey).
func (ak *AK) Key() crypto.PublicKey { return ak.key }

// Root names what vouched for the AK: the root of its EK certificate chain,
// "ek-allowlist", the root of its AK certificate, or what TrustedAK was
// given.
func (ak *AK) Root() string { return ak.root }

// EKHash returns the SHA-256 of the SubjectPublicKeyInfo of the EK the AK
// was activated against, or nil for an AK not enrolled by activation.
func (ak *AK) EKHash() []byte { return bytes.Clone(ak.ekHash) }

// akRecordVersion is the first byte of a stored AK.
const akRecordVersion = 1

// MarshalBinary encodes the AK for storage: ParseAK reads it back.
func (ak *AK) MarshalBinary() ([]byte, error) {
	return ak.appendBinary(nil), nil
}

func (ak *AK) appendBinary(b []byte) []byte {
	b = append(b, akRecordVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ak.public)))
	b = append(b, ak.public...)
	b = append(b, byte(len(ak.ekHash)))
	b = append(b, ak.ekHash...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ak.root)))
	return append(b, ak.root...)
}

// ParseAK decodes an AK stored with MarshalBinary.
func ParseAK(b []byte) (*AK, error) {
	ak, rest, err := parseAK(b)
	if err == nil && len(rest) != 0 {
		err = errors.New("bytes after the record")
	}
	if err != nil {
		return nil, attest.Errorf(CodeMalformedStored, "stored AK: %v", err)
	}
	return ak, nil
}

func parseAK(b []byte) (*AK, []byte, error) {
	r := reader{b: b}
	if v := r.byte(); v != akRecordVersion {
		return nil, nil, errors.New("unknown record version")
	}
	public := r.bytes(int(r.uint16()))
	ekHash := r.bytes(int(r.byte()))
	root := r.bytes(int(r.uint16()))
	if r.short {
		return nil, nil, errors.New("truncated")
	}
	if len(ekHash) != 0 && len(ekHash) != 32 {
		return nil, nil, errors.New("EK hash is not a SHA-256")
	}
	ak, err := newAK(public, string(root), ekHash)
	if err != nil {
		return nil, nil, err
	}
	return ak, r.b, nil
}

// reader reads a record; a read past the end sets short and returns zeros.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.short = true
		r.b = nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) uint16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) uint64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
