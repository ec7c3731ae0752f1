package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/keybind/keybind/engine"
)

// TestSignRequest checks, on a real listener, that a signed request carries
// the headers of the scheme and that the signature verifies over
// engine.RequestMessage of the request as the server receives it.
func TestSignRequest(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Unix(1780000000, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
		nonce, err2 := base64.RawURLEncoding.DecodeString(r.Header.Get(HeaderNonce))
		sig, err3 := base64.StdEncoding.DecodeString(r.Header.Get(HeaderSignature))
		if err != nil || err2 != nil || err3 != nil || ts != now.Unix() || len(nonce) != 16 || r.Header.Get(HeaderCredential) != "cred-1" {
			http.Error(w, "bad headers", 400)
			return
		}
		msg := engine.RequestMessage(engine.RequestFields{Method: r.Method, Target: r.RequestURI, Credential: "cred-1", Timestamp: ts, Nonce: nonce, Body: body})
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(&key.PublicKey, h[:], sig) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(401)
			w.Write([]byte(`{"status":401,"code":"request.bad_signature","detail":"no"}`))
			return
		}
		w.Write([]byte(`{"attempts":[]}`))
	}))
	defer srv.Close()
	p := &Phone{BaseURL: srv.URL, Credential: "cred-1", Prover: SignerProver{Signer: key}, Now: func() time.Time { return now }}
	if list, err := p.Pending(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("Pending: %v %v", list, err)
	}
	var raw json.RawMessage
	if err := p.Do(context.Background(), "POST", "/v1/phone/signins/a1/answer?x=%2F", []byte(`{"decision":"deny"}`), &raw); err != nil || string(raw) != `{"attempts":[]}` {
		t.Fatalf("signed POST: %s %v", raw, err)
	}
	// Another key: the server's problem comes back as a *Problem.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.Prover = SignerProver{Signer: other}
	_, err := p.Pending(context.Background())
	var pr *Problem
	if !errors.As(err, &pr) || pr.Status != 401 || pr.Code != "request.bad_signature" || pr.Detail != "no" || pr.RetryAfter != 7*time.Second {
		t.Fatalf("problem: %#v", err)
	}
	// An answer that is not a problem document still has a code.
	c := New(srv.URL, "k")
	if err := c.Do(context.Background(), "GET", "/x", nil, nil); !errors.As(err, &pr) || pr.Code != "http.400" {
		t.Fatalf("plain error: %#v", err)
	}
}
