// Package attest holds what every keybind attestation format shares: the typed
// error that names the check which failed, and the verdict a format returns
// when an attestation is accepted.
//
// The formats live in sub-packages, one per format (attest/androidkey,
// attest/appattest, attest/tpm, attest/webauthn). Each takes bytes and
// parameters and returns either a verdict with every fact it extracted, or an
// *Error whose Code is stable and documented (see VECTORS.md, "Stable error
// code families"):
//
//	v, err := verifier.Verify(chain, opts)
//	var e *attest.Error
//	if errors.As(err, &e) {
//		log.Printf("rejected by check %s: %s", e.Code, e.Reason)
//	}
//
// Codes are compared with errors.Is against a sentinel made by Code.Err, or
// by family with Code.Family:
//
//	if errors.Is(err, androidkey.ErrChallengeMismatch) { … }
//	if attest.CodeOf(err).Family() == "chain" { … }
package attest

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
)

// Code is a stable error code: a family and a check, separated by a dot, such
// as "chain.expired" or "android.challenge_mismatch". Codes are a public
// interface: once published, a code keeps its meaning.
type Code string

// Family returns the part of the code before the first dot ("chain" for
// "chain.expired").
func (c Code) Family() string {
	f, _, _ := strings.Cut(string(c), ".")
	return f
}

// Err returns a sentinel error for the code, for use with errors.Is.
func (c Code) Err() error { return &Error{Code: c} }

// HasPrefix reports whether the code starts with prefix ("chain." matches
// "chain.expired"). This is how test vectors name an expected failure.
func (c Code) HasPrefix(prefix string) bool { return strings.HasPrefix(string(c), prefix) }

// Error is a rejection: the stable code of the check that failed, a human
// reason, and optionally the underlying error.
type Error struct {
	Code   Code
	Reason string
	Err    error
}

// Errorf returns an *Error with the given code and a formatted reason. A %w
// verb in format wraps its operand as the underlying error.
func Errorf(code Code, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Code: code, Reason: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, code.Err()) matches whatever the reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the code of the first *Error in err's chain, or "" when err
// carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Trust says what an accepted attestation proves about where its key lives.
type Trust string

const (
	// TrustHardware: the attestation chains to a pinned vendor root that
	// vouches for secure hardware (TEE, StrongBox, Secure Enclave, TPM).
	TrustHardware Trust = "hardware"
	// TrustNone: nothing vouches for the key (WebAuthn "none" format); only a
	// policy that explicitly allows software keys accepts it.
	TrustNone Trust = "none"
)

// Verdict is what every format reports when it accepts an attestation.
type Verdict struct {
	// Format is the attestation format: "android-key", "apple-appattest",
	// "tpm" or "none".
	Format string
	// Trust is the level of assurance; Root names the trust anchor the chain
	// ended in (empty when Trust is TrustNone).
	Trust Trust
	Root  string
	// PublicKey is the attested key (*ecdsa.PublicKey, *rsa.PublicKey or
	// ed25519.PublicKey).
	PublicKey crypto.PublicKey
	// Facts holds every fact the format extracted, by the names of the
	// test-vector format (security_level, environment, counter, …) plus
	// format-specific extras. Values are JSON-friendly: strings, booleans,
	// integers, []string, and []byte (encoded as base64 by encoding/json).
	Facts map[string]any
}
