package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/keybind/keybind/bench"
	"github.com/keybind/keybind/verify"
	"github.com/valyala/fasthttp"
)

// BenchmarkVerifyEndpoint drives POST /v1/verify over loopback from this
// process (client and server share the cores: compare the figures of
// keybind bench, which counts the server's CPU alone). ns/op is per request.
func BenchmarkVerifyEndpoint(b *testing.B) {
	keys, _ := ParseStaticKeys([]string{"bench:verify:" + keyA})
	s := New(Config{Addr: "127.0.0.1:0", Authenticator: keys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.EnableVerify(VerifyConfig{Pipeline: verify.New(verify.Options{})})
	addr, err := s.Listen()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	for _, wl := range []struct {
		alg   string
		items int
	}{{"ecdsa-p256", 1}, {"ecdsa-p256", 16}, {"ed25519", 1}, {"ed25519", 16}} {
		w, err := bench.NewWorkload(wl.alg, wl.items, 32, 64)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/items=%d", wl.alg, wl.items), func(b *testing.B) {
			hc := &fasthttp.HostClient{Addr: addr.String(), MaxConns: 64}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI("http://" + addr.String() + "/v1/verify")
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("Authorization", "Bearer "+keyA)
				for i := 0; pb.Next(); i++ {
					req.SetBodyRaw(w.Bodies[i%len(w.Bodies)])
					if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
					}
				}
			})
		})
	}
}

// BenchmarkVerifyParse compares the verify endpoint's request parser with
// encoding/json decoding the same 16-item body (and base64-decoding its
// byte fields, which the parser does as it goes).
func BenchmarkVerifyParse(b *testing.B) {
	w, err := bench.NewWorkload("ecdsa-p256", 16, 1, 16)
	if err != nil {
		b.Fatal(err)
	}
	body := w.Bodies[0]
	b.Run("scanner", func(b *testing.B) {
		v := &verifyAPI{maxItems: 256}
		r := new(verifyReq)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			r.in = r.in[:0]
			if p := v.parse(r, body); p != nil {
				b.Fatal(p)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/item")
	})
	b.Run("encoding-json", func(b *testing.B) {
		type item struct {
			Algorithm string `json:"algorithm"`
			PublicKey []byte `json:"public_key"`
			Message   []byte `json:"message"`
			Signature []byte `json:"signature"`
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req struct {
				Items []item `json:"items"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/item")
	})
}

// BenchmarkHandler is the server's own cost per request, without the
// network and without the signature check: a one-item verify request whose
// signature is refused by its encoding goes through routing, the body
// limit, authentication, parsing, the key cache and the answer.
func BenchmarkHandler(b *testing.B) {
	keys, _ := ParseStaticKeys([]string{"bench:verify:" + keyA})
	s := New(Config{Authenticator: keys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.EnableVerify(VerifyConfig{Pipeline: verify.New(verify.Options{})})
	w, err := bench.NewWorkload("ecdsa-p256", 1, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Replace(w.Bodies[0], []byte(`"signature":"M`), []byte(`"signature":"A`), 1)
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/v1/verify")
	rc.Request.Header.SetContentType("application/json")
	rc.Request.Header.Set("Authorization", "Bearer "+keyA)
	rc.Request.SetBody(body)
	b.ReportAllocs()
	for b.Loop() {
		rc.Response.Reset()
		s.serve(&rc)
		if rc.Response.StatusCode() != 200 || !bytes.Contains(rc.Response.Body(), []byte(`"input.signature"`)) {
			b.Fatalf("%d %s", rc.Response.StatusCode(), rc.Response.Body())
		}
	}
}
