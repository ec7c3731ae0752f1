// Package client is the Go client of keybind's HTTP API, for the three
// audiences of the server:
//
//   - auth servers and administrators, with an API key (Client): sign-ins,
//     their outcome (with a long poll) and cancellation, enrollments;
//     tenants, policies, users, groups, devices, credentials, API keys, the
//     audit log and the export of the store;
//   - phones and PCs enrolling a key (Client without a key): Attest, and
//     the TPM activation of a PC;
//   - enrolled phones and PCs (Phone): requests signed with the credential
//     key (SignRequest), pending sign-ins and signed answers.
//
// Every refusal of the server is a *Problem with its stable code:
//
//	c := client.New("https://keybind.example", apiKey)
//	start, err := c.StartSignIn(ctx, client.SignInRequest{Username: "alice@contoso.com"})
//	var p *client.Problem
//	if errors.As(err, &p) && p.Code == "signin.backoff" { time.Sleep(p.RetryAfter) }
//
//	phone := &client.Phone{BaseURL: url, Credential: cred.ID, Prover: client.SignerProver{Signer: key}}
//	pending, err := phone.Pending(ctx)
//	out, err := phone.Answer(ctx, pending[0], engine.DecisionApprove, start.Number)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Problem is an error answered by the server (RFC 9457 problem details):
// the HTTP status, the stable code, the detail and, for 429 and 503, how
// long to wait.
type Problem struct {
	Status     int
	Code       string
	Detail     string
	RetryAfter time.Duration
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Code)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail)
}

// Client calls the API with an API key (or none, for the enrollment
// routes).
type Client struct {
	// BaseURL is the server's URL ("https://keybind.example:8443").
	BaseURL string
	// Key is the API key, sent as "Authorization: Bearer KEY".
	Key string
	// HTTP is the HTTP client; nil means one with a 60-second timeout.
	HTTP *http.Client
}

// New returns a client of the server at baseURL with an API key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key}
}

var defaultHTTP = &http.Client{Timeout: 60 * time.Second}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// Do sends a request with in as its JSON body (none when nil) and decodes
// the JSON answer into out (unless out is nil or the answer is 204). A
// *json.RawMessage out receives the answer as it came.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	return send(c.http(), req, out)
}

// send sends req and decodes its answer into out, or the problem.
func send(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return problemOf(resp, b)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], b...)
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("keybind answered %d with a body that does not decode: %v", resp.StatusCode, err)
	}
	return nil
}

// problemOf reads the problem of a failed answer.
func problemOf(resp *http.Response, body []byte) *Problem {
	p := &Problem{Status: resp.StatusCode}
	var doc struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Code != "" {
		p.Code, p.Detail = doc.Code, doc.Detail
	} else {
		p.Code = "http." + strconv.Itoa(resp.StatusCode)
		p.Detail = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		p.RetryAfter = time.Duration(s) * time.Second
	}
	return p
}

// esc escapes a path segment.
func esc(s string) string { return url.PathEscape(s) }
