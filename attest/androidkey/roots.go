package androidkey

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/keybind/keybind/attest"
)

// googleRootsPEM holds Google's hardware attestation roots as published
// (https://android.googleapis.com/attestation/root) plus the earlier
// self-signed certificates of the same RSA key that real factory chains
// still end in.
//
//go:embed google-hardware-attestation-roots.pem
var googleRootsPEM []byte

// Google's root keys, pinned by the SHA-256 of their SubjectPublicKeyInfo.
// Trust is in the key: the RSA-4096 key has several self-signed
// certificates (one expired on 2026-05-24), all of them equally good.
const (
	googleRSASPKI = "feb2ea7551ee316ed4bb443c8293b884dbfdea40b603ee3e4f4a897e4580fbae"
	googleEC1SPKI = "3ee44512a1af2beb39c889490c60ea3f82e43f5d5a5532f5ab9419f676cd07ec"
)

var googleKeyNames = map[string]string{
	googleRSASPKI: "Google Hardware Attestation Root (RSA-4096)",
	googleEC1SPKI: "Google Key Attestation CA1 (EC P-384)",
}

// googleCertPins are the SHA-256 values of the five embedded certificates,
// in file order; a build whose embedded file differs refuses to start.
var googleCertPins = []string{
	"cedb1cb6dc896ae5ec797348bce9286753c2b38ee71ce0fbe34a9a1248800dfc",
	"6d9db4ce6c5c0b293166d08986e05774a8776ceb525d9e4329520de12ba4bcc0",
	"c1984a3ef45c1e2a918551de10603c86f7051b2249c4891cae3230eabd0c97d5",
	"1ef1a04b8ba58ab94589ac498c8982a783f24ea7307e0159a0c3a73b377d87cc",
	"ab6641178a36e179aa0c1cdddf9a16eb45fa20943e2b8cd7c7c05c26cf8b487a",
}

// Roots is a set of trust anchors for attestation chains. An anchor is a
// public key (identified by the SHA-256 of its SubjectPublicKeyInfo) with
// the certificates that carry it; a chain is trusted when its last
// certificate carries an anchor's key, or was signed by one. Trust never
// comes from the chain itself.
//
// A Roots is immutable and safe for concurrent use.
type Roots struct {
	anchors []*anchor
	bySPKI  map[[32]byte]*anchor
}

type anchor struct {
	name  string
	spki  [32]byte
	certs []*x509.Certificate
}

var googleRoots = sync.OnceValues(func() (*Roots, error) { return parseGoogleRoots(googleRootsPEM) })

// GoogleRoots returns the built-in trust store: Google's hardware
// attestation root keys, pinned by SPKI (the RSA-4096 key and the EC P-384
// "Key Attestation CA1").
func GoogleRoots() *Roots {
	r, err := googleRoots()
	if err != nil {
		// The embedded file is part of the build and its pins are tested;
		// a mismatch means a corrupted binary, which must not run.
		panic("androidkey: built-in Google roots: " + err.Error())
	}
	return r
}

func parseGoogleRoots(data []byte) (*Roots, error) {
	certs, err := parsePEMCertificates(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != len(googleCertPins) {
		return nil, fmt.Errorf("%d certificates, want %d", len(certs), len(googleCertPins))
	}
	r := &Roots{bySPKI: map[[32]byte]*anchor{}}
	for i, c := range certs {
		if got := sha256.Sum256(c.Raw); hex.EncodeToString(got[:]) != googleCertPins[i] {
			return nil, fmt.Errorf("certificate %d does not match its pin", i)
		}
		spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		name, ok := googleKeyNames[hex.EncodeToString(spki[:])]
		if !ok {
			return nil, fmt.Errorf("certificate %d carries a key that is not pinned", i)
		}
		r.add(c, name)
	}
	if len(r.anchors) != len(googleKeyNames) {
		return nil, fmt.Errorf("%d root keys, want %d", len(r.anchors), len(googleKeyNames))
	}
	return r, nil
}

// NewRoots returns a trust store of the given certificates' keys, for roots
// a caller trusts explicitly (a development root, a test root). Several
// certificates of one key make one anchor. The anchor's name, reported in
// the verdict, is the first certificate's subject.
func NewRoots(certs ...*x509.Certificate) *Roots {
	r := &Roots{bySPKI: map[[32]byte]*anchor{}}
	for _, c := range certs {
		if c == nil {
			continue
		}
		name := c.Subject.String()
		if name == "" {
			s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			name = "SPKI SHA-256 " + hex.EncodeToString(s[:])
		}
		r.add(c, name)
	}
	return r
}

// ParseRootsPEM returns a trust store of the certificates in PEM data (one
// or more CERTIFICATE blocks, nothing else).
func ParseRootsPEM(data []byte) (*Roots, error) {
	certs, err := parsePEMCertificates(data)
	if err != nil {
		return nil, err
	}
	return NewRoots(certs...), nil
}

func (r *Roots) add(c *x509.Certificate, name string) {
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	a, ok := r.bySPKI[spki]
	if !ok {
		a = &anchor{name: name, spki: spki}
		r.bySPKI[spki] = a
		r.anchors = append(r.anchors, a)
	}
	a.certs = append(a.certs, c)
}

// Names returns the names of the anchors, in the order they were added.
func (r *Roots) Names() []string {
	names := make([]string, len(r.anchors))
	for i, a := range r.anchors {
		names[i] = a.name
	}
	return names
}

// Len returns the number of anchor keys.
func (r *Roots) Len() int { return len(r.anchors) }

// keyAnchor returns the anchor whose key c carries, or nil.
func (r *Roots) keyAnchor(c *x509.Certificate) *anchor {
	return r.bySPKI[sha256.Sum256(c.RawSubjectPublicKeyInfo)]
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return attest.ParseCertificates(data)
}
