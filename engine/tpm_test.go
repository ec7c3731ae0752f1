package engine

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

// The TPM tests run the whole PC flow on the TCG reference TPM simulator
// through go-attestation, as a PC runs it: EK → AK activation → a sign-in
// key certified by the AK → credential → answers signed by the TPM.

const rootTPMVendor = "forge-tpm-vendor"

// tpmVendor is a test TPM vendor CA, standing for a TPM manufacturer's EK
// root.
var tpmVendor = sync.OnceValue(func() *forge.TPMCA {
	ca, err := forge.NewTPMCA("Test TPM Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
	if err != nil {
		panic(err)
	}
	return ca
})

// pc is a PC with a simulated TPM, enrolling through a test engine.
type pc struct {
	t       *testing.T
	env     *testEnv
	sim     *tpmsim.TPM
	ek      goattest.EK
	ekCert  []byte
	issuers [][]byte
}

// newPC opens the simulator (one per process: tests that use it run one
// after the other) with an EK certificate from the test vendor, and an
// engine whose tenant "pc" accepts TPMs of that vendor.
func newPC(t *testing.T, edit ...func(*Config)) *pc {
	t.Helper()
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ek, err := sim.EK()
	if err != nil {
		t.Fatal(err)
	}
	vendor := tpmVendor()
	cert, err := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	edit = append([]func(*Config){func(c *Config) { c.Roots[rootTPMVendor] = []*x509.Certificate{vendor.Root} }}, edit...)
	env := newEnv(t, edit...)
	env.tenant("pc", tpmTestPolicy())
	env.user("pc", "u1", "alice@pc.example")
	return &pc{t: t, env: env, sim: sim, ek: ek, ekCert: cert, issuers: [][]byte{vendor.Intermediate.Raw}}
}

func tpmTestPolicy() Policy {
	p := testPolicy()
	p.Backoff.Free = 100
	p.Attestation.TPM = &TPMPolicy{ExtraRoots: []string{rootTPMVendor}}
	return p
}

// simAK is an attestation key of the simulator, kept outside it: the
// simulated TPM holds three loaded objects, so an AK or a key is loaded
// only while the TPM uses it.
type simAK struct {
	p      *pc
	blob   []byte
	params goattest.AttestationParameters
}

func (p *pc) newAK(alg goattest.Algorithm) *simAK {
	p.t.Helper()
	ak, err := p.sim.TPM.NewAK(&goattest.AKConfig{Algorithm: alg})
	if err != nil {
		p.t.Fatal(err)
	}
	defer ak.Close(p.sim.TPM)
	blob, err := ak.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	return &simAK{p: p, blob: blob, params: ak.AttestationParameters()}
}

func (a *simAK) load() *goattest.AK {
	a.p.t.Helper()
	ak, err := a.p.sim.TPM.LoadAK(a.blob)
	if err != nil {
		a.p.t.Fatal(err)
	}
	return ak
}

func (a *simAK) akParameters() TPMAKParameters {
	return TPMAKParameters{Public: a.params.Public, CreateData: a.params.CreateData, CreateAttestation: a.params.CreateAttestation, CreateSignature: a.params.CreateSignature}
}

func (p *pc) request(enrollment string, ak *simAK) TPMActivationRequest {
	return TPMActivationRequest{Enrollment: enrollment, EKCertificate: p.ekCert, EKIssuers: p.issuers, AK: ak.akParameters()}
}

// recover has the TPM recover an activation's secret with ak.
func (a *simAK) recover(act *TPMActivation) []byte {
	a.p.t.Helper()
	ak := a.load()
	defer ak.Close(a.p.sim.TPM)
	secret, err := ak.ActivateCredential(a.p.sim.TPM, goattest.EncryptedCredential{Credential: act.Credential, Secret: act.Secret})
	if err != nil {
		a.p.t.Fatal(err)
	}
	return secret
}

// activate runs the activation of ak for an enrollment.
func (p *pc) activate(enrollment string, ak *simAK) (*TPMAK, error) {
	p.t.Helper()
	act, err := p.env.e.StartTPMActivation(ctx, p.request(enrollment, ak))
	if err != nil {
		return nil, err
	}
	return p.env.e.CompleteTPMActivation(ctx, enrollment, ak.recover(act))
}

// simKey is a sign-in key of the simulator, kept outside it.
type simKey struct {
	p     *pc
	blob  []byte
	pub   crypto.PublicKey
	certs Evidence // its certification: public, create_attestation, create_signature
}

// newKey creates a sign-in key under ak with the challenge as qualifying
// data, as go-attestation does on a PC.
func (a *simAK) newKey(cfg goattest.KeyConfig, challenge []byte) *simKey {
	a.p.t.Helper()
	ak := a.load()
	defer ak.Close(a.p.sim.TPM)
	cfg.QualifyingData = challenge
	key, err := a.p.sim.TPM.NewKey(ak, &cfg)
	if err != nil {
		a.p.t.Fatal(err)
	}
	defer key.Close()
	blob, err := key.Marshal()
	if err != nil {
		a.p.t.Fatal(err)
	}
	c := key.CertificationParameters()
	return &simKey{p: a.p, blob: blob, pub: key.Public(), certs: Evidence{"public": c.Public, "create_attestation": c.CreateAttestation, "create_signature": c.CreateSignature}}
}

func (k *simKey) certification() Evidence {
	ev := Evidence{}
	for n, v := range k.certs {
		ev[n] = v
	}
	return ev
}

// sign has the TPM sign digest with the key (go-attestation's signer).
func (k *simKey) sign(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key, err := k.p.sim.TPM.LoadKey(k.blob)
	if err != nil {
		return nil, err
	}
	defer key.Close()
	priv, err := key.Private(key.Public())
	if err != nil {
		return nil, err
	}
	return priv.(crypto.Signer).Sign(rand.Reader, digest, opts)
}

// Public and Sign make a simKey a crypto.Signer (loading it for each
// signature).
func (k *simKey) Public() crypto.PublicKey { return k.pub }
func (k *simKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.sign(digest, opts)
}

// enroll runs the three steps for user u1 of tenant pc.
func (p *pc) enroll(ak *simAK, cfg goattest.KeyConfig) (*Credential, *simKey, error) {
	p.t.Helper()
	enr, err := p.env.e.StartEnrollment(ctx, "pc", "u1")
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.activate(enr.ID, ak); err != nil {
		return nil, nil, err
	}
	key := ak.newKey(cfg, enr.Challenge)
	cred, err := p.env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatTPM, Evidence: key.certification()})
	return cred, key, err
}

