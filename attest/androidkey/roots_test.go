package androidkey

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

// TestGooglePins checks the embedded roots against the SHA-256 values
// published with them: the five certificates, and the two root keys by the
// SHA-256 of their SubjectPublicKeyInfo.
func TestGooglePins(t *testing.T) {
	r := GoogleRoots()
	if r.Len() != 2 {
		t.Fatalf("%d anchor keys, want 2 (the RSA-4096 key and Key Attestation CA1)", r.Len())
	}
	wantSPKI := map[string]int{googleRSASPKI: 4, googleEC1SPKI: 1}
	for _, a := range r.anchors {
		spki := hex.EncodeToString(a.spki[:])
		n, ok := wantSPKI[spki]
		if !ok {
			t.Errorf("anchor %q has an unpinned key %s", a.name, spki)
			continue
		}
		if len(a.certs) != n {
			t.Errorf("anchor %q has %d certificates, want %d", a.name, len(a.certs), n)
		}
		for _, c := range a.certs {
			if got := sha256.Sum256(c.RawSubjectPublicKeyInfo); hex.EncodeToString(got[:]) != spki {
				t.Errorf("certificate %s filed under the wrong key", c.Subject)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("root certificate %s is not self-signed: %v", c.Subject, err)
			}
		}
	}
	var got []string
	rest := googleRootsPEM
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		s := sha256.Sum256(b.Bytes)
		got = append(got, hex.EncodeToString(s[:]))
	}
	if strings.Join(got, " ") != strings.Join(googleCertPins, " ") {
		t.Errorf("embedded certificates hash to\n%v\nwant\n%v", got, googleCertPins)
	}
	// The published values, written out once more so that a change to the
	// pins above cannot go unnoticed.
	for _, want := range []string{
		"feb2ea7551ee316ed4bb443c8293b884dbfdea40b603ee3e4f4a897e4580fbae",
		"3ee44512a1af2beb39c889490c60ea3f82e43f5d5a5532f5ab9419f676cd07ec",
	} {
		if _, ok := googleKeyNames[want]; !ok {
			t.Errorf("SPKI pin %s missing", want)
		}
	}
}

// TestGoogleRootsRefuseAlteredFile checks that the pins are enforced: a
// file with a certificate missing, replaced or added does not load.
func TestGoogleRootsRefuseAlteredFile(t *testing.T) {
	blocks := bytes.SplitAfter(googleRootsPEM, []byte("-----END CERTIFICATE-----\n"))
	blocks = blocks[:len(blocks)-1]
	if len(blocks) != 5 {
		t.Fatalf("%d PEM blocks", len(blocks))
	}
	swapped := bytes.Join([][]byte{blocks[1], blocks[0], blocks[2], blocks[3], blocks[4]}, nil)
	for name, data := range map[string][]byte{
		"missing": bytes.Join(blocks[:4], nil),
		"added":   bytes.Join(append(blocks, blocks[0]), nil),
		"swapped": swapped,
		"empty":   nil,
	} {
		if _, err := parseGoogleRoots(data); err == nil {
			t.Errorf("%s: altered root file loaded", name)
		}
	}
	if _, err := parseGoogleRoots(googleRootsPEM); err != nil {
		t.Fatal(err)
	}
}

func TestParseRootsPEM(t *testing.T) {
	r, err := ParseRootsPEM(googleRootsPEM)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 {
		t.Errorf("%d anchors from five certificates of two keys", r.Len())
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParseRootsPEM([]byte(bad)); err == nil {
			t.Errorf("ParseRootsPEM(%q) succeeded", bad)
		}
	}
}
