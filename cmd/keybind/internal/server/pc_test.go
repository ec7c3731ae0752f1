package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"sync"
	"testing"
	"time"

	goattest "github.com/google/go-attestation/attest"
	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
	"github.com/keybind/keybind/testvectors/forge/tpmsim"
)

const rootTPMVendor = "forge-tpm-vendor"

// tpmKey is a sign-in key of the TPM simulator, loaded for each signature
// (the simulator holds few loaded objects).
type tpmKey struct {
	tpm  *goattest.TPM
	blob []byte
	pub  crypto.PublicKey
}

func (k *tpmKey) Public() crypto.PublicKey { return k.pub }

func (k *tpmKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key, err := k.tpm.LoadKey(k.blob)
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

// TestTPMOverHTTP runs a PC's enrollment through the API on the TPM
// simulator — the AK's activation (its challenge recovered by the TPM), a
// key certified by the activated AK — then signs in with signatures the
// TPM makes, for the requests and the answer.
func TestTPMOverHTTP(t *testing.T) {
	sim, err := tpmsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ek, err := sim.EK()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	vendor, err := forge.NewTPMCA("Test TPM Vendor", now.AddDate(-5, 0, 0), now.AddDate(20, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ekCert, err := vendor.EKCertificate(ek.Public, forge.SimulatorDevice, now.AddDate(-1, 0, 0), now.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	env := newEngineEnv(t, Config{}, EngineConfig{}, func(c *engine.Config) {
		c.Roots[rootTPMVendor] = []*x509.Certificate{vendor.Root}
	})
	p := testPolicy()
	p.Attestation.TPM = &engine.TPMPolicy{ExtraRoots: []string{rootTPMVendor}}
	te := env.tenant("pc", p)
	env.user(te, "u1", "alice@pc.example")

	enr, err := te.auth.StartEnrollment(bg, "alice@pc.example", true)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := sim.TPM.NewAK(&goattest.AKConfig{Algorithm: goattest.ECDSA})
	if err != nil {
		t.Fatal(err)
	}
	defer ak.Close(sim.TPM)
	params := ak.AttestationParameters()
	req := client.TPMActivationRequest{EKCertificate: ekCert, EKIssuers: [][]byte{vendor.Intermediate.Raw},
		AK: engine.TPMAKParameters{Public: params.Public, CreateData: params.CreateData, CreateAttestation: params.CreateAttestation, CreateSignature: params.CreateSignature}}
	// A tpm attestation before the activation is refused (the challenge is
	// not used up).
	_, err = env.anon.Attest(bg, enr.ID, engine.FormatTPM, engine.Evidence{"public": {1}, "create_attestation": {1}, "create_signature": {1}}, "")
	wantProblem(t, err, 409, "enroll.tpm_not_activated")
	act, err := env.anon.StartTPMActivation(bg, enr.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ak.ActivateCredential(sim.TPM, goattest.EncryptedCredential{Credential: act.Credential, Secret: act.Secret})
	if err != nil {
		t.Fatal(err)
	}
	// A wrong secret uses the activation up.
	wrong := append([]byte(nil), secret...)
	wrong[0] ^= 1
	wantProblem(t, env.anon.CompleteTPMActivation(bg, enr.ID, wrong), 403, "tpm.activation_mismatch")
	wantProblem(t, env.anon.CompleteTPMActivation(bg, enr.ID, secret), 404, "enroll.tpm_no_activation")
	act, err = env.anon.StartTPMActivation(bg, enr.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if secret, err = ak.ActivateCredential(sim.TPM, goattest.EncryptedCredential{Credential: act.Credential, Secret: act.Secret}); err != nil {
		t.Fatal(err)
	}
	if err := env.anon.CompleteTPMActivation(bg, enr.ID, secret); err != nil {
		t.Fatal(err)
	}
	_, err = env.anon.StartTPMActivation(bg, enr.ID, req)
	wantProblem(t, err, 409, "enroll.tpm_activated")

	key, err := sim.TPM.NewKey(ak, &goattest.KeyConfig{Algorithm: goattest.ECDSA, Size: 256, QualifyingData: enr.Challenge})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := key.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cp := key.CertificationParameters()
	signer := &tpmKey{tpm: sim.TPM, blob: blob, pub: key.Public()}
	key.Close()
	cred, err := env.anon.Attest(bg, enr.ID, engine.FormatTPM, engine.Evidence{"public": cp.Public, "create_attestation": cp.CreateAttestation, "create_signature": cp.CreateSignature}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cred.Format != "tpm" || cred.Trust != "hardware" || cred.Root != "Test TPM Vendor Root CA" {
		t.Fatalf("credential %+v", cred)
	}
	pc := env.phone(cred, client.SignerProver{Signer: signer})
	start, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@pc.example"})
	if err != nil {
		t.Fatal(err)
	}
	pend, err := pc.Pending(bg)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending %+v %v", pend, err)
	}
	if out, err := pc.Answer(bg, pend[0], engine.DecisionApprove, start.Number); err != nil || out.State != "approved" {
		t.Fatalf("answer: %+v %v", out, err)
	}
	if d := decode[engine.Device](t, env.call(te.adminKey, "GET", "/v1/tenants/pc/devices/"+cred.Device, nil)); d.Platform != "windows" {
		t.Errorf("device %+v", d)
	}
}

// webauthnProver makes WebAuthn assertions: challenge SHA-256 of the
// message, a rising counter.
type webauthnProver struct {
	mu           sync.Mutex
	key          crypto.Signer
	rpID, origin string
	counter      uint32
}

func (w *webauthnProver) Prove(msg []byte) (engine.Proof, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counter++
	as, err := forge.WebAuthnAssert(w.key, forge.WebAuthnAssertOptions{RPID: w.rpID, Origin: w.origin, Challenge: engine.AnswerChallenge(msg), Alg: forge.COSEES256, Counter: w.counter})
	if err != nil {
		return engine.Proof{}, err
	}
	return engine.Proof{Signature: as.Signature, AuthenticatorData: as.AuthenticatorData, ClientDataJSON: as.ClientDataJSON}, nil
}

// TestWebAuthnOverHTTP registers a passkey (a WebAuthn attestation object
// of format none, under a policy that accepts software keys) and signs in
// with WebAuthn assertions, for the requests and the answer.
func TestWebAuthnOverHTTP(t *testing.T) {
	env := newEngineEnv(t, Config{}, EngineConfig{})
	const rpID, origin = "login.contoso.example", "https://login.contoso.example"
	p := testPolicy()
	p.Attestation.WebAuthn = &engine.WebAuthnPolicy{RPID: rpID, Origins: []string{origin}, AllowSoftwareKeys: true}
	te := env.tenant("web", p)
	env.user(te, "u1", "alice@web.example")
	enr, err := te.auth.StartEnrollment(bg, "u1", false)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cose, _ := forge.COSEKey(&key.PublicKey, forge.COSEES256)
	id := make([]byte, 32)
	rand.Read(id)
	reg := forge.WebAuthnRegistration{RPID: rpID, Origin: origin, Challenge: enr.Challenge, Flags: forge.WebAuthnFlags, Format: "none", CredentialID: id, CredentialKey: cose}
	object, clientData, err := reg.Build()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := env.anon.Attest(bg, enr.ID, engine.FormatWebAuthn, engine.Evidence{"attestation_object": object, "client_data_json": clientData}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cred.Format != "webauthn" || cred.Statement != "none" || cred.Trust != "none" || string(cred.WebAuthnID) != string(id) {
		t.Fatalf("credential %+v", cred)
	}
	prover := &webauthnProver{key: key, rpID: rpID, origin: origin}
	ph := env.phone(cred, prover)
	for range 2 {
		start, err := te.auth.StartSignIn(bg, client.SignInRequest{Username: "alice@web.example"})
		if err != nil {
			t.Fatal(err)
		}
		pend, err := ph.Pending(bg)
		if err != nil || len(pend) != 1 {
			t.Fatalf("pending %+v %v", pend, err)
		}
		if out, err := ph.Answer(bg, pend[0], engine.DecisionApprove, start.Number); err != nil || out.State != "approved" {
			t.Fatalf("answer: %+v %v", out, err)
		}
	}
	// An assertion for another origin signs no request.
	prover.origin = "https://evil.example"
	_, err = ph.Pending(bg)
	wantProblem(t, err, 401, "request.bad_signature")
}
