package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/verify"
)

// FuzzVerifyParse feeds arbitrary bodies to the verify request parser and
// checks it against encoding/json: whatever it accepts is valid JSON of the
// request's shape, with the same items and the same decoded bytes.
func FuzzVerifyParse(f *testing.F) {
	k := newTestKeys(f)
	for _, item := range []map[string]any{k.p256Item([]byte("m")), k.p256RawItem([]byte("m")), k.edItem([]byte("m")),
		{"algorithm": "appattest", "credential_id": "c\u00e9", "assertion": "AAAA", "client_data": "", "app_id": "T.b", "previous_counter": 7}} {
		b, _ := json.Marshal(map[string]any{"items": []any{item, item}})
		f.Add(b)
	}
	f.Add([]byte(`{"items":[{"algorithm":"\u0065d25519","message":"a\/b="}]}`))
	f.Add([]byte(`{"items":[{"credential_id":"\ud83d\ude00"}]} `))
	f.Add([]byte(`{"items":[]}`))
	v := &verifyAPI{maxItems: 8}
	r := new(verifyReq)
	f.Fuzz(func(t *testing.T, body []byte) {
		r.in = r.in[:0]
		p := v.parse(r, body)
		if p != nil {
			if p.Status != 400 || (p.Code != CodeJSON && p.Code != CodeItems) {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var want struct {
			Items []struct {
				Algorithm    *string `json:"algorithm"`
				PublicKey    *string `json:"public_key"`
				CredentialID *string `json:"credential_id"`
				Message      *string `json:"message"`
				Digest       *string `json:"digest"`
				Signature    *string `json:"signature"`
				Assertion    *string `json:"assertion"`
				ClientData   *string `json:"client_data"`
				AppID        *string `json:"app_id"`
				Counter      *uint32 `json:"previous_counter"`
				Challenge    *string `json:"challenge"`
			} `json:"items"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q, encoding/json says %v", body, err)
		}
		if len(want.Items) != len(r.in) || len(r.in) == 0 {
			t.Fatalf("%d items, encoding/json finds %d", len(r.in), len(want.Items))
		}
		for i, w := range want.Items {
			in := &r.in[i]
			str := func(name string, got []byte, w *string, bit uint16) {
				if (in.has&bit != 0) != (w != nil) {
					t.Fatalf("item %d: presence of %s differs", i, name)
				}
				if w != nil && string(got) != *w && !strings.ContainsRune(*w, '\ufffd') {
					t.Fatalf("item %d: %s = %q, encoding/json %q", i, name, got, *w)
				}
			}
			str("algorithm", in.alg, w.Algorithm, fAlgorithm)
			str("credential_id", in.cred, w.CredentialID, fCredential)
			str("app_id", in.app, w.AppID, fAppID)
			b64 := func(name string, got []byte, w *string, bit uint16) {
				if (in.has&bit != 0) != (w != nil) {
					t.Fatalf("item %d: presence of %s differs", i, name)
				}
				if w == nil || in.code != "" {
					return
				}
				s := strings.TrimRight(*w, "=")
				enc := base64.RawStdEncoding
				if strings.ContainsAny(s, "-_") {
					enc = base64.RawURLEncoding
				}
				d, err := enc.Strict().DecodeString(s)
				if err != nil || !bytes.Equal(d, got) {
					t.Fatalf("item %d: %s decoded to %x, want %x (%v)", i, name, got, d, err)
				}
			}
			str("public_key", in.pub, w.PublicKey, fPublicKey)
			b64("message", in.msg, w.Message, fMessage)
			b64("digest", in.digest, w.Digest, fDigest)
			b64("signature", in.sig, w.Signature, fSignature)
			b64("assertion", in.assertion, w.Assertion, fAssertion)
			b64("client_data", in.clientData, w.ClientData, fClientData)
			b64("challenge", in.challenge, w.Challenge, fChallenge)
			if w.Counter != nil && uint64(*w.Counter) != in.counter {
				t.Fatalf("item %d: counter %d, want %d", i, in.counter, *w.Counter)
			}
		}
	})
}

// TestFuzzingClient throws random and mutated requests — methods, paths,
// headers, bodies, broken HTTP — at a real server and checks that it
// answers or closes every one, never panics, and stays up.
func TestFuzzingClient(t *testing.T) {
	res := &mapResolver{creds: map[string][]byte{}}
	ts := startServer(t, Config{BodyLimit: 4096, ReadTimeout: 300 * time.Millisecond, MaxConnsPerIP: 64}, func(s *Server) {
		s.EnableVerify(VerifyConfig{Pipeline: verify.New(verify.Options{}), Keys: res, MaxItems: 16, BodyLimit: 16 << 10})
	})
	k := newTestKeys(t)
	res.creds["tenant-a/c1"] = k.edPub
	var seeds [][]byte
	for _, items := range [][]map[string]any{
		{k.p256Item([]byte("a"))},
		{k.edItem([]byte("b")), k.p256RawItem([]byte("c"))},
		{with(k.edItem([]byte("d")), "public_key", nil, "credential_id", "c1")},
	} {
		b, _ := json.Marshal(map[string]any{"items": items})
		seeds = append(seeds, b)
	}
	fuzzServer(t, ts, fuzzTarget{
		seeds: seeds,
		paths: []string{"/v1/verify", "/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/", "/v1/", "/v1/verify/x", "/v1//verify",
			"/v1/verify?x=1", "/%2e%2e/v1/verify", "/v1/ver%00ify", "*", "http://x/v1/verify", strings.Repeat("/a", 2000), "/v1/verify#f", "/\xff\xfe"},
		headers: []string{"Authorization: Bearer " + keyA, "Authorization: Bearer " + keyB},
		auth:    [][]string{{"Content-Type: application/json", "Authorization: Bearer " + keyA}},
		usual:   func(*rand.Rand) (string, string, []string) { return "POST", "/v1/verify", nil },
	})
	// The server still verifies.
	if codes := ts.verifyResults(keyA, k.p256Item([]byte("after"))); codes[0] != "" {
		t.Errorf("verify after the fuzzing: %v", codes)
	}
}

// fuzzTarget describes the requests of fuzzServer: seed bodies, paths and
// headers to pick from besides the common ones, sets of headers that
// authenticate, and the usual request (most requests are one of these,
// with a body seeded, mutated or random).
type fuzzTarget struct {
	seeds   [][]byte
	paths   []string
	headers []string
	auth    [][]string
	usual   func(rng *rand.Rand) (method, path string, headers []string)
}

// fuzzServer sends 1500 random and mutated requests to ts over raw
// connections, checks each is answered (never 5xx but 503) or its
// connection closed, and that the server stays up without a panic.
func fuzzServer(t *testing.T, ts *testServer, ft fuzzTarget) {
	t.Helper()
	addr := strings.TrimPrefix(ts.url, "http://")
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "BREW", "", "G\x00T", strings.Repeat("P", 300)}
	paths := ft.paths
	seeds := ft.seeds
	headers := append([]string{"Content-Type: application/json", "Content-Type: text/plain",
		"Authorization: Basic eDp5", "Authorization: Bearer", "Transfer-Encoding: chunked", "Content-Length: -1", "Content-Length: 99999999999",
		"Expect: 100-continue", "X-" + strings.Repeat("h", 5000) + ": 1", "Connection: close", "Host:", "Content-Type: application/problem+json",
		"Bad Header", ": empty name", "Content-Encoding: gzip"}, ft.headers...)
	mutate := func(b []byte) []byte {
		b = bytes.Clone(b)
		for range 1 + rng.IntN(4) {
			if len(b) == 0 {
				break
			}
			switch rng.IntN(6) {
			case 0:
				b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
			case 1:
				b = b[:rng.IntN(len(b))]
			case 2:
				i := rng.IntN(len(b))
				b = append(b[:i], append([]byte(`"\u0000,[]{}:-1e999`[rng.IntN(17):]), b[i:]...)...)
			case 3:
				i, j := rng.IntN(len(b)), rng.IntN(len(b))
				b[i], b[j] = b[j], b[i]
			case 4:
				b = bytes.Repeat(b, 1+rng.IntN(3))
			case 5:
				r := make([]byte, rng.IntN(64))
				for x := range r {
					r[x] = byte(rng.IntN(256))
				}
				i := rng.IntN(len(b))
				b = append(b[:i], append(r, b[i:]...)...)
			}
		}
		return b
	}

	const requests = 1500
	answered, closed := 0, 0
	var conn net.Conn
	var br *bufio.Reader
	statuses := map[string]int{}
	for i := range requests {
		var body []byte
		switch rng.IntN(4) {
		case 0:
			body = seeds[rng.IntN(len(seeds))]
		case 1, 2:
			body = mutate(seeds[rng.IntN(len(seeds))])
		case 3:
			body = make([]byte, rng.IntN(256))
			for x := range body {
				body[x] = byte(rng.IntN(256))
			}
		}
		var req bytes.Buffer
		method, path := methods[rng.IntN(len(methods))], paths[rng.IntN(len(paths))]
		var extra []string
		if rng.IntN(5) > 0 {
			method, path, extra = ft.usual(rng)
		}
		fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: keybind\r\n", method, path)
		for _, h := range extra {
			req.WriteString(h + "\r\n")
		}
		for range rng.IntN(4) {
			req.WriteString(headers[rng.IntN(len(headers))] + "\r\n")
		}
		if rng.IntN(3) > 0 {
			for _, h := range ft.auth[rng.IntN(len(ft.auth))] {
				req.WriteString(h + "\r\n")
			}
		}
		if rng.IntN(10) > 0 {
			fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
		}
		req.WriteString("\r\n")
		req.Write(body)
		raw := req.Bytes()
		mutated := rng.IntN(10) == 0
		if mutated {
			raw = mutate(raw)
		}

		if conn == nil {
			var err error
			if conn, err = net.Dial("tcp", addr); err != nil {
				t.Fatalf("request %d: dial: %v", i, err)
			}
			br = bufio.NewReaderSize(conn, 64<<10)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(raw); err != nil {
			conn.Close()
			conn = nil
			closed++
			continue
		}
		// Read one answer (or the close); a request the server waits on
		// (a body shorter than its Content-Length) runs into the deadline,
		// and the connection is dropped.
		ans, err := readAnswer(br, method == "HEAD")
		n := len(ans)
		switch {
		case n > 0:
			if !bytes.HasPrefix(ans, []byte("HTTP/1.1 ")) || n < 12 {
				t.Fatalf("request %d: answer is not HTTP: %q", i, ans[:min(n, 200)])
			}
			if status := string(ans[9:12]); status >= "500" && status != "503" {
				t.Fatalf("request %d: %q\nanswered %q", i, raw[:min(len(raw), 300)], ans[:min(n, 400)])
			}
			answered++
			statuses[string(ans[9:12])]++
			// Keep the connection only when the answer was read whole, the
			// server keeps it, and nothing else can follow it (a mutated
			// request may be several; a HEAD answer's length is not known).
			if err != nil || mutated || method == "HEAD" || br.Buffered() > 0 || bytes.Contains(ans, []byte("Connection: close")) || rng.IntN(4) == 0 {
				conn.Close()
				conn = nil
			}
		default:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				// waiting for a body that never comes
			} else if err != io.EOF && !isConnReset(err) {
				t.Fatalf("request %d: %v", i, err)
			}
			conn.Close()
			conn = nil
			closed++
		}
	}
	if conn != nil {
		conn.Close()
	}
	t.Logf("%d requests: %d answered (by status %v), %d connections closed or timed out", requests, answered, statuses, closed)
	if answered < requests/2 {
		t.Errorf("only %d of %d requests answered", answered, requests)
	}
	if r := ts.get("/healthz"); r.status != 200 {
		t.Fatalf("/healthz after the fuzzing: %d", r.status)
	}
	m := ts.get("/metrics")
	if !bytes.Contains(m.body, []byte("keybind_http_panics_total 0")) {
		t.Errorf("handlers panicked:\n%s", ts.logs)
	}
}

// readAnswer reads one answer whole from br (the connection's reader,
// which keeps what follows for the next answer): its head, then as many
// body bytes as its Content-Length says (none for HEAD). It returns what it
// read and the error that stopped it early.
func readAnswer(br *bufio.Reader, head bool) ([]byte, error) {
	var b []byte
	want := 0
	for {
		line, err := br.ReadBytes('\n')
		b = append(b, line...)
		if err != nil {
			return b, err
		}
		if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
			want, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if string(line) == "\r\n" {
			break
		}
	}
	if head {
		return b, nil
	}
	body := make([]byte, want)
	n, err := io.ReadFull(br, body)
	return append(b, body[:n]...), err
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// FuzzPlainASCII checks the word-at-a-time check against a byte loop.
func FuzzPlainASCII(f *testing.F) {
	f.Add([]byte("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"))
	f.Add([]byte("abc\x1fdefghijklmnop"))
	f.Add([]byte("abcdefg\x7f\x80"))
	f.Add([]byte(" !\"#$%&'()*+,-./0123456789:;<=>?@"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := true
		for _, c := range b {
			if c < 0x20 || c >= 0x80 {
				want = false
			}
		}
		if got := plainASCII(b); got != want {
			t.Fatalf("plainASCII(%q) = %v", b, got)
		}
	})
}
