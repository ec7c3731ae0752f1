package device

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// StateVersion is the version of the state file this package writes and
// reads.
const StateVersion = 1

// State is a phone's state file, JSON:
//
//	{
//	  "version": 1,                          // StateVersion
//	  "kind": "apple",                       // android or apple
//	  "server": "http://127.0.0.1:8443",     // the server's base URL
//	  "tenant": "contoso",
//	  "user": "u_…",                         // the user id
//	  "credential": "c_…",                   // the credential id
//	  "device": "d_…",                       // the device id
//	  "app": "KEYBINDDEV.com.keybind.device", // package or App ID attested
//	  "key": "-----BEGIN PRIVATE KEY-----…", // PKCS #8 PEM, ECDSA P-256
//	  "counter": 3,                          // apple: the last assertion counter used
//	  "root": {"dir": "/…/devroot", "sha256": "…"}, // the development root it was attested under
//	  "enrolled_at": "2026-05-04T10:00:00Z"
//	}
//
// The file holds the phone's private key: it is written with mode 0600,
// through a temporary file renamed over the old one, and a file others can
// read is refused.
type State struct {
	Version    int       `json:"version"`
	Kind       string    `json:"kind"`
	Server     string    `json:"server"`
	Tenant     string    `json:"tenant"`
	User       string    `json:"user"`
	Credential string    `json:"credential"`
	Device     string    `json:"device"`
	App        string    `json:"app"`
	Key        string    `json:"key"`
	Counter    uint32    `json:"counter"`
	Root       RootRef   `json:"root"`
	EnrolledAt time.Time `json:"enrolled_at"`
}

// RootRef names the development root a phone was attested under.
type RootRef struct {
	// Dir is the root's folder (absolute).
	Dir string `json:"dir"`
	// SHA256 is the root certificate's fingerprint (Root.Fingerprint).
	SHA256 string `json:"sha256"`
}

// StateError is a state file that cannot be used: missing, unreadable,
// readable by others, or corrupt.
type StateError struct {
	Path string
	// Missing says the file does not exist (the phone is not enrolled).
	Missing bool
	Reason  string
	Err     error
}

func (e *StateError) Error() string {
	if e.Missing {
		return fmt.Sprintf("device state %s does not exist: enroll the phone first (keybind device enroll)", e.Path)
	}
	return fmt.Sprintf("device state %s: %s", e.Path, e.Reason)
}

func (e *StateError) Unwrap() error { return e.Err }

// maxStateSize bounds a state file (a few hundred bytes in practice).
const maxStateSize = 64 << 10

// readState reads and checks a state file.
func readState(path string) (*State, *ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, &StateError{Path: path, Missing: true, Err: err}
	case err != nil:
		return nil, nil, &StateError{Path: path, Reason: err.Error(), Err: err}
	}
	if err := checkPrivate(path); err != nil {
		return nil, nil, &StateError{Path: path, Reason: err.Error(), Err: err}
	}
	st, key, err := parseState(b)
	if err != nil {
		return nil, nil, &StateError{Path: path, Reason: err.Error(), Err: err}
	}
	return st, key, nil
}

// parseState parses and checks the content of a state file.
func parseState(b []byte) (*State, *ecdsa.PrivateKey, error) {
	if len(b) > maxStateSize {
		return nil, nil, fmt.Errorf("corrupt: %d bytes, more than a state file holds", len(b))
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, nil, fmt.Errorf("corrupt: not a state file's JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("corrupt: data after the JSON object")
	}
	if st.Version != StateVersion {
		return nil, nil, fmt.Errorf("version %d, this keybind reads version %d", st.Version, StateVersion)
	}
	key, err := st.check()
	if err != nil {
		return nil, nil, fmt.Errorf("corrupt: %w", err)
	}
	return &st, key, nil
}

// check validates the fields of a state and returns its key.
func (st *State) check() (*ecdsa.PrivateKey, error) {
	switch st.Kind {
	case KindAndroid, KindApple:
	default:
		return nil, fmt.Errorf("kind %q (want %s or %s)", st.Kind, KindAndroid, KindApple)
	}
	if u, err := url.Parse(st.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an http(s) URL", st.Server)
	}
	for name, v := range map[string]string{"tenant": st.Tenant, "user": st.User, "credential": st.Credential, "app": st.App} {
		if v == "" {
			return nil, fmt.Errorf("no %s", name)
		}
	}
	if st.Kind == KindAndroid && st.Counter != 0 {
		return nil, errors.New("an android phone keeps no counter")
	}
	blk, rest := pem.Decode([]byte(st.Key))
	if blk == nil || blk.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("key: want one PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %v", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("key: want an ECDSA P-256 key")
	}
	return key, nil
}

func encodeKey(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// writeState writes st to path atomically, mode 0600.
func writeState(path string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving device state %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes b to a temporary file in path's folder, syncs
// it and renames it to path.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing to remove
	if err := writeSynced(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself reaches the disk; not every system can sync a folder
		d.Close()
	}
	return nil
}

// writeSynced sets f's mode, writes b, syncs and closes f.
func writeSynced(f *os.File, b []byte, mode os.FileMode) error {
	err := f.Chmod(mode)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkPrivate refuses a key file that others than its owner can read or
// write (on systems with Unix permissions).
func checkPrivate(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s holds a private key but has mode %04o: make it private (chmod 600)", path, m)
	}
	return nil
}
