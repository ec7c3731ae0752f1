package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/keybind/keybind/store"
)

// A phone (or PC) calls the server with requests signed by its credential
// key, as it signs its answers: the key proves the request comes from the
// enrolled device, the timestamp bounds how long a captured request could
// be replayed, and the nonce, remembered in the store for that long, makes
// each request usable once — across restarts too.

// DefaultRequestWindow is how far a device request's timestamp may be from
// the server's clock, either way.
const DefaultRequestWindow = 5 * time.Minute

// Bounds of a device request's nonce.
const (
	MinRequestNonce = 16
	MaxRequestNonce = 64
)

// requestDomain separates request signatures from answers and from every
// other use of the key.
const requestDomain = "keybind/device-request/v1\x00"

// RequestFields are the parts of a device request its signature covers.
type RequestFields struct {
	// Method is the HTTP method ("GET", "POST").
	Method string
	// Target is the request target exactly as sent: the path and, when
	// there is one, "?" and the query ("/v1/phone/signins").
	Target string
	// Credential is the id of the credential whose key signs.
	Credential string
	// Timestamp is the time of the request in Unix seconds.
	Timestamp int64
	// Nonce is MinRequestNonce to MaxRequestNonce random bytes, new for
	// every request.
	Nonce []byte
	// Body is the request body (empty for none); the message holds its
	// SHA-256.
	Body []byte
}

// RequestMessage returns the canonical bytes a device request signs:
//
//	"keybind/device-request/v1" 0x00
//	method, target, credential id   each as a 2-byte big-endian length and the bytes
//	timestamp                       8 bytes big-endian (Unix seconds, two's complement)
//	nonce                           a 2-byte big-endian length and the bytes
//	SHA-256 of the body             32 bytes
//
// The key signs it as it signs an answer (see AnswerMessage): ECDSA with
// the hash of its curve, RSA with SHA-256 (PKCS #1 v1.5 or PSS), Ed25519
// directly; an App Attest key makes an assertion whose client data is the
// message; a WebAuthn credential makes an assertion whose challenge is
// SHA-256 of the message (AnswerChallenge).
func RequestMessage(f RequestFields) []byte {
	body := sha256.Sum256(f.Body)
	b := make([]byte, 0, len(requestDomain)+2*4+len(f.Method)+len(f.Target)+len(f.Credential)+8+len(f.Nonce)+32)
	b = append(b, requestDomain...)
	for _, v := range []string{f.Method, f.Target, f.Credential} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(f.Timestamp))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.Nonce)))
	b = append(b, f.Nonce...)
	return append(b, body[:]...)
}

// DeviceRequest is a signed device request as the server received it.
type DeviceRequest struct {
	RequestFields
	// Proof is the signature over RequestMessage (an App Attest assertion,
	// or the parts of a WebAuthn assertion).
	Proof Proof
}

// requestCounter is the stored highest signature counter of a
// credential's device requests.
type requestCounter struct {
	Counter uint32 `json:"counter"`
}

// AuthenticateRequest checks a device request and returns the credential
// that signed it: the fields are well formed, the timestamp is within the
// window (Config.RequestWindow) of the engine's clock, the credential is
// enrolled and usable, the proof verifies over RequestMessage, and the
// nonce was never seen for this credential (it is then kept until the
// timestamp leaves the window, so a restart does not forget it). A
// credential whose proofs carry a signature counter (App Attest, WebAuthn
// authenticators that keep one) must present one above both the counter
// of its last answer and that of its last request. Codes: input.invalid,
// request.timestamp, request.unknown_credential, credential.disabled,
// device.disabled, request.bad_signature, request.replay.
func (e *Engine) AuthenticateRequest(ctx context.Context, r DeviceRequest) (*Credential, error) {
	if err := checkID("credential", r.Credential); err != nil {
		return nil, err
	}
	if len(r.Nonce) < MinRequestNonce || len(r.Nonce) > MaxRequestNonce {
		return nil, invalid("the request nonce must be %d to %d bytes", MinRequestNonce, MaxRequestNonce)
	}
	if len(r.Method) == 0 || len(r.Method) > 16 || len(r.Target) == 0 || len(r.Target) > 4096 {
		return nil, invalid("the request method or target is empty or too long")
	}
	if len(r.Proof.Signature) == 0 || len(r.Proof.Signature) > MaxSignature {
		return nil, invalid("the request signature must be 1 to %d bytes", MaxSignature)
	}
	now := e.now()
	at := time.Unix(r.Timestamp, 0)
	if d := now.Sub(at); d > e.requestWindow || d < -e.requestWindow {
		return nil, errorf(CodeRequestTimestamp, KindUnauthenticated, "the request time %d is more than %s from the server's time %d", r.Timestamp, e.requestWindow, now.Unix())
	}
	c, err := e.usableCredential(r.Credential)
	if CodeOf(err) == CodeCredentialNotFound {
		return nil, errorf(CodeRequestCredential, KindUnauthenticated, "no enrolled credential %q", r.Credential)
	} else if err != nil {
		return nil, err
	}
	counter, err := e.sigs.VerifyAnswer(c, RequestMessage(r.RequestFields), r.Proof)
	if err != nil {
		if KindOf(err) == KindUnavailable || KindOf(err) == KindInternal || KindOf(err) == KindInvalid {
			return nil, err
		}
		if CodeOf(err) == "assert.counter" {
			// An App Attest assertion older than the credential's last answer.
			return nil, &Error{Code: CodeRequestReplay, Kind: KindUnauthenticated, Reason: "the request's assertion counter did not rise: " + err.Error(), Err: err}
		}
		return nil, &Error{Code: CodeRequestSignature, Kind: KindUnauthenticated, Reason: "the request signature does not verify: " + err.Error(), Err: err}
	}
	nk, ck := store.RequestNonceKey(c.ID, r.Nonce), store.RequestCounterKey(c.ID)
	err = e.st.Update([]store.Key{nk, ck, store.CredentialKey(c.ID)}, func(tx *store.Tx) error {
		if err := tx.Create(nk, nil); errors.Is(err, store.ErrExists) {
			return errorf(CodeRequestReplay, KindUnauthenticated, "this request nonce was already used")
		} else if err != nil {
			return err
		}
		// Kept until the timestamp leaves the window: after that, the
		// timestamp check refuses the request anyway.
		if err := tx.DeleteAfter(nk, at.Add(e.requestWindow+time.Second)); err != nil {
			return err
		}
		counts, always := countsSignatures(c)
		if !counts {
			return nil
		}
		var cur Credential
		if err := tx.Get(store.CredentialKey(c.ID), &cur); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeRequestCredential, KindUnauthenticated, "no enrolled credential %q", c.ID)
		} else if err != nil {
			return err
		}
		var last requestCounter
		if err := tx.Get(ck, &last); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !always && counter == 0 && cur.Counter == 0 && last.Counter == 0 {
			return nil // an authenticator that keeps no counter
		}
		if counter <= cur.Counter || counter <= last.Counter {
			return errorf(CodeRequestReplay, KindUnauthenticated, "signature counter %d does not exceed %d", counter, max(cur.Counter, last.Counter))
		}
		return tx.Put(ck, requestCounter{Counter: counter})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return c, nil
}
