package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/keybind/keybind/testvectors/forge"
	"github.com/valyala/fasthttp"
)

// FuzzPhoneBody feeds arbitrary bodies, as JSON and as CBOR, to the phone
// routes' decoders: never a panic, always a 400 problem with a code of the
// input or cbor family, and what CBOR accepts re-encodes to the same
// request.
func FuzzPhoneBody(f *testing.F) {
	f.Add([]byte(`{"format":"android-key","evidence":{"chain":"MIIB"},"device":"d1"}`), false)
	f.Add(forge.WebAuthnCBOR(map[string]any{"format": "android-key", "evidence": map[string]any{"chain": []byte{0x30, 0x03, 1, 2, 3}}}), true)
	f.Add(forge.WebAuthnCBOR(map[string]any{"decision": "approve", "number": 42, "signature": []byte{1}}), true)
	f.Add([]byte(`{"decision":"deny","signature":"AQ=="}`), false)
	f.Fuzz(func(t *testing.T, body []byte, useCBOR bool) {
		rc := &fasthttp.RequestCtx{}
		rc.Request.SetBody(body)
		ct := "application/json"
		if useCBOR {
			ct = "application/cbor"
		}
		rc.Request.Header.SetContentType(ct)
		c := &Ctx{rc: rc}
		check := func(err error) {
			if err == nil {
				return
			}
			p, ok := err.(*Problem)
			if !ok || p.Status != 400 || !(bytes.HasPrefix([]byte(p.Code), []byte("input.")) || bytes.HasPrefix([]byte(p.Code), []byte("cbor."))) {
				t.Fatalf("%q: %v", body, err)
			}
		}
		var ev EvidenceRequest
		err := decodeBody(c, &ev, true)
		check(err)
		if err == nil && useCBOR {
			// Accepted CBOR decodes to what JSON of the same request does.
			j, _ := json.Marshal(ev)
			var back EvidenceRequest
			if err := json.Unmarshal(j, &back); err != nil || back.Format != ev.Format || len(back.Evidence) != len(ev.Evidence) {
				t.Fatalf("round trip of %+v: %+v %v", ev, back, err)
			}
		}
		var ans AnswerRequest
		check(decodeBody(c, &ans, true))
		var act TPMActivationRequest
		check(decodeBody(c, &act, true))
	})
}

// FuzzDeviceHeaders feeds arbitrary signed-request headers to their
// parser: a missing header is a 401, a malformed one a 400 input.header,
// and what it accepts is what the headers say.
func FuzzDeviceHeaders(f *testing.F) {
	f.Add("cred-1", "1780000000", "AAAAAAAAAAAAAAAAAAAAAA", "MEUCIQ==", "", "")
	f.Add("c", "-5", "!!", "AA", "AA", "eyJ9")
	f.Add("c", "99999999999999999999", "AA==", "AA", "", "")
	f.Fuzz(func(t *testing.T, cred, ts, nonce, sig, authData, clientData string) {
		rc := &fasthttp.RequestCtx{}
		h := &rc.Request.Header
		for name, v := range map[string]string{HeaderCredential: cred, HeaderTimestamp: ts, HeaderNonce: nonce, HeaderSignature: sig, HeaderAuthenticatorData: authData, HeaderClientData: clientData} {
			if v != "" {
				h.Set(name, v)
			}
		}
		rc.Request.SetRequestURI("/v1/phone/signins")
		c := &Ctx{rc: rc}
		r, err := deviceRequest(c)
		if err != nil {
			p, ok := err.(*Problem)
			if !ok || !(p.Status == 401 && p.Code == CodeUnauthenticated || p.Status == 400 && p.Code == CodeHeader) {
				t.Fatalf("%v", err)
			}
			return
		}
		// What fasthttp kept of each header is what was parsed.
		if r.Credential != string(h.Peek(HeaderCredential)) {
			t.Fatalf("credential %q", r.Credential)
		}
		if n, err := strconv.ParseInt(string(h.Peek(HeaderTimestamp)), 10, 64); err != nil || n != r.Timestamp {
			t.Fatalf("timestamp %d from %q", r.Timestamp, h.Peek(HeaderTimestamp))
		}
		for name, got := range map[string][]byte{HeaderNonce: r.Nonce, HeaderSignature: r.Proof.Signature} {
			v := bytes.TrimRight(h.Peek(name), "=")
			enc := base64.RawStdEncoding
			if bytes.ContainsAny(v, "-_") {
				enc = base64.RawURLEncoding
			}
			want, err := enc.DecodeString(string(v))
			if err != nil || !bytes.Equal(want, got) {
				t.Fatalf("%s %q decoded to %x, want %x (%v)", name, v, got, want, err)
			}
		}
	})
}
