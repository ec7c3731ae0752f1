package engine

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
)

// signedRequest makes a device request signed by ph as a phone does.
func (ph *phone) request(t *testing.T, method, target string, at time.Time, body []byte) DeviceRequest {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	r := DeviceRequest{RequestFields: RequestFields{Method: method, Target: target, Credential: ph.cred.ID, Timestamp: at.Unix(), Nonce: nonce, Body: body}}
	msg := RequestMessage(r.RequestFields)
	if ph.apple != nil {
		ph.counter++
		a, err := forge.AppAssert(ph.apple, forge.AppAssertOptions{AppID: testAppID, ClientData: msg, Counter: ph.counter})
		if err != nil {
			t.Fatal(err)
		}
		r.Proof.Signature = a.Marshal()
		return r
	}
	sig, err := SignAnswer(ph.key, msg)
	if err != nil {
		t.Fatal(err)
	}
	r.Proof.Signature = sig
	return r
}

func TestRequestMessage(t *testing.T) {
	f := RequestFields{Method: "POST", Target: "/v1/phone/signins/a1/answer", Credential: "c1", Timestamp: 1780000000, Nonce: []byte("0123456789abcdef"), Body: []byte(`{}`)}
	m := RequestMessage(f)
	if !bytes.HasPrefix(m, []byte("keybind/device-request/v1\x00\x00\x04POST\x00\x1b/v1/phone/signins/a1/answer\x00\x02c1\x00\x00\x00\x00\x6a\x18\xa5\x00\x00\x100123456789abcdef")) || len(m) != 26+6+29+4+8+18+32 {
		t.Fatalf("message %q", m)
	}
	// Every field counts, and moving bytes between fields changes the message.
	for name, g := range map[string]RequestFields{
		"method": {Method: "GET", Target: f.Target, Credential: f.Credential, Timestamp: f.Timestamp, Nonce: f.Nonce, Body: f.Body},
		"target": {Method: f.Method, Target: f.Target + "?", Credential: f.Credential, Timestamp: f.Timestamp, Nonce: f.Nonce, Body: f.Body},
		"split":  {Method: "POST/", Target: f.Target[1:], Credential: f.Credential, Timestamp: f.Timestamp, Nonce: f.Nonce, Body: f.Body},
		"time":   {Method: f.Method, Target: f.Target, Credential: f.Credential, Timestamp: f.Timestamp + 1, Nonce: f.Nonce, Body: f.Body},
		"body":   {Method: f.Method, Target: f.Target, Credential: f.Credential, Timestamp: f.Timestamp, Nonce: f.Nonce, Body: []byte(`{ }`)},
	} {
		if bytes.Equal(RequestMessage(g), m) {
			t.Errorf("%s: same message", name)
		}
	}
}

func TestAuthenticateRequest(t *testing.T) {
	dir := t.TempDir()
	android, apple := testCAs()
	clock := &fakeClock{now: t0}
	open := func() (*Engine, *store.Store) {
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Store: st, Clock: clock, Verifiers: Verifiers(nil), Roots: map[string][]*x509.Certificate{rootAndroid: {android.Root.Cert}, rootApple: {apple.Root}}})
		if err != nil {
			t.Fatal(err)
		}
		return e, st
	}
	e, st := open()
	env := &testEnv{t: t, e: e, st: st, clock: clock, android: android, apple: apple}
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	env.user("contoso", "bob", "bob@contoso.com")
	ph := env.mustEnroll("contoso", "alice")

	r := ph.request(t, "GET", "/v1/phone/signins", t0, nil)
	c, err := env.e.AuthenticateRequest(ctx, r)
	if err != nil || c.ID != ph.cred.ID || c.User != "alice" {
		t.Fatalf("AuthenticateRequest: %+v %v", c, err)
	}
	// The same request again: its nonce was used.
	_, err = env.e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeRequestReplay)

	// Each part the signature covers: changed after signing, refused.
	for name, edit := range map[string]func(*DeviceRequest){
		"method": func(r *DeviceRequest) { r.Method = "POST" },
		"target": func(r *DeviceRequest) { r.Target += "?x=1" },
		"body":   func(r *DeviceRequest) { r.Body = []byte("{}") },
		"nonce":  func(r *DeviceRequest) { r.Nonce[0] ^= 1 },
		"time":   func(r *DeviceRequest) { r.Timestamp-- },
		"sig":    func(r *DeviceRequest) { r.Proof.Signature[len(r.Proof.Signature)-3] ^= 1 },
	} {
		r := ph.request(t, "GET", "/v1/phone/signins", t0, nil)
		edit(&r)
		_, err := env.e.AuthenticateRequest(ctx, r)
		if CodeOf(err) != CodeRequestSignature {
			t.Errorf("%s changed: %v, want %s", name, err, CodeRequestSignature)
		}
		if KindOf(err) != KindUnauthenticated {
			t.Errorf("%s changed: kind %v", name, KindOf(err))
		}
	}
	// Another credential's key.
	other := env.mustEnroll("contoso", "bob")
	r = other.request(t, "GET", "/v1/phone/signins", t0, nil)
	r.Credential = ph.cred.ID
	_, err = env.e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeRequestSignature)

	// The window, both ways.
	_, err = env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/x", t0.Add(-DefaultRequestWindow-time.Second), nil))
	wantCode(t, err, CodeRequestTimestamp)
	_, err = env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/x", t0.Add(DefaultRequestWindow+time.Second), nil))
	wantCode(t, err, CodeRequestTimestamp)
	if _, err := env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/x", t0.Add(-DefaultRequestWindow+time.Second), nil)); err != nil {
		t.Errorf("inside the window: %v", err)
	}

	// Malformed requests.
	r = ph.request(t, "GET", "/x", t0, nil)
	r.Nonce = r.Nonce[:8]
	_, err = env.e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeInvalid)
	r = ph.request(t, "GET", "/x", t0, nil)
	r.Credential = "no-such-credential"
	_, err = env.e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeRequestCredential)

	// A disabled credential, then a deleted one.
	if _, err := env.e.SetCredentialDisabled(ctx, "contoso", other.cred.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.AuthenticateRequest(ctx, other.request(t, "GET", "/x", t0, nil))
	wantCode(t, err, CodeCredentialDisabled)
	if err := env.e.DeleteCredential(ctx, "contoso", other.cred.ID); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.AuthenticateRequest(ctx, other.request(t, "GET", "/x", t0, nil))
	wantCode(t, err, CodeRequestCredential)

	// A restart within the window remembers the nonce; the sweep forgets
	// it once the window has passed.
	r = ph.request(t, "GET", "/v1/phone/signins", t0, nil)
	if _, err := env.e.AuthenticateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	st.Close()
	e, st = open()
	defer st.Close()
	_, err = e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeRequestReplay)
	clock.Advance(DefaultRequestWindow + 2*time.Second)
	if n, err := e.Sweep(ctx, 1000); err != nil || n == 0 {
		t.Fatalf("Sweep: %d %v", n, err)
	}
	if ok, _ := st.Has(store.RequestNonceKey(ph.cred.ID, r.Nonce)); ok {
		t.Error("the nonce outlived its window")
	}
	_, err = e.AuthenticateRequest(ctx, r)
	wantCode(t, err, CodeRequestTimestamp)
}

