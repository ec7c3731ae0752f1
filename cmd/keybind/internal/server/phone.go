package server

import (
	"strconv"
	"time"

	"github.com/keybind/keybind/engine"
	"github.com/valyala/fasthttp"
)

// The phone's routes. Enrollment routes need no key: the enrollment id,
// which only the auth server and the phone know, names the challenge the
// attestation must answer. Sign-in routes are signed requests: the phone
// signs each request with its enrolled credential key (see
// engine.RequestMessage) and sends the proof in these headers.
const (
	// HeaderCredential is the id of the credential whose key signs.
	HeaderCredential = "Keybind-Credential"
	// HeaderTimestamp is the request time in Unix seconds (decimal).
	HeaderTimestamp = "Keybind-Timestamp"
	// HeaderNonce is 16 to 64 random bytes, base64url.
	HeaderNonce = "Keybind-Nonce"
	// HeaderSignature is the signature over the request message (an App
	// Attest assertion; a WebAuthn assertion's signature), base64.
	HeaderSignature = "Keybind-Signature"
	// HeaderAuthenticatorData and HeaderClientData are the rest of a
	// WebAuthn credential's assertion (authenticatorData, clientDataJSON),
	// base64; absent for other credentials.
	HeaderAuthenticatorData = "Keybind-Authenticator-Data"
	HeaderClientData        = "Keybind-Client-Data"
)

// EvidenceRequest is the body of POST /v1/enrollments/{enrollment}/attestation:
// the attestation format and its parts, by the names of VECTORS.md
// (android-key: chain; apple-appattest: attestation, key_id; tpm: public,
// create_attestation, create_signature and optionally ak_public; webauthn:
// attestation_object, client_data_json), and the device id a previous
// enrollment of the device returned (empty for a new device).
type EvidenceRequest struct {
	Format   string           `json:"format"`
	Evidence map[string]Bytes `json:"evidence"`
	Device   string           `json:"device,omitempty"`
}

// TPMActivationRequest is the body of POST
// /v1/enrollments/{enrollment}/tpm/activation: the PC's EK and its new AK
// (go-attestation's AttestationParameters).
type TPMActivationRequest struct {
	EKCertificate Bytes           `json:"ek_certificate,omitempty"`
	EKIssuers     []Bytes         `json:"ek_issuers,omitempty"`
	EKPublic      Bytes           `json:"ek_public,omitempty"`
	AK            TPMAKParameters `json:"ak"`
}

// TPMAKParameters are an AK's parameters.
type TPMAKParameters struct {
	Public            Bytes `json:"public"`
	CreateData        Bytes `json:"create_data"`
	CreateAttestation Bytes `json:"create_attestation"`
	CreateSignature   Bytes `json:"create_signature"`
}