// TestTPMEndToEnd enrolls TPM keys of each kind through the three steps,
// checks what is stored, re-verifies the evidence, and answers sign-ins
// with signatures the TPM makes: ECDSA P-256 and P-384, RSA with PKCS #1
// v1.5 and with PSS.
func TestTPMEndToEnd(t *testing.T) {
	p := newPC(t)
	env := p.env
	ecdsaAK, rsaAK := p.newAK(goattest.ECDSA), p.newAK(goattest.RSA)
	cases := []struct {
		name string
		ak   *simAK
		cfg  goattest.KeyConfig
		pss  bool
		alg  string
	}{
		{"ecdsa-p256", ecdsaAK, goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 256}, false, "ecdsa-p256"},
		{"ecdsa-p384", ecdsaAK, goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 384}, false, "ecdsa-p384"},
		{"rsa-pkcs1", rsaAK, goattest.KeyConfig{Algorithm: goattest.RSA, Size: 2048}, false, "rsa-2048"},
		{"rsa-pss", rsaAK, goattest.KeyConfig{Algorithm: goattest.RSA, Size: 2048}, true, "rsa-2048"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.t = t
			cred, key, err := p.enroll(c.ak, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			spki, _ := x509.MarshalPKIXPublicKey(key.Public())
			if cred.Format != FormatTPM || cred.Trust != "hardware" || cred.Root != "Test TPM Vendor Root CA" || !bytes.Equal(cred.PublicKey, spki) {
				t.Fatalf("credential %+v", cred)
			}
			facts := map[string]any{}
			if err := json.Unmarshal(cred.Facts, &facts); err != nil || facts["public_key_algorithm"] != c.alg || facts["ek_trust"] != EKTrustCertificate {
				t.Errorf("facts %s", cred.Facts)
			}
			ekSPKI, _ := x509.MarshalPKIXPublicKey(p.ek.Public)
			if h := sha256.Sum256(ekSPKI); facts["ek_sha256"] != hex.EncodeToString(h[:]) {
				t.Errorf("ek_sha256 %v", facts["ek_sha256"])
			}
			dev, err := env.e.GetDevice(ctx, "pc", cred.Device)
			if err != nil || dev.Platform != PlatformWindows {
				t.Fatalf("device %+v %v", dev, err)
			}
			// The evidence holds the certification and what the activation
			// proved, so that it verifies again later.
			ev, err := env.e.CredentialEvidence(ctx, "pc", cred.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, part := range []string{"public", "create_attestation", "create_signature", "ak", "ak_public", "ak_create_data", "ak_create_attestation", "ak_create_signature", "ek_certificate", "ek_issuers"} {
				if len(ev[part]) == 0 {
					t.Errorf("stored evidence has no %s", part)
				}
			}
			if v, err := env.e.ReverifyCredential(ctx, "pc", cred.ID); err != nil || v.Root != cred.Root {
				t.Errorf("ReverifyCredential: %v", err)
			}

			// A sign-in, approved with a signature the TPM makes.
			s := env.start("pc", "alice@pc.example")
			pend, err := env.e.PendingSignIn(ctx, cred.ID)
			if err != nil {
				t.Fatal(err)
			}
			msg := AnswerMessage(AnswerFields{Attempt: pend.Attempt, Tenant: "pc", User: "u1", Credential: cred.ID, Nonce: pend.Nonce, Decision: DecisionApprove, Number: s.Number})
			var sig []byte
			if c.pss {
				h := sha256.Sum256(msg)
				sig, err = key.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
				if err == nil && rsa.VerifyPKCS1v15(key.Public().(*rsa.PublicKey), crypto.SHA256, h[:], sig) == nil {
					t.Fatal("the PSS signature is PKCS #1 v1.5")
				}
			} else {
				sig, err = SignAnswer(key, msg)
			}
			if err != nil {
				t.Fatal(err)
			}
			bad := slices.Clone(sig)
			bad[len(bad)/2] ^= 1
			_, err = env.e.AnswerSignIn(ctx, Answer{Attempt: pend.Attempt, Credential: cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: bad})
			wantCode(t, err, CodeSignInSignature)
			out, err := env.e.AnswerSignIn(ctx, Answer{Attempt: pend.Attempt, Credential: cred.ID, Decision: DecisionApprove, Number: s.Number, Signature: sig})
			if err != nil || out.State != StateApproved {
				t.Fatalf("answer: %+v %v", out, err)
			}
		})
	}
	p.t = t
	creds, _ := env.e.ListCredentials(ctx, "pc", "u1")
	if len(creds) != len(cases) {
		t.Fatalf("%d credentials", len(creds))
	}
	events := env.auditEvents("pc", "u1")
	for _, want := range []string{"enroll.tpm_activation_started", "enroll.tpm_activated", "enroll.completed", "signin.approved"} {
		if !slices.Contains(events, want) {
			t.Errorf("audit has no %s: %v", want, events)
		}
	}
	// The stored evidence is checked under the policy of now: an EK no
	// longer trusted fails the re-verification.
	pol := tpmTestPolicy()
	pol.Attestation.TPM = &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: []string{hex.EncodeToString(make([]byte, 32))}}
	if _, err := env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: pol}); err != nil {
		t.Fatal(err)
	}
	_, err := env.e.ReverifyCredential(ctx, "pc", creds[0].ID)
	wantCode(t, err, Code(tpm.CodeEKNotAllowed))
}

