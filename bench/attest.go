package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
)

// The attestation formats of the attest mode.
const (
	FormatAndroidKey = "android-key"
	FormatAppAttest  = "apple-appattest"
	FormatWebAuthn   = "webauthn-android-key"
	// FormatTPM: a PC's sign-in key certified by its enrolled attestation
	// key (TPM2_Certify), the check of each new key after the AK's
	// enrollment.
	FormatTPM = "tpm-certify"
)

// AttestFormats are the formats the attest mode measures, in order.
var AttestFormats = []string{FormatAndroidKey, FormatAppAttest, FormatWebAuthn, FormatTPM}

// attestEvidence is a few distinct valid attestations of one format and a
// verifier of them, which trusts the development root that made them (and
// nothing else).
type attestEvidence struct {
	name   string
	verify func(i int) error
}

// newAttestEvidence makes n valid attestations of format with
// testvectors/forge, and a verifier keeping its certificate cache across
// calls, as a server does (the leaf certificates, one per device, are
// parsed and checked every time).
func newAttestEvidence(format string, n int) (*attestEvidence, error) {
	now := time.Now()
	challenge := []byte("keybind bench enrollment challenge")
	switch format {
	case FormatAndroidKey:
		ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: now})
		if err != nil {
			return nil, err
		}
		var chains [][][]byte
		for range n {
			a, err := ca.Attest(forge.AndroidKey{Challenge: challenge, UserAuth: true})
			if err != nil {
				return nil, err
			}
			chains = append(chains, a.Chain)
		}
		v := androidkey.NewVerifier()
		opts := androidkey.Options{Challenge: challenge, Time: now, Roots: ca.Roots(), Policy: androidkey.Policy{RequireUserAuth: true}}
		return &attestEvidence{format, func(i int) error {
			_, err := v.Verify(chains[i%len(chains)], opts)
			return err
		}}, nil
	case FormatAppAttest:
		ca, err := forge.NewAppAttestCA(now)
		if err != nil {
			return nil, err
		}
		const appID = "TEAMID1234.com.keybind.bench"
		cdh := sha256.Sum256(challenge)
		type one struct{ object, keyID []byte }
		var atts []one
		for range n {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			a, err := ca.Attest(key, forge.AppAttestOptions{AppID: appID, ClientDataHash: cdh[:]})
			if err != nil {
				return nil, err
			}
			atts = append(atts, one{a.Object, a.KeyID})
		}
		v := appattest.NewVerifier()
		opts := appattest.AttestationOptions{ClientDataHash: cdh[:], AppIDs: []string{appID}, Time: now, Roots: []*x509.Certificate{ca.Root}}
		return &attestEvidence{format, func(i int) error {
			a := atts[i%len(atts)]
			_, err := v.VerifyAttestation(a.object, a.keyID, opts)
			return err
		}}, nil
	case FormatWebAuthn:
		ca, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: now})
		if err != nil {
			return nil, err
		}
		const rpID, origin = "login.bench.example", "https://login.bench.example"
		type one struct{ object, clientData []byte }
		var regs []one
		for len(regs) < n {
			cases, err := forge.WebAuthnAndroidCases(ca, "", rpID, origin, challenge)
			if err != nil {
				return nil, err
			}
			for _, c := range cases {
				if c.Name == "accept/tee-ecdsa-p256" {
					regs = append(regs, one{c.Object, c.ClientData})
				}
			}
			if len(regs) == 0 {
				return nil, fmt.Errorf("bench: no valid WebAuthn android-key registration from the forge")
			}
		}
		v := webauthn.NewVerifier()
		opts := &webauthn.Options{Challenge: challenge, Origins: []string{origin}, RPID: rpID, Time: ca.Time, AndroidRoots: ca.Roots()}
		return &attestEvidence{format, func(i int) error {
			r := regs[i%len(regs)]
			_, err := v.Verify(r.object, r.clientData, opts)
			return err
		}}, nil
	case FormatTPM:
		c, err := forge.TPMCertify(challenge)
		if err != nil {
			return nil, err
		}
		ak, err := tpm.TrustedAK(c.AKPublic, "bench")
		if err != nil {
			return nil, err
		}
		var certs []tpm.CertificationParameters
		for len(certs) < n {
			if err := c.Certify(challenge); err != nil {
				return nil, err
			}
			certs = append(certs, tpm.CertificationParameters{Public: c.Public, CreateAttestation: c.Attestation, CreateSignature: c.Signature})
		}
		return &attestEvidence{format, func(i int) error {
			_, err := tpm.VerifyCertification(ak, certs[i%len(certs)], challenge)
			return err
		}}, nil
	}
	return nil, fmt.Errorf("bench: unknown attestation format %q (%v)", format, AttestFormats)
}
