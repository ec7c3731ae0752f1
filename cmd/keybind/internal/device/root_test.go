package device

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOpenRoot: the root is made once, kept private, loaded again, made
// only once by processes racing to create it, and refused when damaged.
func TestOpenRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "devroot")
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cert.Subject.CommonName != RootName || !r.Cert.IsCA || r.CertFile != filepath.Join(dir, RootCertFile) {
		t.Errorf("root: %v, %s", r.Cert.Subject, r.CertFile)
	}
	if !r.Cert.NotAfter.After(time.Now().AddDate(19, 0, 0)) {
		t.Errorf("root valid until %v", r.Cert.NotAfter)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, RootKeyFile): 0o600, r.CertFile: 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v, want mode %04o", path, fi, err, want)
		}
	}
	b, err := os.ReadFile(r.CertFile)
	if err != nil || string(b) != string(r.PEM()) {
		t.Errorf("root.pem: %v\n%s", err, b)
	}
	if strings.Contains(string(b), "PRIVATE") {
		t.Error("root.pem holds the private key")
	}

	again, err := OpenRoot(dir)
	if err != nil || again.Fingerprint() != r.Fingerprint() {
		t.Fatalf("opened again: %v, %v", again, err)
	}
	// root.pem is written again from the key file when it is gone.
	os.Remove(r.CertFile)
	if again, err = OpenRoot(dir); err != nil || again.Fingerprint() != r.Fingerprint() {
		t.Fatalf("opened without root.pem: %v", err)
	}
	if b, err := os.ReadFile(r.CertFile); err != nil || string(b) != string(r.PEM()) {
		t.Errorf("root.pem not written again: %v", err)
	}

	// Racing creators agree on one root.
	race := filepath.Join(t.TempDir(), "race")
	var wg sync.WaitGroup
	prints := make([]string, 8)
	for i := range prints {
		wg.Go(func() {
			r, err := OpenRoot(race)
			if err != nil {
				t.Error(err)
				return
			}
			prints[i] = r.Fingerprint()
		})
	}
	wg.Wait()
	for _, p := range prints {
		if p != prints[0] {
			t.Fatalf("racing creators made several roots: %v", prints)
		}
	}

	keyFile := filepath.Join(dir, RootKeyFile)
	good, _ := os.ReadFile(keyFile)
	other, err := OpenRoot(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other.Dir, RootKeyFile))
	keyOnly := otherKey[:strings.Index(string(otherKey), "-----BEGIN CERTIFICATE")]
	for _, c := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"readable by others", good, 0o644, "chmod 600"},
		{"empty", []byte{}, 0o600, "want a private key and a certificate"},
		{"not PEM", []byte("hello"), 0o600, "data that is not PEM"},
		{"key of another root", append(append([]byte{}, keyOnly...), r.PEM()...), 0o600, "not the key's"},
		{"two keys", append(append([]byte{}, keyOnly...), good...), 0o600, "want one P-384 ECDSA key"},
		{"bad certificate", []byte(strings.Replace(string(good), "-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nAAAA", 1)), 0o600, "want one certificate"},
	} {
		if err := os.WriteFile(keyFile, c.content, c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(keyFile, c.mode)
		if _, err := OpenRoot(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := OpenRoot(""); err == nil {
		t.Error("a root without a folder")
	}
}