// TestTPMVendorRoots: the server's TPM vendor roots serve every tenant that
// trusts EK certificates, without naming them.
func TestTPMVendorRoots(t *testing.T) {
	p := newPC(t, func(c *Config) { c.TPMVendorRoots = []*x509.Certificate{tpmVendor().Root} })
	pol := tpmTestPolicy()
	pol.Attestation.TPM = &TPMPolicy{}
	p.env.tenant("plain", pol)
	p.env.user("plain", "u1", "bob@plain.example")
	ak := p.newAK(goattest.ECDSA)
	enr, _ := p.env.e.StartEnrollment(ctx, "plain", "u1")
	got, err := p.activate(enr.ID, ak)
	if err != nil {
		t.Fatal(err)
	}
	if got.Root != "Test TPM Vendor Root CA" || !bytes.Equal(got.Public, ak.params.Public) || got.Enrollment != enr.ID || !got.ActivatedAt.Equal(t0) {
		t.Errorf("activated AK %+v", got)
	}
}

// TestTPMAllowList: under ek_trust allow_list, a PC without an EK
// certificate enrolls when the hash of its EK is listed, and is refused
// when it is not.
func TestTPMAllowList(t *testing.T) {
	p := newPC(t)
	spki, _ := x509.MarshalPKIXPublicKey(p.ek.Public)
	h := sha256.Sum256(spki)
	for _, c := range []struct {
		list []string
		code Code
	}{
		{[]string{hex.EncodeToString(make([]byte, 32)), hex.EncodeToString(h[:])}, ""},
		{[]string{hex.EncodeToString(make([]byte, 32))}, Code(tpm.CodeEKNotAllowed)},
	} {
		pol := tpmTestPolicy()
		pol.Attestation.TPM = &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: c.list}
		if _, err := p.env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: pol}); err != nil {
			t.Fatal(err)
		}
		ak := p.newAK(goattest.ECDSA)
		enr, _ := p.env.e.StartEnrollment(ctx, "pc", "u1")
		req := p.request(enr.ID, ak)
		req.EKCertificate, req.EKIssuers, req.EKPublic = nil, nil, spki
		act, err := p.env.e.StartTPMActivation(ctx, req)
		if c.code != "" {
			wantCode(t, err, c.code)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.env.e.CompleteTPMActivation(ctx, enr.ID, ak.recover(act))
		if err != nil || got.Root != "ek-allowlist" {
			t.Fatalf("%+v %v", got, err)
		}
		key := ak.newKey(goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 256}, enr.Challenge)
		cred, err := p.env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatTPM, Evidence: key.certification()})
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := p.env.e.CredentialEvidence(ctx, "pc", cred.ID)
		if len(ev["ek_public"]) == 0 || len(ev["ek_certificate"]) != 0 {
			t.Errorf("evidence parts %v", slices.Sorted(func(yield func(string) bool) {
				for k := range ev {
					if !yield(k) {
						return
					}
				}
			}))
		}
		if _, err := p.env.e.ReverifyCredential(ctx, "pc", cred.ID); err != nil {
			t.Errorf("ReverifyCredential: %v", err)
		}
	}
}

