package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keybind/keybind/attest"
	"github.com/valyala/fasthttp"
)

// Problem is an error answered as application/problem+json (RFC 9457). Its
// Code is a stable "family.check" string clients may branch on; the status
// says what kind of failure it is:
//
//	400 input.…        the request is malformed
//	401 auth.…         no API key, or one nobody knows
//	403 auth.forbidden the key may not call this route
//	404 …not_found     an unknown id (also for ids of another tenant)
//	409 …conflict      the request conflicts with the current state
//	413 input.body_too_large
//	429 http.too_many_… (with Retry-After)
//	503 server.unavailable, server.shutting_down (with Retry-After)
//
// Handlers return a *Problem as their error; any other error becomes a 500
// "server.internal" (and a logged bug) unless it carries an attest.Code,
// whose family gives the status (see Server.StatusOf).
type Problem struct {
	Status int
	Code   string
	Detail string
	// RetryAfter, in seconds, is sent as the Retry-After header when
	// positive (429 and 503).
	RetryAfter int
}

// Problemf returns a problem with a formatted detail.
func Problemf(status int, code, format string, args ...any) *Problem {
	return &Problem{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Code
	}
	return p.Code + ": " + p.Detail
}

// The codes the server itself answers with.
const (
	CodeJSON             = "input.json"
	CodeBodyTooLarge     = "input.body_too_large"
	CodeBadRequest       = "input.request"
	CodeUnauthenticated  = "auth.unauthenticated"
	CodeForbidden        = "auth.forbidden"
	CodeNotFound         = "http.not_found"
	CodeMethodNotAllowed = "http.method_not_allowed"
	CodeMediaType        = "http.unsupported_media_type"
	CodeTooManyConns     = "http.too_many_connections"
	CodeRateLimited      = "http.rate_limited"
	CodeOverloaded       = "server.overloaded"
	CodeInternal         = "server.internal"
	CodeUnavailable      = "server.unavailable"
	CodeShuttingDown     = "server.shutting_down"
	CodeTimeout          = "http.timeout"
	CodeHeaderTooLarge   = "http.header_too_large"
)

// defaultStatusOf maps a code's family to its status. Families of the
// verification libraries (attestation and assertion checks) are 422: the
// request is well formed, the evidence in it is refused.
func defaultStatusOf(code string) int {
	switch {
	case strings.HasSuffix(code, ".not_found"), strings.HasPrefix(code, "input.unknown_"):
		return fasthttp.StatusNotFound
	case strings.HasSuffix(code, ".conflict"), strings.HasPrefix(code, "state."):
		return fasthttp.StatusConflict
	}
	switch attest.Code(code).Family() {
	case "input", "cbor", "asn1":
		return fasthttp.StatusBadRequest
	case "chain", "android", "appattest", "tpm", "assert", "policy":
		return fasthttp.StatusUnprocessableEntity
	case "auth":
		if code == CodeForbidden {
			return fasthttp.StatusForbidden
		}
		return fasthttp.StatusUnauthorized
	}
	return fasthttp.StatusInternalServerError
}

// problemFor turns a handler's error into the problem to answer with; the
// second result reports whether it is a bug (an error without a code).
func (s *Server) problemFor(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) {
		return p, false
	}
	var ae *attest.Error
	if errors.As(err, &ae) {
		return &Problem{Status: s.StatusOf(string(ae.Code)), Code: string(ae.Code), Detail: ae.Reason}, false
	}
	return &Problem{Status: fasthttp.StatusInternalServerError, Code: CodeInternal, Detail: "internal error; it has been logged"}, true
}

// WriteProblem writes p as the response, replacing anything written so far.
func WriteProblem(ctx *fasthttp.RequestCtx, p *Problem) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(p.Status)
	ctx.SetContentType("application/problem+json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	ctx.Response.SetBodyRaw(appendProblem(nil, p, ctx.Path()))
}

// appendProblem appends p's JSON document.
func appendProblem(b []byte, p *Problem, instance []byte) []byte {
	b = append(b, `{"type":"urn:keybind:problem:`...)
	b = appendJSONStringContent(b, p.Code)
	b = append(b, `","title":`...)
	title := fasthttp.StatusMessage(p.Status)
	b = appendJSONString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(p.Status), 10)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, p.Code)
	if p.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, p.Detail)
	}
	if len(instance) > 0 {
		b = append(b, `,"instance":`...)
		b = appendJSONString(b, string(instance))
	}
	return append(b, '}', '\n')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONStringContent(b, s)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONStringContent appends s escaped for the inside of a JSON string;
// invalid UTF-8 becomes U+FFFD.
func appendJSONStringContent(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			case c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}
