package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// SplitCertificates returns the DER bytes of the certificates in b, in
// order. b is either PEM text with one or more CERTIFICATE blocks (any other
// block type, or text after the last block, is an error) or a single DER
// certificate, returned as is for the verifier to judge.
func SplitCertificates(b []byte) ([][]byte, error) {
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		return [][]byte{b}, nil
	}
	var out [][]byte
	rest := b
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q where a CERTIFICATE was expected", blk.Type)
		}
		out = append(out, blk.Bytes)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("text after the last PEM block")
	}
	return out, nil
}

// ParseCertificates parses the certificates of b (PEM or one DER
// certificate, as SplitCertificates reads it).
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	ders, err := SplitCertificates(b)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// PinnedCertificate parses a built-in trust anchor: PEM text holding exactly
// one certificate, whose DER and SubjectPublicKeyInfo must hash (SHA-256,
// lower-case hex) to the given pins. A mismatch means the embedded file is
// not the vendor's root, and the anchor must not be used.
func PinnedCertificate(pemData []byte, certSHA256, spkiSHA256 string) (*x509.Certificate, error) {
	blk, rest := pem.Decode(pemData)
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("the built-in root is not one PEM certificate")
	}
	if h := sha256.Sum256(blk.Bytes); hex.EncodeToString(h[:]) != certSHA256 {
		return nil, errors.New("the built-in root does not match its certificate pin")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the built-in root: %v", err)
	}
	if h := sha256.Sum256(c.RawSubjectPublicKeyInfo); hex.EncodeToString(h[:]) != spkiSHA256 {
		return nil, errors.New("the built-in root does not match its key pin")
	}
	return c, nil
}