// TestAuthenticateRequestAppAttest checks the counters of an App Attest
// credential: requests and answers share the key's counter, which must
// rise across both.
func TestAuthenticateRequestAppAttest(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph, err := env.enrollApple("contoso", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/v1/phone/signins", t0, nil)); err != nil {
		t.Fatal(err)
	}
	// A request whose assertion has an old counter (made before the last
	// one) is refused even with a fresh nonce.
	ph.counter--
	_, err = env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/v1/phone/signins", t0, nil))
	if CodeOf(err) != CodeRequestReplay {
		t.Fatalf("old counter: %v", err)
	}
	ph.counter++
	// The phone answers (assertion n), then signs the request carrying
	// the answer (assertion n+1): both pass.
	s := env.start("contoso", "alice@contoso.com")
	p, err := env.e.PendingSignIn(ctx, ph.cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	a := ph.answerFor(t, p, DecisionApprove, s.Number)
	if _, err := env.e.AuthenticateRequest(ctx, ph.request(t, "POST", "/v1/phone/signins/"+p.Attempt+"/answer", t0, []byte("answer"))); err != nil {
		t.Fatal(err)
	}
	if out, err := env.e.AnswerSignIn(ctx, a); err != nil || out.State != StateApproved {
		t.Fatalf("answer: %+v %v", out, err)
	}
	// The next request must exceed the answer's counter too.
	if _, err := env.e.AuthenticateRequest(ctx, ph.request(t, "GET", "/v1/phone/signins", t0, nil)); err != nil {
		t.Fatal(err)
	}
}

// FuzzRequestMessage checks that RequestMessage is injective: two requests
// that differ in any field never share a message (every variable field has
// its length, the timestamp and the body's hash a fixed width).
func FuzzRequestMessage(f *testing.F) {
	f.Add("GET", "/v1/phone/signins", "c1", int64(1780000000), []byte("0123456789abcdef"), []byte(nil), "GET", "/v1/phone/signins", "c1", int64(1780000000), []byte("0123456789abcdef"), []byte{})
	f.Add("POST", "/a", "c", int64(1), []byte("n"), []byte("{}"), "POST/", "a", "c", int64(1), []byte("n"), []byte("{}"))
	f.Add("GET", "/x", "c\x00", int64(-1), []byte{}, []byte("b"), "GET", "/x", "c", int64(-1), []byte{0}, []byte("b"))
	f.Fuzz(func(t *testing.T, m1, t1, c1 string, ts1 int64, n1, b1 []byte, m2, t2, c2 string, ts2 int64, n2, b2 []byte) {
		for _, s := range []string{m1, t1, c1, m2, t2, c2} {
			if len(s) > 0xffff {
				return
			}
		}
		if len(n1) > 0xffff || len(n2) > 0xffff {
			return
		}
		r1 := RequestFields{Method: m1, Target: t1, Credential: c1, Timestamp: ts1, Nonce: n1, Body: b1}
		r2 := RequestFields{Method: m2, Target: t2, Credential: c2, Timestamp: ts2, Nonce: n2, Body: b2}
		same := m1 == m2 && t1 == t2 && c1 == c2 && ts1 == ts2 && bytes.Equal(n1, n2) && bytes.Equal(b1, b2)
		if equal := bytes.Equal(RequestMessage(r1), RequestMessage(r2)); equal != same {
			t.Fatalf("fields equal %v, messages equal %v: %+v %+v", same, equal, r1, r2)
		}
	})
}