// TPMActivation is the activation challenge: go-attestation's
// EncryptedCredential, answered by POST …/tpm/activation/answer before
// ExpiresAt.
type TPMActivation struct {
	Enrollment string    `json:"enrollment"`
	Credential Bytes     `json:"credential"`
	Secret     Bytes     `json:"secret"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// TPMActivationAnswer is the body of POST …/tpm/activation/answer: the
// secret the TPM recovered.
type TPMActivationAnswer struct {
	Secret Bytes `json:"secret"`
}

// TPMActivated is the answer of a successful activation.
type TPMActivated struct {
	Enrollment  string    `json:"enrollment"`
	EKSHA256    Bytes     `json:"ek_sha256"`
	Root        string    `json:"root"`
	ActivatedAt time.Time `json:"activated_at"`
}

// PendingSignIns is the answer of GET /v1/phone/signins: the attempts the
// credential should answer (at most one: a user has one pending attempt).
type PendingSignIns struct {
	Attempts []PendingSignIn `json:"attempts"`
}

// PendingSignIn is an attempt as the phone shows it.
type PendingSignIn struct {
	Attempt    string               `json:"attempt"`
	Tenant     string               `json:"tenant"`
	User       string               `json:"user"`
	UPN        string               `json:"upn"`
	Credential string               `json:"credential"`
	Nonce      Bytes                `json:"nonce"`
	Mode       string               `json:"mode"`
	Choices    []int                `json:"choices,omitempty"`
	Context    engine.SignInContext `json:"context"`
	ExpiresAt  time.Time            `json:"expires_at"`
}

// AnswerRequest is the body of POST /v1/phone/signins/{attempt}/answer.
type AnswerRequest struct {
	// Decision is approve, deny or fraud; Number the number typed or
	// chosen (approve only).
	Decision string `json:"decision"`
	Number   int    `json:"number,omitempty"`
	// Signature is over engine.AnswerMessage (an App Attest assertion; a
	// WebAuthn assertion's signature, with AuthenticatorData and
	// ClientDataJSON).
	Signature         Bytes `json:"signature"`
	AuthenticatorData Bytes `json:"authenticator_data,omitempty"`
	ClientDataJSON    Bytes `json:"client_data_json,omitempty"`
}

func (a *engineAPI) registerPhone() {
	limit := a.cfg.PhoneBodyLimit
	a.handle(Route{Method: "POST", Path: "/v1/enrollments/{enrollment}/attestation", Name: "enrollment.attest", BodyLimit: limit, Handler: a.attest})
	a.handle(Route{Method: "POST", Path: "/v1/enrollments/{enrollment}/tpm/activation", Name: "enrollment.tpm_activation", BodyLimit: limit, Handler: a.tpmActivation})
	a.handle(Route{Method: "POST", Path: "/v1/enrollments/{enrollment}/tpm/activation/answer", Name: "enrollment.tpm_answer", Handler: a.tpmAnswer})
	a.handle(Route{Method: "GET", Path: "/v1/phone/signins", Name: "phone.pending", Handler: a.signed(a.pending)})
	a.handle(Route{Method: "POST", Path: "/v1/phone/signins/{attempt}/answer", Name: "phone.answer", Handler: a.signed(a.answer)})
}

func (a *engineAPI) attest(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := a.phoneAllowed("enrollment", c.Param("enrollment")); err != nil {
		return err
	}
	var req EvidenceRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	ev := engine.Evidence{}
	for name, v := range req.Evidence {
		ev[name] = v
	}
	cred, err := a.e.CompleteEnrollment(c.Context(), engine.EnrollRequest{Enrollment: c.Param("enrollment"), Format: req.Format, Evidence: ev, Device: req.Device})
	if err != nil {
		return err
	}
	return created(c, viewCredential(cred))
}

func (a *engineAPI) tpmActivation(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := a.phoneAllowed("enrollment", c.Param("enrollment")); err != nil {
		return err
	}
	var req TPMActivationRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	issuers := make([][]byte, len(req.EKIssuers))
	for i, b := range req.EKIssuers {
		issuers[i] = b
	}
	act, err := a.e.StartTPMActivation(c.Context(), engine.TPMActivationRequest{
		Enrollment: c.Param("enrollment"), EKCertificate: req.EKCertificate, EKIssuers: issuers, EKPublic: req.EKPublic,
		AK: engine.TPMAKParameters{Public: req.AK.Public, CreateData: req.AK.CreateData, CreateAttestation: req.AK.CreateAttestation, CreateSignature: req.AK.CreateSignature},
	})
	if err != nil {
		return err
	}
	return ok(c, TPMActivation{Enrollment: act.Enrollment, Credential: act.Credential, Secret: act.Secret, ExpiresAt: act.ExpiresAt})
}

func (a *engineAPI) tpmAnswer(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := a.phoneAllowed("enrollment", c.Param("enrollment")); err != nil {
		return err
	}
	var req TPMActivationAnswer
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	ak, err := a.e.CompleteTPMActivation(c.Context(), c.Param("enrollment"), req.Secret)
	if err != nil {
		return err
	}
	return ok(c, TPMActivated{Enrollment: ak.Enrollment, EKSHA256: ak.EKSHA256, Root: ak.Root, ActivatedAt: ak.ActivatedAt})
}

// signed authenticates a device request before h runs; h finds the
// credential in c.device.
func (a *engineAPI) signed(h func(c *Ctx, cred *engine.Credential) error) Handler {
	return func(c *Ctx) error {
		req, err := deviceRequest(c)
		if err != nil {
			return err
		}
		if err := a.phoneAllowed("credential", req.Credential); err != nil {
			return err
		}
		cred, err := a.e.AuthenticateRequest(c.Context(), req)
		if err != nil {
			if engine.KindOf(err) == engine.KindUnauthenticated {
				c.rc.Response.Header.Set("WWW-Authenticate", `Keybind-Device realm="keybind"`)
			}
			return err
		}
		return h(c, cred)
	}
}

// deviceRequest reads a signed request's headers.
func deviceRequest(c *Ctx) (engine.DeviceRequest, error) {
	h := &c.rc.Request.Header
	cred, ts, nonce, sig := h.Peek(HeaderCredential), h.Peek(HeaderTimestamp), h.Peek(HeaderNonce), h.Peek(HeaderSignature)
	if len(cred) == 0 || len(ts) == 0 || len(nonce) == 0 || len(sig) == 0 {
		c.rc.Response.Header.Set("WWW-Authenticate", `Keybind-Device realm="keybind"`)
		return engine.DeviceRequest{}, Problemf(fasthttp.StatusUnauthorized, CodeUnauthenticated,
			"this route needs a request signed by the device: headers %s, %s, %s and %s", HeaderCredential, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	at, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil || len(ts) > 19 || ts[0] == '+' {
		return engine.DeviceRequest{}, Problemf(fasthttp.StatusBadRequest, CodeHeader, "%s: want Unix seconds in decimal", HeaderTimestamp)
	}
	r := engine.DeviceRequest{RequestFields: engine.RequestFields{
		Method: string(c.rc.Method()), Target: string(c.rc.RequestURI()), Credential: string(cred), Timestamp: at,
		Body: c.rc.Request.Body(),
	}}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{
		{HeaderNonce, &r.Nonce}, {HeaderSignature, &r.Proof.Signature},
		{HeaderAuthenticatorData, &r.Proof.AuthenticatorData}, {HeaderClientData, &r.Proof.ClientDataJSON},
	} {
		v := h.Peek(f.name)
		if v == nil {
			continue
		}
		d, ok := decodeBase64(v)
		if !ok {
			return engine.DeviceRequest{}, Problemf(fasthttp.StatusBadRequest, CodeHeader, "%s: not base64", f.name)
		}
		*f.dst = d
	}
	return r, nil
}

func (a *engineAPI) pending(c *Ctx, cred *engine.Credential) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	out := PendingSignIns{Attempts: []PendingSignIn{}}
	p, err := a.e.PendingSignIn(c.Context(), cred.ID)
	switch {
	case engine.CodeOf(err) == engine.CodeSignInNone:
	case err != nil:
		return err
	default:
		out.Attempts = append(out.Attempts, PendingSignIn{
			Attempt: p.Attempt, Tenant: p.Tenant, User: p.User, UPN: p.UPN, Credential: p.Credential, Nonce: p.Nonce,
			Mode: p.Mode, Choices: p.Choices, Context: p.Context, ExpiresAt: p.ExpiresAt,
		})
	}
	return ok(c, out)
}

// answer applies the phone's answer. An attempt that was not sent to the
// signing credential is answered as an unknown one, so that a phone learns
// nothing of other users' or tenants' attempts.
func (a *engineAPI) answer(c *Ctx, cred *engine.Credential) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	var req AnswerRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	out, err := a.e.AnswerSignIn(c.Context(), engine.Answer{
		Attempt: c.Param("attempt"), Credential: cred.ID, Decision: req.Decision, Number: req.Number,
		Signature: req.Signature, AuthenticatorData: req.AuthenticatorData, ClientDataJSON: req.ClientDataJSON,
	})
	if engine.CodeOf(err) == engine.CodeSignInCredential {
		return notFound(engine.CodeSignInNotFound)
	}
	if err != nil {
		return err
	}
	return ok(c, out)
}
