package engine

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/store"
)

// Evidence is an attestation as the phone sends it: its parts by the names
// of the test-vector inputs of its format (VECTORS.md):
//
//	android-key      chain (the DER certificates, leaf first, concatenated)
//	apple-appattest  attestation, key_id
//	tpm              ak_public, public, create_attestation, create_signature, ak_certificate (optional)
//
// The engine keeps it, zstd-compressed, with the credential.
type Evidence map[string][]byte

// MaxEvidence bounds the total size of an attestation's parts.
const MaxEvidence = 64 << 10

// AttestationRequest is what an AttestationVerifier checks.
type AttestationRequest struct {
	// Format is the attestation format (FormatAndroidKey, …).
	Format   string
	Evidence Evidence
	// Challenge is the enrollment challenge the attestation must carry.
	Challenge []byte
	// Policy is the tenant's attestation policy with defaults filled in;
	// the verifier reads the section of its format (never nil for it).
	Policy AttestationPolicy
	// ExtraRoots are the trust anchors the section's ExtraRoots name, in
	// addition to the format's built-in vendor roots.
	ExtraRoots []*x509.Certificate
	// Time is the validation time.
	Time time.Time
}

// AttestationVerifier verifies one attestation format. On success it
// returns the verdict (the attested public key and every fact); on refusal
// an error carrying an attest code (an *attest.Error), which the engine
// passes through.
type AttestationVerifier interface {
	VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error)
}

// AttestationVerifierFunc adapts a function to AttestationVerifier.
type AttestationVerifierFunc func(ctx context.Context, req AttestationRequest) (*attest.Verdict, error)

func (f AttestationVerifierFunc) VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error) {
	return f(ctx, req)
}

// encodeEvidence encodes evidence for storage (deterministic CBOR).
func encodeEvidence(ev Evidence) ([]byte, error) {
	return store.Marshal(map[string][]byte(ev))
}

func decodeEvidence(b []byte) (Evidence, error) {
	var m map[string][]byte
	if err := store.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return Evidence(m), nil
}

// checkEvidence bounds the evidence: known part names, total size.
func checkEvidence(ev Evidence) error {
	if len(ev) == 0 {
		return invalid("evidence is empty")
	}
	total := 0
	for name, v := range ev {
		if len(name) == 0 || len(name) > 64 {
			return invalid("evidence part name of %d bytes", len(name))
		}
		total += len(name) + len(v)
	}
	if total > MaxEvidence {
		return invalid("evidence of %d bytes is over the limit of %d", total, MaxEvidence)
	}
	return nil
}

// section returns the extra root names of a format's policy section, and
// whether the section is present (the format may enroll).
func (p AttestationPolicy) section(format string) (roots []string, ok bool) {
	switch format {
	case FormatAndroidKey:
		if p.Android != nil {
			return p.Android.ExtraRoots, true
		}
	case FormatAppAttest:
		if p.AppAttest != nil {
			return p.AppAttest.ExtraRoots, true
		}
	case FormatTPM:
		if p.TPM != nil {
			return p.TPM.ExtraRoots, true
		}
	}
	return nil, false
}

// validate checks a policy's values (after Effective) against the
// server's configuration.
func (p Policy) validate(roots map[string][]*x509.Certificate) error {
	bad := func(format string, args ...any) error {
		return errorf(CodePolicyInvalid, KindInvalid, format, args...)
	}
	switch p.NumberMatching {
	case ModeType, ModeChoose:
	default:
		return bad("number_matching %q is not %q or %q", p.NumberMatching, ModeType, ModeChoose)
	}
	if lt := p.attemptLifetime(); lt < MinAttemptLifetime || lt > MaxAttemptLifetime {
		return bad("attempt_lifetime_seconds %d is outside [%d, %d]", p.AttemptLifetimeSeconds, int(MinAttemptLifetime/time.Second), int(MaxAttemptLifetime/time.Second))
	}
	if p.MaxInstalls < 1 || p.MaxInstalls > MaxMaxInstalls {
		return bad("max_installs %d is outside [1, %d]", p.MaxInstalls, MaxMaxInstalls)
	}
	b := p.Backoff
	if b.Free < 1 || b.Free > 100 || b.BaseSeconds < 1 || b.MaxSeconds < b.BaseSeconds || b.MaxSeconds > 7*24*3600 {
		return bad("backoff %+v is out of range (free 1-100, base >= 1 s, base <= max <= 7 days)", b)
	}
	for _, list := range [][]string{p.Target.Groups, p.Target.ExcludeGroups, p.Federation.Domains} {
		if len(list) > 256 {
			return bad("a list of %d entries (at most 256)", len(list))
		}
		for _, s := range list {
			if s == "" || len(s) > 256 {
				return bad("an empty or over-long group or domain name")
			}
		}
	}
	if p.Federation.HonorLoginHint && p.Federation.SignInURL == "" {
		return bad("federation honours login_hint but has no sign_in_url")
	}
	if len(p.Federation.SignInURL) > 2048 {
		return bad("federation sign_in_url is too long")
	}
	for _, d := range p.Federation.Domains {
		if d != strings.ToLower(d) {
			return bad("federated domain %q is not lower case", d)
		}
	}
	if a := p.Attestation.Android; a != nil {
		if _, err := a.verifierPolicy(); err != nil {
			return bad("android: %v", err)
		}
	}
	if a := p.Attestation.AppAttest; a != nil {
		if len(a.AppIDs) == 0 {
			return bad("apple_appattest needs at least one app id")
		}
		if _, err := appattest.ParseEnvironment(a.Environment); err != nil {
			return bad("apple_appattest: %v", err)
		}
	}
	for _, format := range []string{FormatAndroidKey, FormatAppAttest, FormatTPM} {
		names, _ := p.Attestation.section(format)
		for _, n := range names {
			if _, ok := roots[n]; !ok {
				return bad("%s extra root %q is not configured on this server", format, n)
			}
		}
	}
	return nil
}

// verifyAttestation runs the format's verifier under the tenant's policy.
func (e *Engine) verifyAttestation(ctx context.Context, policy Policy, format string, ev Evidence, challenge []byte, at time.Time) (*attest.Verdict, error) {
	names, ok := policy.Attestation.section(format)
	v := e.verifiers[format]
	if !ok || v == nil {
		return nil, errorf(CodeEnrollFormat, KindForbidden, "the tenant's policy does not accept %q attestations", format)
	}
	var roots []*x509.Certificate
	for _, n := range names {
		roots = append(roots, e.roots[n]...)
	}
	verdict, err := v.VerifyAttestation(ctx, AttestationRequest{
		Format: format, Evidence: ev, Challenge: challenge, Policy: policy.Attestation, ExtraRoots: roots, Time: at,
	})
	if err != nil {
		return nil, attestationError(err)
	}
	if verdict == nil || verdict.PublicKey == nil {
		return nil, errorf(CodeInternal, KindInternal, "the %s verifier returned no key", format)
	}
	if verdict.Trust != attest.TrustHardware {
		return nil, errorf(CodeEnrollUntrusted, KindForbidden, "the attestation does not vouch for hardware (trust %q)", verdict.Trust)
	}
	return verdict, nil
}

func formatKnown(format string) error {
	if platformOf(format) == "" {
		return invalid("unknown attestation format %q", format)
	}
	return nil
}
