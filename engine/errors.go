package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/store"
)

// Code is a stable error code, "family.check", such as
// "enroll.install_limit". Codes are a public interface: once published, a
// code keeps its meaning. Attestation refusals keep the code their verifier
// gave (chain.expired, android.challenge_mismatch, …).
type Code string

// Err returns a sentinel for errors.Is: errors.Is(err, CodeInstallLimit.Err()).
func (c Code) Err() error { return &Error{Code: c} }

// Kind is the class of an error, which the HTTP layer maps to a status.
type Kind int

const (
	KindInternal        Kind = iota // 500: a bug or an unexpected failure
	KindInvalid                     // 400: the request is malformed
	KindNotFound                    // 404: no such tenant, user, attempt, …
	KindConflict                    // 409: the state does not allow it (exists, already answered, …)
	KindForbidden                   // 403: refused by a rule or a policy
	KindGone                        // 410: expired (enrollment challenge, sign-in attempt)
	KindTooManyRequests             // 429: back off (Error.RetryAfter says how long)
	KindUnavailable                 // 503: storage unavailable (closed, I/O error)
	KindUnauthenticated             // 401: a device request whose signature, time or nonce does not hold
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindForbidden:
		return "forbidden"
	case KindGone:
		return "gone"
	case KindTooManyRequests:
		return "too_many_requests"
	case KindUnavailable:
		return "unavailable"
	case KindUnauthenticated:
		return "unauthenticated"
	}
	return "internal"
}

// Error is every error the engine returns: a stable code, its kind, a
// human reason, and the underlying error when there is one (an
// *attest.Error for attestation refusals, so errors.As reaches it).
type Error struct {
	Code   Code
	Kind   Kind
	Reason string
	// RetryAfter is set on KindTooManyRequests: how long to wait.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error with the same code, so errors.Is(err,
// code.Err()) works whatever the reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the code of err ("" when err is nil or not from the engine).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// KindOf returns the kind of err (KindInternal for an error not from the
// engine).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// The engine's codes. Each names one refusal; the README lists them with
// their kinds.
const (
	CodeInvalid  Code = "input.invalid"     // a field is missing, too long or malformed
	CodeInternal Code = "engine.internal"   // unexpected failure (a bug)
	CodeStorage  Code = "store.unavailable" // the store is closed or failing

	CodeTenantNotFound Code = "tenant.not_found"
	CodeTenantExists   Code = "tenant.exists"
	CodePolicyInvalid  Code = "policy.invalid" // a policy value is out of range or unknown

	CodeUserNotFound Code = "user.not_found"
	CodeUserExists   Code = "user.exists"
	CodeUPNTaken     Code = "user.upn_taken"

	CodeDeviceNotFound     Code = "device.not_found"
	CodeDeviceDisabled     Code = "device.disabled"
	CodeCredentialNotFound Code = "credential.not_found"
	CodeCredentialDisabled Code = "credential.disabled"

	CodeEnrollNotFound       Code = "enroll.not_found"
	CodeEnrollExpired        Code = "enroll.expired"
	CodeEnrollUsed           Code = "enroll.used"                // the challenge was already consumed
	CodeEnrollDisabled       Code = "enroll.disabled"            // phone sign-in is off for the tenant
	CodeEnrollNotTargeted    Code = "enroll.not_targeted"        // the user is outside the policy's target
	CodeEnrollMFARequired    Code = "enroll.mfa_push_required"   // the user has no MFA push registration
	CodeEnrollInstallLimit   Code = "enroll.install_limit"       // the user has the policy's maximum of installs
	CodeEnrollDeviceTenant   Code = "enroll.device_other_tenant" // the device is registered in another tenant
	CodeEnrollDeviceAccount  Code = "enroll.device_has_account"  // the device holds another account's credential
	CodeEnrollKeyRegistered  Code = "enroll.key_registered"      // the key is already registered
	CodeEnrollFormat         Code = "enroll.format_not_allowed"  // the tenant's policy does not accept this format
	CodeEnrollUntrusted      Code = "enroll.untrusted_key"       // the verdict does not vouch for hardware
	CodeEnrollUnsupportedKey Code = "enroll.unsupported_key"     // the attested key cannot sign answers
	CodeTPMActivated         Code = "enroll.tpm_activated"       // the enrollment already has an activated TPM attestation key
	CodeTPMNoActivation      Code = "enroll.tpm_no_activation"   // the enrollment has no pending TPM activation to answer
	CodeTPMNotActivated      Code = "enroll.tpm_not_activated"   // a tpm enrollment completed before its attestation key was activated
	CodeTPMAKMismatch        Code = "enroll.tpm_ak_mismatch"     // the certification names another attestation key than the activated one

	CodeSignInNotFound   Code = "signin.not_found"
	CodeSignInExpired    Code = "signin.expired"
	CodeSignInNotPending Code = "signin.not_pending" // already answered, cancelled or replaced
	CodeSignInNone       Code = "signin.none_pending"
	CodeSignInWrongNum   Code = "signin.wrong_number"
	CodeSignInBackoff    Code = "signin.backoff"
	CodeSignInCredential Code = "signin.credential_mismatch" // the credential is not one the attempt was sent to
	CodeSignInSignature  Code = "signin.bad_signature"
	CodeSignInReplay     Code = "signin.replay" // an App Attest counter that did not rise
	CodeSignInNotTarget  Code = "signin.not_targeted"
	CodeSignInFormat     Code = "signin.format_not_allowed" // the tenant's policy no longer has the section a WebAuthn credential's answers are checked under

	CodeAPIKeyNotFound Code = "apikey.not_found"
	CodeAPIKeyLimit    Code = "apikey.limit" // the tenant has the most API keys allowed

	CodeRequestCredential Code = "request.unknown_credential" // a device request names no enrolled credential
	CodeRequestTimestamp  Code = "request.timestamp"          // a device request's time is outside the window
	CodeRequestReplay     Code = "request.replay"             // a device request's nonce (or signature counter) was seen before
	CodeRequestSignature  Code = "request.bad_signature"      // a device request's signature does not verify
)

func errorf(code Code, kind Kind, format string, args ...any) *Error {
	w := fmt.Errorf(format, args...)
	return &Error{Code: code, Kind: kind, Reason: w.Error(), Err: errors.Unwrap(w)}
}

func invalid(format string, args ...any) *Error {
	return errorf(CodeInvalid, KindInvalid, format, args...)
}

// storeError turns an unexpected store error into an engine error: stored
// data that does not decode is internal, anything else (closed, I/O) is
// unavailable.
func storeError(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, store.ErrCorrupt):
		return &Error{Code: CodeInternal, Kind: KindInternal, Reason: err.Error(), Err: err}
	}
	return &Error{Code: CodeStorage, Kind: KindUnavailable, Reason: err.Error(), Err: err}
}

// attestationError passes a verifier's refusal through with its own code.
// Malformed input (families input, cbor, asn1) is KindInvalid; a chain,
// format or policy refusal is KindForbidden.
func attestationError(err error) error {
	code := attest.CodeOf(err)
	if code == "" {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return &Error{Code: CodeInternal, Kind: KindInternal, Reason: "attestation verifier: " + err.Error(), Err: err}
	}
	kind := KindForbidden
	switch code.Family() {
	case "input", "cbor", "asn1":
		kind = KindInvalid
	}
	return &Error{Code: Code(code), Kind: kind, Reason: err.Error(), Err: err}
}