// TestTPMActivationRefusals: one refusal per code of the activation.
func TestTPMActivationRefusals(t *testing.T) {
	p := newPC(t)
	env := p.env
	ak := p.newAK(goattest.ECDSA)
	open := func() *Enrollment {
		t.Helper()
		enr, err := env.e.StartEnrollment(ctx, "pc", "u1")
		if err != nil {
			t.Fatal(err)
		}
		return enr
	}

	t.Run("wrong secret", func(t *testing.T) {
		enr := open()
		act, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		secret := ak.recover(act)
		wrong := slices.Clone(secret)
		wrong[0] ^= 1
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, wrong)
		wantCode(t, err, Code(tpm.CodeActivationMismatch))
		// The wrong answer used the activation up: the right one finds none.
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, secret)
		wantCode(t, err, CodeTPMNoActivation)
		// A new activation can be started and answered.
		if _, err := p.activate(enr.ID, ak); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("reused concurrently", func(t *testing.T) {
		enr := open()
		act, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		secret := ak.recover(act)
		const n = 16
		var wins, used atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := env.e.CompleteTPMActivation(ctx, enr.ID, secret)
				switch {
				case err == nil:
					wins.Add(1)
				case CodeOf(err) == Code(tpm.CodeActivationUsed) && KindOf(err) == KindConflict:
					used.Add(1)
				default:
					t.Errorf("answer: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || used.Load() != n-1 {
			t.Fatalf("%d answers won and %d were refused as used, want 1 and %d", wins.Load(), used.Load(), n-1)
		}
		// Activated: no second activation for this enrollment.
		_, err = env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		wantCode(t, err, CodeTPMActivated)
	})

	t.Run("expired", func(t *testing.T) {
		enr := open()
		act, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		if !act.ExpiresAt.Equal(env.clock.Now().Add(tpm.DefaultActivationTTL)) {
			t.Errorf("expires %v", act.ExpiresAt)
		}
		secret := ak.recover(act)
		env.clock.Advance(tpm.DefaultActivationTTL + time.Second)
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, secret)
		wantCode(t, err, Code(tpm.CodeActivationExpired))
		if KindOf(err) != KindGone {
			t.Errorf("kind %v", KindOf(err))
		}
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, secret)
		wantCode(t, err, CodeTPMNoActivation)
	})

	t.Run("never started", func(t *testing.T) {
		_, err := env.e.CompleteTPMActivation(ctx, open().ID, []byte("secret"))
		wantCode(t, err, CodeTPMNoActivation)
	})

	t.Run("a new activation replaces the pending one", func(t *testing.T) {
		enr := open()
		first, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		second, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, ak.recover(first))
		wantCode(t, err, Code(tpm.CodeActivationMismatch))
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, ak.recover(second))
		wantCode(t, err, CodeTPMNoActivation)
	})

	t.Run("untrusted EK", func(t *testing.T) {
		other, err := forge.NewTPMCA("Other TPM Vendor", t0.AddDate(-5, 0, 0), t0.AddDate(20, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := other.EKCertificate(p.ek.Public, forge.SimulatorDevice, t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
		req := p.request(open().ID, ak)
		req.EKCertificate, req.EKIssuers = cert, [][]byte{other.Intermediate.Raw}
		_, err = env.e.StartTPMActivation(ctx, req)
		wantCode(t, err, Code(tpm.CodeChainUntrustedRoot))
	})

	t.Run("expired EK certificate", func(t *testing.T) {
		cert, _ := tpmVendor().EKCertificate(p.ek.Public, forge.SimulatorDevice, t0.AddDate(-3, 0, 0), t0.AddDate(0, -1, 0))
		req := p.request(open().ID, ak)
		req.EKCertificate = cert
		_, err := env.e.StartTPMActivation(ctx, req)
		wantCode(t, err, Code(tpm.CodeChainExpired))
	})

	t.Run("no EK certificate", func(t *testing.T) {
		req := p.request(open().ID, ak)
		spki, _ := x509.MarshalPKIXPublicKey(p.ek.Public)
		req.EKCertificate, req.EKIssuers, req.EKPublic = nil, nil, spki
		_, err := env.e.StartTPMActivation(ctx, req)
		wantCode(t, err, Code(tpm.CodeEKCertificateMiss))
	})

	t.Run("EK public key of another TPM", func(t *testing.T) {
		req := p.request(open().ID, ak)
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		req.EKPublic, _ = x509.MarshalPKIXPublicKey(&other.PublicKey)
		_, err := env.e.StartTPMActivation(ctx, req)
		wantCode(t, err, Code(tpm.CodeEKMismatch))
	})

	t.Run("malformed AK", func(t *testing.T) {
		req := p.request(open().ID, ak)
		req.AK.Public = append(slices.Clone(req.AK.Public), 0)
		_, err := env.e.StartTPMActivation(ctx, req)
		wantCode(t, err, Code(tpm.CodeMalformedPublic))
	})

	t.Run("input", func(t *testing.T) {
		enr := open()
		for name, req := range map[string]TPMActivationRequest{
			"no AK":        {Enrollment: enr.ID, EKCertificate: p.ekCert},
			"enrollment":   {Enrollment: "", AK: p.request(enr.ID, ak).AK},
			"issuers":      {Enrollment: enr.ID, EKCertificate: p.ekCert, EKIssuers: make([][]byte, MaxEKIssuers+1), AK: p.request(enr.ID, ak).AK},
			"not DER":      {Enrollment: enr.ID, EKCertificate: p.ekCert, EKIssuers: [][]byte{[]byte("pem?")}, AK: p.request(enr.ID, ak).AK},
			"too much":     {Enrollment: enr.ID, EKCertificate: make([]byte, MaxEvidence), AK: p.request(enr.ID, ak).AK},
			"empty issuer": {Enrollment: enr.ID, EKCertificate: p.ekCert, EKIssuers: [][]byte{nil}, AK: p.request(enr.ID, ak).AK},
		} {
			if _, err := env.e.StartTPMActivation(ctx, req); CodeOf(err) != CodeInvalid {
				t.Errorf("%s: %v", name, err)
			}
		}
		for name, secret := range map[string][]byte{"empty": nil, "long": make([]byte, MaxTPMSecret+1)} {
			if _, err := env.e.CompleteTPMActivation(ctx, enr.ID, secret); CodeOf(err) != CodeInvalid {
				t.Errorf("secret %s: %v", name, err)
			}
		}
		_, err := env.e.StartTPMActivation(ctx, p.request("no-such-enrollment", ak))
		wantCode(t, err, CodeEnrollNotFound)
	})

	t.Run("enrollment used or expired", func(t *testing.T) {
		enr := open()
		act, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		// The enrollment completes with another format: the activation can
		// no longer be answered.
		ev, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
		cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, ak.recover(act))
		wantCode(t, err, CodeEnrollUsed)
		_, err = env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		wantCode(t, err, CodeEnrollUsed)
		env.e.DeleteCredential(ctx, "pc", cred.ID)

		enr = open()
		env.clock.Advance(EnrollmentLifetime)
		_, err = env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		wantCode(t, err, CodeEnrollExpired)
	})

	t.Run("policy checked again", func(t *testing.T) {
		enr := open()
		act, err := env.e.StartTPMActivation(ctx, p.request(enr.ID, ak))
		if err != nil {
			t.Fatal(err)
		}
		pol := tpmTestPolicy()
		pol.Attestation.TPM = nil
		env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: pol})
		defer env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: tpmTestPolicy()})
		_, err = env.e.CompleteTPMActivation(ctx, enr.ID, ak.recover(act))
		wantCode(t, err, CodeEnrollFormat)
	})

	// Refusals are in the audit log, without secrets.
	events := env.auditEvents("pc", "u1")
	for _, want := range []string{"enroll.refused:" + string(tpm.CodeActivationMismatch), "enroll.refused:" + string(tpm.CodeActivationExpired), "enroll.refused:" + string(tpm.CodeChainUntrustedRoot)} {
		if !slices.Contains(events, want) {
			t.Errorf("audit has no %s: %v", want, events)
		}
	}
}

