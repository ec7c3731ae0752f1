package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	challenge = []byte("keybind server challenge 0123456")
)

func openTPM(t *testing.T) *tpmsim.TPM {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func wantCode(t *testing.T, err error, code attest.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("want accept, got %v", err)
		}
		return
	}
	if got := attest.CodeOf(err); got != code {
		t.Fatalf("want %s, got %q (%v)", code, got, err)
	}
	if !errors.Is(err, code.Err()) {
		t.Fatalf("errors.Is(%v, %s) is false", err, code)
	}
}

// TestCertificationCases runs every certification the simulator makes (the
// same the vector generator commits): valid keys of each kind, and one
// refusal per check.
func TestCertificationCases(t *testing.T) {
	sim := openTPM(t)
	cases, err := sim.CertificationCases(challenge)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ak, err := tpm.TrustedAK(c.AKPublic, "test AK")
			var v *attest.Verdict
			if err == nil {
				v, err = tpm.VerifyCertification(ak, c.Params, c.Challenge)
			}
			wantCode(t, err, attest.Code(c.Code))
			seen[c.Code] = true
			if c.Code != "" {
				return
			}
			if v.Format != "tpm" || v.Trust != attest.TrustHardware || v.Root != "test AK" || v.PublicKey == nil {
				t.Fatalf("verdict %+v", v)
			}
			for k, want := range c.Facts {
				if !sameJSON(v.Facts[k], want) {
					t.Errorf("fact %s = %v, want %v", k, v.Facts[k], want)
				}
			}
		})
	}
	for _, code := range []attest.Code{
		tpm.CodeChallengeMismatch, tpm.CodeRestricted, tpm.CodeBadSignature, tpm.CodeNotFixedTPM,
		tpm.CodeNotFixedParent, tpm.CodeNotTPMGenerated, tpm.CodeNameMismatch, tpm.CodeBadMagic,
		tpm.CodeWeakKey, tpm.CodeAttestationType, tpm.CodeMalformedPublic, tpm.CodeMalformedAttestation,
		tpm.CodeMalformedSignature, tpm.CodeAKNotRestricted,
	} {
		if !seen[string(code)] {
			t.Errorf("no case refused with %s", code)
		}
	}
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestEnrollmentEndToEnd enrolls an AK of each algorithm with an EK
// certificate from a test vendor CA, activates it through storage, and
// verifies a key it certifies.
func TestEnrollmentEndToEnd(t *testing.T) {
	sim := openTPM(t)
	ek, err := sim.EK()
	if err != nil {
		t.Fatal(err)
	}
	vendor, err := forge.NewTPMCA("Test TPM Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ekCert, err := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	opts := &tpm.Options{Time: t0, EKRoots: []*x509.Certificate{vendor.Root}}
	for _, alg := range []goattest.Algorithm{goattest.ECDSA, goattest.RSA} {
		t.Run(string(alg), func(t *testing.T) {
			ak, err := sim.TPM.NewAK(&goattest.AKConfig{Algorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			defer ak.Close(sim.TPM)
			req := &tpm.EnrollmentRequest{EKChain: [][]byte{ekCert, vendor.Intermediate.Raw}, AK: ak.AttestationParameters()}
			ch, pending, err := tpm.StartEnrollment(req, opts)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := pending.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			secret, err := ak.ActivateCredential(sim.TPM, *ch)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(stored, secret) {
				t.Fatal("the stored activation holds the secret")
			}
			loaded, err := tpm.ParseActivation(stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(loaded.ID(), pending.ID()) || !loaded.Expires().Equal(t0.Add(tpm.DefaultActivationTTL)) {
				t.Fatalf("loaded activation %x %v", loaded.ID(), loaded.Expires())
			}
			enrolled, err := loaded.Activate(secret, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			_, err = loaded.Activate(secret, t0.Add(time.Minute))
			wantCode(t, err, tpm.CodeActivationUsed)
			if enrolled.Root() != "Test TPM Vendor Root CA" {
				t.Errorf("root %q", enrolled.Root())
			}
			spki, _ := x509.MarshalPKIXPublicKey(ek.Public)
			if h := sha256.Sum256(spki); !bytes.Equal(enrolled.EKHash(), h[:]) {
				t.Errorf("EK hash %x", enrolled.EKHash())
			}

			// The engine stores the AK and loads it back for each key.
			rec, _ := enrolled.MarshalBinary()
			enrolled, err = tpm.ParseAK(rec)
			if err != nil {
				t.Fatal(err)
			}
			key, err := sim.TPM.NewKey(ak, &goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 256, QualifyingData: challenge})
			if err != nil {
				t.Fatal(err)
			}
			defer key.Close()
			v, err := tpm.VerifyCertification(enrolled, key.CertificationParameters(), challenge)
			if err != nil {
				t.Fatal(err)
			}
			if v.Root != "Test TPM Vendor Root CA" || v.Format != "tpm" || v.Trust != attest.TrustHardware {
				t.Fatalf("verdict %+v", v)
			}
			if !reflect.DeepEqual(v.PublicKey, key.Public()) {
				t.Fatal("the verdict's key is not the certified key")
			}
			_, err = tpm.VerifyCertification(enrolled, key.CertificationParameters(), []byte("another challenge"))
			wantCode(t, err, tpm.CodeChallengeMismatch)
		})
	}
}

// TestEnrollmentRefusals covers each check of StartEnrollment and Activate.
func TestEnrollmentRefusals(t *testing.T) {
	sim := openTPM(t)
	ek, err := sim.EK()
	if err != nil {
		t.Fatal(err)
	}
	vendor, err := forge.NewTPMCA("Test TPM Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	other, err := forge.NewTPMCA("Other Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ekCert, _ := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	expiredEK, _ := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-3, 0, 0), t0.AddDate(0, -1, 0))
	otherEK, _ := other.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	ekSPKI, _ := x509.MarshalPKIXPublicKey(ek.Public)
	ekHash := sha256.Sum256(ekSPKI)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	strangerSPKI, _ := x509.MarshalPKIXPublicKey(&stranger.PublicKey)

	ak, err := sim.TPM.NewAK(&goattest.AKConfig{Algorithm: goattest.ECDSA})
	if err != nil {
		t.Fatal(err)
	}
	defer ak.Close(sim.TPM)
	params := ak.AttestationParameters()
	chain := [][]byte{ekCert, vendor.Intermediate.Raw}
	roots := []*x509.Certificate{vendor.Root}

	// AKs a TPM makes for real that are no attestation keys.
	unrestricted := tpmsim.KeyTemplate()
	notAK, err := sim.NewRawAK(unrestricted)
	if err != nil {
		t.Fatal(err)
	}
	rawAK, err := sim.NewRawAK(tpmsim.AKTemplate())
	if err != nil {
		t.Fatal(err)
	}
	asParams := func(o *tpmsim.Object) goattest.AttestationParameters {
		return goattest.AttestationParameters{Public: o.Public, CreateData: o.CreateData, CreateAttestation: o.CreateAttestation, CreateSignature: o.CreateSignature}
	}
	// Creation data changed in the parent's qualified name (the digest
	// before the empty outsideInfo at the end).
	swapped := asParams(rawAK)
	swapped.CreateData = bytes.Clone(swapped.CreateData)
	swapped.CreateData[len(swapped.CreateData)-3] ^= 1
	dupTemplate := tpmsim.AKTemplate()
	dupTemplate.Attributes &^= tpm2.FlagFixedTPM | tpm2.FlagFixedParent
	dupAK, err := sim.NewRawAK(dupTemplate)
	if err != nil {
		t.Fatal(err)
	}
	weakTemplate := tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: tpmsim.AKTemplate().Attributes,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}, KeyBits: 1024}}
	weakAK, err := sim.NewRawAK(weakTemplate)
	if err != nil {
		t.Fatal(err)
	}
	// Attributes changed in the AK's public area: the attribute checks come
	// before the name check, so each names itself.
	withAttributes := func(set, clear tpm2.KeyProp) goattest.AttestationParameters {
		p := asParams(rawAK)
		p.Public = bytes.Clone(p.Public)
		a := tpm2.KeyProp(binary.BigEndian.Uint32(p.Public[4:8]))
		binary.BigEndian.PutUint32(p.Public[4:8], uint32((a|set)&^clear))
		return p
	}
	otherSig := asParams(rawAK)
	otherSig.CreateSignature = params.CreateSignature
	wrongType := params
	wrongType.CreateAttestation, wrongType.CreateSignature = nil, nil

	for _, c := range []struct {
		name string
		req  tpm.EnrollmentRequest
		opts tpm.Options
		code attest.Code
	}{
		{"zero options trust nothing", tpm.EnrollmentRequest{EKChain: chain, AK: params}, tpm.Options{Time: t0}, tpm.CodeChainUntrustedRoot},
		{"no EK certificate", tpm.EnrollmentRequest{EKPublic: ekSPKI, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeEKCertificateMiss},
		{"EK certificate of another vendor", tpm.EnrollmentRequest{EKChain: [][]byte{otherEK, other.Intermediate.Raw}, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeChainUntrustedRoot},
		{"EK certificate without its intermediate", tpm.EnrollmentRequest{EKChain: [][]byte{ekCert}, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeChainUntrustedRoot},
		{"expired EK certificate", tpm.EnrollmentRequest{EKChain: [][]byte{expiredEK, vendor.Intermediate.Raw}, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeChainExpired},
		{"EK public key not the certificate's", tpm.EnrollmentRequest{EKChain: chain, EKPublic: strangerSPKI, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeEKMismatch},
		{"malformed EK certificate", tpm.EnrollmentRequest{EKChain: [][]byte{ekCert[:100]}, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeEKMalformed},
		{"EK not on the allow-list", tpm.EnrollmentRequest{EKPublic: ekSPKI, AK: params}, tpm.Options{Time: t0, EKTrust: tpm.EKAllowList, EKAllowList: [][32]byte{sha256.Sum256(strangerSPKI)}}, tpm.CodeEKNotAllowed},
		{"EK on the allow-list", tpm.EnrollmentRequest{EKPublic: ekSPKI, AK: params}, tpm.Options{Time: t0, EKTrust: tpm.EKAllowList, EKAllowList: [][32]byte{ekHash}}, ""},
		{"EK certificate on the allow-list", tpm.EnrollmentRequest{EKChain: [][]byte{otherEK}, AK: params}, tpm.Options{Time: t0, EKTrust: tpm.EKAllowList, EKAllowList: [][32]byte{ekHash}}, ""},
		{"valid", tpm.EnrollmentRequest{EKChain: chain, AK: params}, tpm.Options{Time: t0, EKRoots: roots}, ""},
		{"AK not restricted", tpm.EnrollmentRequest{EKChain: chain, AK: asParams(notAK)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKNotRestricted},
		{"AK creation data changed", tpm.EnrollmentRequest{EKChain: chain, AK: swapped}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKCreationMismatch},
		{"AK duplicable", tpm.EnrollmentRequest{EKChain: chain, AK: asParams(dupAK)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKNotFixedTPM},
		{"AK RSA-1024", tpm.EnrollmentRequest{EKChain: chain, AK: asParams(weakAK)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeWeakKey},
		{"AK fixedParent clear", tpm.EnrollmentRequest{EKChain: chain, AK: withAttributes(0, tpm2.FlagFixedParent)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKNotFixedParent},
		{"AK sensitiveDataOrigin clear", tpm.EnrollmentRequest{EKChain: chain, AK: withAttributes(0, tpm2.FlagSensitiveDataOrigin)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKNotTPMGenerated},
		{"AK restricted clear", tpm.EnrollmentRequest{EKChain: chain, AK: withAttributes(0, tpm2.FlagRestricted)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKNotRestricted},
		{"AK name changed", tpm.EnrollmentRequest{EKChain: chain, AK: withAttributes(tpm2.FlagStClear, 0)}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKCreationMismatch},
		{"AK creation signed by another AK", tpm.EnrollmentRequest{EKChain: chain, AK: otherSig}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeAKBadSignature},
		{"AK without creation attestation", tpm.EnrollmentRequest{EKChain: chain, AK: wrongType}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeMalformedAttestation},
		{"AK public truncated", tpm.EnrollmentRequest{EKChain: chain, AK: goattest.AttestationParameters{Public: params.Public[:20], CreateData: params.CreateData, CreateAttestation: params.CreateAttestation, CreateSignature: params.CreateSignature}}, tpm.Options{Time: t0, EKRoots: roots}, tpm.CodeMalformedPublic},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := tpm.StartEnrollment(&c.req, &c.opts)
			wantCode(t, err, c.code)
		})
	}

	t.Run("activation", func(t *testing.T) {
		opts := &tpm.Options{Time: t0, EKRoots: roots, ActivationTTL: time.Minute}
		start := func() (*tpm.Activation, []byte) {
			ch, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{EKChain: chain, AK: params}, opts)
			if err != nil {
				t.Fatal(err)
			}
			secret, err := ak.ActivateCredential(sim.TPM, *ch)
			if err != nil {
				t.Fatal(err)
			}
			return pending, secret
		}
		pending, secret := start()
		wrong := bytes.Clone(secret)
		wrong[0] ^= 1
		_, err := pending.Activate(wrong, t0)
		wantCode(t, err, tpm.CodeActivationMismatch)
		// A wrong answer uses the activation up.
		_, err = pending.Activate(secret, t0)
		wantCode(t, err, tpm.CodeActivationUsed)
		if _, err := pending.MarshalBinary(); err == nil {
			t.Error("an answered activation can still be stored")
		}

		pending, secret = start()
		_, err = pending.Activate(secret, t0.Add(time.Minute+time.Second))
		wantCode(t, err, tpm.CodeActivationExpired)

		pending, secret = start()
		if _, err := pending.Activate(secret, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("answered once under concurrency", func(t *testing.T) {
		ch, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{EKChain: chain, AK: params}, &tpm.Options{Time: t0, EKRoots: roots})
		if err != nil {
			t.Fatal(err)
		}
		secret, err := ak.ActivateCredential(sim.TPM, *ch)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var won, used atomic.Int32
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := pending.Activate(secret, t0)
				switch attest.CodeOf(err) {
				case "":
					won.Add(1)
				case tpm.CodeActivationUsed:
					used.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 || used.Load() != 15 {
			t.Fatalf("%d activations succeeded, %d were refused as used", won.Load(), used.Load())
		}
	})

	t.Run("credential for another TPM's EK", func(t *testing.T) {
		// An EK certificate for a key this TPM does not hold: its TPM
		// cannot recover the secret, and a guess is refused.
		strangerCert, _ := vendor.EKCertificate(&stranger.PublicKey, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
		ch, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{EKChain: [][]byte{strangerCert, vendor.Intermediate.Raw}, AK: params}, &tpm.Options{Time: t0, EKRoots: roots})
		if err != nil {
			t.Fatal(err)
		}
		if secret, err := ak.ActivateCredential(sim.TPM, *ch); err == nil {
			t.Fatalf("the TPM activated a credential made for another EK: %x", secret)
		}
		_, err = pending.Activate(make([]byte, 32), t0)
		wantCode(t, err, tpm.CodeActivationMismatch)
	})

	t.Run("stored records", func(t *testing.T) {
		_, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{EKChain: chain, AK: params}, &tpm.Options{Time: t0, EKRoots: roots})
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := pending.MarshalBinary()
		for _, bad := range [][]byte{nil, rec[:len(rec)-1], append(bytes.Clone(rec), 0), append([]byte{9}, rec[1:]...)} {
			_, err := tpm.ParseActivation(bad)
			wantCode(t, err, tpm.CodeMalformedStored)
		}
		_, err = tpm.ParseAK(rec[1+16+32+8:])
		wantCode(t, err, "")
		_, err = tpm.ParseAK(rec[1+16+32+8 : len(rec)-2])
		wantCode(t, err, tpm.CodeMalformedStored)
	})
}

// TestCertificationInput checks the caller's parameters.
func TestCertificationInput(t *testing.T) {
	sim := openTPM(t)
	cases, err := sim.CertificationCases(challenge)
	if err != nil {
		t.Fatal(err)
	}
	c := cases[0]
	ak, err := tpm.TrustedAK(c.AKPublic, "test AK")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpm.VerifyCertification(nil, c.Params, challenge)
	wantCode(t, err, tpm.CodeInputMissing)
	_, err = tpm.VerifyCertification(ak, c.Params, nil)
	wantCode(t, err, tpm.CodeInputChallenge)
	_, err = tpm.VerifyCertification(ak, c.Params, make([]byte, tpm.MaxChallenge+1))
	wantCode(t, err, tpm.CodeInputChallengeTooLong)
	_, err = tpm.VerifyCertification(ak, tpm.CertificationParameters{}, challenge)
	wantCode(t, err, tpm.CodeMalformedPublic)
}

// TestAKFromCertificate checks an AK vouched for by an AIK certificate.
func TestAKFromCertificate(t *testing.T) {
	sim := openTPM(t)
	ak, err := sim.NewRawAK(tpmsim.AKTemplate())
	if err != nil {
		t.Fatal(err)
	}
	akp, err := goattest.ParseAKPublic(ak.Public)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := forge.NewTPMCA("Test AIK", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	profile := forge.AIKProfile{Device: forge.SimulatorDevice, NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(5, 0, 0)}
	issue := func(key any, change func(p *forge.AIKProfile)) []byte {
		p := profile
		if change != nil {
			change(&p)
		}
		der, err := ca.AIKCertificate(key, p)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts := tpm.ChainOptions{Roots: []*x509.Certificate{ca.Root}, Time: t0, Cache: attest.NewCertCache(0)}
	for _, c := range []struct {
		name string
		leaf []byte
		opts tpm.ChainOptions
		code attest.Code
	}{
		{"valid", issue(akp.Public, nil), opts, ""},
		{"another key", issue(&stranger.PublicKey, nil), opts, tpm.CodeAKCertificateKey},
		{"no AIK usage", issue(akp.Public, func(p *forge.AIKProfile) { p.NoAIKUsage = true }), opts, tpm.CodeAIKExtKeyUsage},
		{"a CA", issue(akp.Public, func(p *forge.AIKProfile) { p.CA = true }), opts, tpm.CodeAIKBasicConstraints},
		{"no subject alternative name", issue(akp.Public, func(p *forge.AIKProfile) { p.NoSAN = true }), opts, tpm.CodeAIKSubjectAltName},
		{"version 1", issue(akp.Public, func(p *forge.AIKProfile) { p.Version1 = true }), opts, tpm.CodeAIKVersion},
		{"expired", issue(akp.Public, func(p *forge.AIKProfile) { p.NotAfter = t0.AddDate(0, 0, -1) }), opts, tpm.CodeChainExpired},
		{"no roots", issue(akp.Public, nil), tpm.ChainOptions{Time: t0}, tpm.CodeChainUntrustedRoot},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := tpm.AKFromCertificate(ak.Public, [][]byte{c.leaf, ca.Intermediate.Raw}, c.opts)
			wantCode(t, err, c.code)
			if c.code == "" && got.Root() != "Test AIK Root CA" {
				t.Errorf("root %q", got.Root())
			}
		})
	}
}
