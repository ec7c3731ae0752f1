package device

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keybind/keybind/testvectors/forge"
)

// The files of a root's folder.
const (
	// RootCertFile is the root certificate (PEM), for
	// `keybind serve --root NAME=FILE`.
	RootCertFile = "root.pem"
	// RootKeyFile holds the root's private key and its certificate (PEM,
	// mode 0600). It is the root: root.pem is written from it.
	RootKeyFile = "root-key.pem"
)

// RootName is the common name of development roots.
const RootName = "Keybind Development Attestation Root (not for production)"

// Root is the development attestation root: a P-384 CA key whose
// certificate anchors both the Android chains (root → intermediate → batch
// → key, as phones come from the factory) and the App Attest chains (root
// → intermediate → credential certificate, as Apple issues them) of the
// simulated phones. Each enrollment gets its own intermediates.
type Root struct {
	// Dir is the root's folder.
	Dir string
	// CertFile is the path of the root certificate's PEM file.
	CertFile string
	// Cert is the root certificate.
	Cert *x509.Certificate

	key *ecdsa.PrivateKey
}

// OpenRoot loads the root kept in dir (made absolute), or creates it there (and dir, mode
// 0700) when dir holds none. Creation is atomic: of two processes creating
// a root at once, one wins and both use its root.
func OpenRoot(dir string) (*Root, error) {
	if dir == "" {
		return nil, errors.New("device: no folder for the development root")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := loadRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createRoot(dir); err == nil || errors.Is(err, fs.ErrExist) {
			r, err = loadRoot(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	// root.pem is derived from the key file: write it when it is missing or
	// differs.
	if b, err := os.ReadFile(r.CertFile); err != nil || string(b) != string(r.PEM()) {
		if err := writeFileAtomic(r.CertFile, r.PEM(), 0o644); err != nil {
			return nil, fmt.Errorf("device: writing the development root certificate: %w", err)
		}
	}
	return r, nil
}

func createRoot(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	root, err := forge.NewAndroidRoot(RootName, time.Now())
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(root.Key)
	if err != nil {
		return err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	b = append(b, root.PEM()...)
	// Written to a temporary file, then linked to its name: the link fails
	// when another process created the root first.
	tmp, err := os.CreateTemp(dir, ".root-key-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Link(tmp.Name(), filepath.Join(dir, RootKeyFile))
}

// loadRoot reads dir's key file; fs.ErrNotExist when there is none.
func loadRoot(dir string) (*Root, error) {
	path := filepath.Join(dir, RootKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	key, cert, err := parseRootFile(b)
	if err != nil {
		return nil, fmt.Errorf("device: development root %s is corrupt: %v (remove the folder to make a new root)", path, err)
	}
	return &Root{Dir: dir, CertFile: filepath.Join(dir, RootCertFile), Cert: cert, key: key}, nil
}

// parseRootFile parses a root's key file: one PKCS #8 P-384 ECDSA key and
// its self-signed CA certificate, in PEM.
func parseRootFile(b []byte) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	var key *ecdsa.PrivateKey
	var cert *x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("private key: %v", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok || ek.Curve != elliptic.P384() || key != nil {
				return nil, nil, errors.New("want one P-384 ECDSA key")
			}
			key = ek
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil || cert != nil {
				return nil, nil, errors.New("want one certificate")
			}
			cert = c
		default:
			return nil, nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
	}
	switch {
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, nil, errors.New("data that is not PEM")
	case key == nil || cert == nil:
		return nil, nil, errors.New("want a private key and a certificate")
	case !key.PublicKey.Equal(cert.PublicKey):
		return nil, nil, errors.New("the certificate is not the key's")
	case !cert.IsCA || cert.CheckSignatureFrom(cert) != nil:
		return nil, nil, errors.New("the certificate is not a self-signed CA")
	}
	return key, cert, nil
}

// PEM returns the root certificate as PEM.
func (r *Root) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Cert.Raw})
}

// Fingerprint returns the SHA-256 of the root certificate, in hex.
func (r *Root) Fingerprint() string {
	h := sha256.Sum256(r.Cert.Raw)
	return hex.EncodeToString(h[:])
}

func (r *Root) ref() RootRef { return RootRef{Dir: r.Dir, SHA256: r.Fingerprint()} }

func (r *Root) android() *forge.AndroidRoot {
	return &forge.AndroidRoot{Cert: r.Cert, Key: r.key}
}

// appAttest returns an App Attest CA under the root with a new
// intermediate, valid around now.
func (r *Root) appAttest(now time.Time) (*forge.AppAttestCA, error) {
	ca := &forge.AppAttestCA{Root: r.Cert, RootKey: r.key, Now: now}
	return ca.WithIntermediate(func(tmpl *x509.Certificate) {
		tmpl.Subject.CommonName = "Keybind Development App Attestation CA"
	})
}