// TestTPMCertificationRefusals: one refusal per code of the certification
// step, each on a freshly activated enrollment.
func TestTPMCertificationRefusals(t *testing.T) {
	p := newPC(t)
	env := p.env
	ak := p.newAK(goattest.ECDSA)
	other := p.newAK(goattest.ECDSA)
	activated := func() *Enrollment {
		t.Helper()
		enr, err := env.e.StartEnrollment(ctx, "pc", "u1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.activate(enr.ID, ak); err != nil {
			t.Fatal(err)
		}
		return enr
	}
	complete := func(enr *Enrollment, ev Evidence) error {
		_, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatTPM, Evidence: ev})
		return err
	}
	ecdsa256 := goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 256}

	// Certified by another AK than the activated one.
	enr := activated()
	wantCode(t, complete(enr, other.newKey(ecdsa256, enr.Challenge).certification()), Code(tpm.CodeBadSignature))
	// ... naming that AK.
	enr = activated()
	ev := other.newKey(ecdsa256, enr.Challenge).certification()
	ev["ak_public"] = other.params.Public
	wantCode(t, complete(enr, ev), CodeTPMAKMismatch)
	// Naming the activated AK is accepted.
	enr = activated()
	ev = ak.newKey(ecdsa256, enr.Challenge).certification()
	ev["ak_public"] = ak.params.Public
	if err := complete(enr, ev); err != nil {
		t.Fatalf("naming the activated AK: %v", err)
	}
	// Certified for another challenge (a replayed certification).
	enr = activated()
	wantCode(t, complete(enr, ak.newKey(ecdsa256, []byte("another enrollment's challenge")).certification()), Code(tpm.CodeChallengeMismatch))
	// Another key's public area than the certified one.
	enr = activated()
	ev = ak.newKey(ecdsa256, enr.Challenge).certification()
	ev["public"] = ak.newKey(ecdsa256, enr.Challenge).certification()["public"]
	wantCode(t, complete(enr, ev), Code(tpm.CodeNameMismatch))
	// Parts missing or unknown.
	enr = activated()
	ev = ak.newKey(ecdsa256, enr.Challenge).certification()
	delete(ev, "create_signature")
	wantCode(t, complete(enr, ev), Code(CodeEvidence))
	enr = activated()
	ev = ak.newKey(ecdsa256, enr.Challenge).certification()
	ev["ak"] = []byte("an AK record from the PC")
	wantCode(t, complete(enr, ev), Code(CodeEvidence))
	// The challenge was used by each refusal.
	wantCode(t, complete(enr, ak.newKey(ecdsa256, enr.Challenge).certification()), CodeEnrollUsed)
	// The EK left the policy between the activation and the certification.
	enr = activated()
	pol := tpmTestPolicy()
	pol.Attestation.TPM = &TPMPolicy{EKTrust: EKTrustAllowList, EKAllowList: []string{hex.EncodeToString(make([]byte, 32))}}
	env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: pol})
	wantCode(t, complete(enr, ak.newKey(ecdsa256, enr.Challenge).certification()), Code(tpm.CodeEKNotAllowed))
	env.e.UpdateTenant(ctx, Tenant{ID: "pc", Policy: tpmTestPolicy()})

	creds, _ := env.e.ListCredentials(ctx, "pc", "u1")
	if len(creds) != 1 {
		t.Fatalf("%d credentials after the refusals, want 1", len(creds))
	}
}

