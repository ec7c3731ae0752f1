package server

import (
	"context"
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
