package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keybind/keybind/engine"
)

// The headers of a signed device request (see SignRequest).
const (
	HeaderCredential        = "Keybind-Credential"
	HeaderTimestamp         = "Keybind-Timestamp"
	HeaderNonce             = "Keybind-Nonce"
	HeaderSignature         = "Keybind-Signature"
	HeaderAuthenticatorData = "Keybind-Authenticator-Data"
	HeaderClientData        = "Keybind-Client-Data"
)

// Prover proves a message with a credential's key, as the server checks
// answers and signed requests: a signature by the key (ECDSA with the
// hash of its curve, RSA with SHA-256, Ed25519), an App Attest assertion
// whose client data is the message (with the next counter), or a WebAuthn
// assertion whose challenge is SHA-256 of the message
// (engine.AnswerChallenge). Provers of keys that count signatures must be
// used by one goroutine at a time, in the order the server sees the
// proofs.
type Prover interface {
	Prove(message []byte) (engine.Proof, error)
}

// ProverFunc adapts a function to Prover.
type ProverFunc func(message []byte) (engine.Proof, error)

func (f ProverFunc) Prove(message []byte) (engine.Proof, error) { return f(message) }

// SignerProver proves with a private key that signs plainly (an Android
// Keystore key, a TPM key, a software key in tests), by the rules of
// engine.SignAnswer.
type SignerProver struct{ Signer crypto.Signer }

func (s SignerProver) Prove(message []byte) (engine.Proof, error) {
	sig, err := engine.SignAnswer(s.Signer, message)
	return engine.Proof{Signature: sig}, err
}

// SignRequest signs req for the credential: it sets the timestamp (now),
// a new 16-byte nonce and the proof of engine.RequestMessage over the
// method, the request target (req.URL.RequestURI()), the credential, the
// timestamp, the nonce and the SHA-256 of body, which must be the bytes
// req sends.
func SignRequest(req *http.Request, body []byte, credential string, prover Prover, now time.Time) error {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	ts := now.Unix()
	msg := engine.RequestMessage(engine.RequestFields{
		Method: req.Method, Target: req.URL.RequestURI(), Credential: credential, Timestamp: ts, Nonce: nonce, Body: body,
	})
	proof, err := prover.Prove(msg)
	if err != nil {
		return err
	}
	req.Header.Set(HeaderCredential, credential)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderNonce, base64.RawURLEncoding.EncodeToString(nonce))
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(proof.Signature))
	if len(proof.AuthenticatorData) > 0 || len(proof.ClientDataJSON) > 0 {
		req.Header.Set(HeaderAuthenticatorData, base64.StdEncoding.EncodeToString(proof.AuthenticatorData))
		req.Header.Set(HeaderClientData, base64.StdEncoding.EncodeToString(proof.ClientDataJSON))
	}
	return nil
}

// Phone is an enrolled phone (or PC) calling the server with requests
// signed by its credential key.
type Phone struct {
	BaseURL    string
	Credential string
	Prover     Prover
	// HTTP is the HTTP client; nil means one with a 60-second timeout.
	HTTP *http.Client
	// Now is the clock of the timestamps; nil means time.Now.
	Now func() time.Time
}

// NewRequest returns a signed request for target (a path, with its query)
// with body (JSON unless contentType says otherwise; none when nil).
func (p *Phone) NewRequest(ctx context.Context, method, target, contentType string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.BaseURL, "/")+target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if err := SignRequest(req, body, p.Credential, p.Prover, now()); err != nil {
		return nil, err
	}
	return req, nil
}

func (p *Phone) http() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return defaultHTTP
}

// Do sends a signed request with body (JSON, or none when nil) and
// decodes the JSON answer into out.
func (p *Phone) Do(ctx context.Context, method, target string, body []byte, out any) error {
	req, err := p.NewRequest(ctx, method, target, "", body)
	if err != nil {
		return err
	}
	return send(p.http(), req, out)
}

// PendingSignIn is an attempt waiting for the phone's answer: what to
// show, and in choose mode the three numbers.
type PendingSignIn struct {
	Attempt    string               `json:"attempt"`
	Tenant     string               `json:"tenant"`
	User       string               `json:"user"`
	UPN        string               `json:"upn"`
	Credential string               `json:"credential"`
	Nonce      []byte               `json:"nonce"`
	Mode       string               `json:"mode"`
	Choices    []int                `json:"choices,omitempty"`
	Context    engine.SignInContext `json:"context"`
	ExpiresAt  time.Time            `json:"expires_at"`
}

// Pending fetches the attempts waiting for this credential (GET
// /v1/phone/signins): none or one.
func (p *Phone) Pending(ctx context.Context) ([]PendingSignIn, error) {
	var out struct {
		Attempts []PendingSignIn `json:"attempts"`
	}
	if err := p.Do(ctx, "GET", "/v1/phone/signins", nil, &out); err != nil {
		return nil, err
	}
	return out.Attempts, nil
}

// AnswerMessage returns the message an answer to s signs.
func (s PendingSignIn) AnswerMessage(decision string, number int) []byte {
	return engine.AnswerMessage(engine.AnswerFields{
		Attempt: s.Attempt, Tenant: s.Tenant, User: s.User, Credential: s.Credential, Nonce: s.Nonce, Decision: decision, Number: number,
	})
}

// Answer is the body of an answer: the decision, the number (approve)
// and the proof over the answer message.
type Answer struct {
	Decision          string `json:"decision"`
	Number            int    `json:"number,omitempty"`
	Signature         []byte `json:"signature"`
	AuthenticatorData []byte `json:"authenticator_data,omitempty"`
	ClientDataJSON    []byte `json:"client_data_json,omitempty"`
}

// Answer proves and sends the answer to s (POST
// /v1/phone/signins/{attempt}/answer): engine.DecisionApprove with the
// number the person typed or chose, engine.DecisionDeny or
// engine.DecisionFraud (number 0). A wrong number is refused with the
// problem signin.wrong_number, and the attempt is denied.
func (p *Phone) Answer(ctx context.Context, s PendingSignIn, decision string, number int) (*engine.Outcome, error) {
	proof, err := p.Prover.Prove(s.AnswerMessage(decision, number))
	if err != nil {
		return nil, err
	}
	return p.SendAnswer(ctx, s.Attempt, Answer{Decision: decision, Number: number, Signature: proof.Signature,
		AuthenticatorData: proof.AuthenticatorData, ClientDataJSON: proof.ClientDataJSON})
}

// SendAnswer sends an answer as given.
func (p *Phone) SendAnswer(ctx context.Context, attempt string, a Answer) (*engine.Outcome, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	var out engine.Outcome
	if err := p.Do(ctx, "POST", "/v1/phone/signins/"+esc(attempt)+"/answer", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