// TestTPMAnswerScheme: a TPM key whose signing scheme is fixed to one
// answers cannot use is refused at enrollment.
func TestTPMAnswerScheme(t *testing.T) {
	rsaPub := func(s *tpm2.SigScheme) tpm2.Public {
		return tpm2.Public{Type: tpm2.AlgRSA, RSAParameters: &tpm2.RSAParams{Sign: s, KeyBits: 2048}}
	}
	eccPub := func(curve tpm2.EllipticCurve, s *tpm2.SigScheme) tpm2.Public {
		return tpm2.Public{Type: tpm2.AlgECC, ECCParameters: &tpm2.ECCParams{Sign: s, CurveID: curve}}
	}
	for _, c := range []struct {
		pub tpm2.Public
		ok  bool
	}{
		{rsaPub(nil), true},
		{rsaPub(&tpm2.SigScheme{Alg: tpm2.AlgNull}), true},
		{rsaPub(&tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}), true},
		{rsaPub(&tpm2.SigScheme{Alg: tpm2.AlgRSAPSS, Hash: tpm2.AlgSHA256}), true},
		{rsaPub(&tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA1}), false},
		{rsaPub(&tpm2.SigScheme{Alg: tpm2.AlgRSAPSS, Hash: tpm2.AlgSHA384}), false},
		{eccPub(tpm2.CurveNISTP256, &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256}), true},
		{eccPub(tpm2.CurveNISTP384, &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA384}), true},
		{eccPub(tpm2.CurveNISTP384, &tpm2.SigScheme{Alg: tpm2.AlgNull}), true},
		{eccPub(tpm2.CurveNISTP256, &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA384}), false},
		{eccPub(tpm2.CurveNISTP256, &tpm2.SigScheme{Alg: tpm2.AlgECDAA, Hash: tpm2.AlgSHA256}), false},
	} {
		err := tpmAnswerScheme(c.pub)
		if c.ok != (err == nil) || (err != nil && CodeOf(err) != CodeEnrollUnsupportedKey) {
			t.Errorf("%+v %+v: %v", c.pub.RSAParameters, c.pub.ECCParameters, err)
		}
	}
}
