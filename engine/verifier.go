package engine

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
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
//	tpm              public, create_attestation, create_signature (the sign-in
//	                 key's go-attestation CertificationParameters), ak_public
//	                 (optional: the activated AK's public area)
//	webauthn         attestation_object, client_data_json
//
// The engine keeps it, zstd-compressed, with the credential; for tpm it
// adds what the enrollment's activation proved (ak, ak_public,
// ak_create_data, ak_create_attestation, ak_create_signature, and
// ek_certificate, ek_issuers, ek_public as sent).
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
	// addition to the format's built-in vendor roots. For tpm they are the
	// EK roots: Config.TPMVendorRoots and those the section names.
	ExtraRoots []*x509.Certificate
	// Roots are the server's named trust anchors (Config.Roots), for a
	// section that names several sets (webauthn: one per statement format).
	// Read-only.
	Roots map[string][]*x509.Certificate
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
	case FormatWebAuthn:
		if w := p.WebAuthn; w != nil {
			names := append([]string{}, w.TPMExtraRoots...)
			if w.Android != nil {
				names = append(names, w.Android.ExtraRoots...)
			}
			if w.AppAttest != nil {
				names = append(names, w.AppAttest.ExtraRoots...)
			}
			return names, true
		}
	}
	return nil, false
}

// formatRoots returns the extra trust anchors of a format under p: those
// its section names, and for tpm the server's TPM vendor roots.
func (e *Engine) formatRoots(p AttestationPolicy, format string) []*x509.Certificate {
	names, _ := p.section(format)
	var roots []*x509.Certificate
	if format == FormatTPM {
		roots = append(roots, e.tpmRoots...)
	}
	return append(roots, e.namedRoots(names)...)
}

func (e *Engine) namedRoots(names []string) []*x509.Certificate {
	var roots []*x509.Certificate
	for _, n := range names {
		roots = append(roots, e.roots[n]...)
	}
	return roots
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
	if a := p.Attestation.TPM; a != nil {
		if err := a.validate(); err != nil {
			return bad("tpm: %v", err)
		}
	}
	if a := p.Attestation.WebAuthn; a != nil {
		if err := a.validate(); err != nil {
			return bad("webauthn: %v", err)
		}
	}
	for _, format := range []string{FormatAndroidKey, FormatAppAttest, FormatTPM, FormatWebAuthn} {
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
	_, ok := policy.Attestation.section(format)
	v := e.verifiers[format]
	if !ok || v == nil {
		return nil, errorf(CodeEnrollFormat, KindForbidden, "the tenant's policy does not accept %q attestations", format)
	}
	verdict, err := v.VerifyAttestation(ctx, AttestationRequest{
		Format: format, Evidence: ev, Challenge: challenge, Policy: policy.Attestation,
		ExtraRoots: e.formatRoots(policy.Attestation, format), Roots: e.roots, Time: at,
	})
	if err != nil {
		return nil, attestationError(err)
	}
	if verdict == nil || verdict.PublicKey == nil {
		return nil, errorf(CodeInternal, KindInternal, "the %s verifier returned no key", format)
	}
	switch {
	case verdict.Trust == attest.TrustHardware:
	case format == FormatWebAuthn && verdict.Trust == attest.TrustNone && policy.Attestation.WebAuthn.AllowSoftwareKeys:
		// The tenant accepts keys nothing vouches for; the credential
		// says so (Trust "none").
	default:
		return nil, errorf(CodeEnrollUntrusted, KindForbidden, "the attestation does not vouch for hardware (trust %q)", verdict.Trust)
	}
	return verdict, nil
}

func formatKnown(format string) error {
	switch format {
	case FormatAndroidKey, FormatAppAttest, FormatTPM, FormatWebAuthn:
		return nil
	}
	return invalid("unknown attestation format %q", format)
}

// validate checks a TPM policy's values.
func (p *TPMPolicy) validate() error {
	switch p.EKTrust {
	case "", EKTrustCertificate:
		if len(p.EKAllowList) > 0 {
			return fmt.Errorf("ek_allow_list is read only with ek_trust %q", EKTrustAllowList)
		}
	case EKTrustAllowList:
		if len(p.EKAllowList) == 0 {
			return fmt.Errorf("ek_trust %q with an empty ek_allow_list trusts no TPM", EKTrustAllowList)
		}
	default:
		return fmt.Errorf("ek_trust %q is not %q or %q", p.EKTrust, EKTrustCertificate, EKTrustAllowList)
	}
	if len(p.EKAllowList) > MaxEKAllowList {
		return fmt.Errorf("ek_allow_list of %d entries (at most %d)", len(p.EKAllowList), MaxEKAllowList)
	}
	for _, h := range p.EKAllowList {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || h != strings.ToLower(h) {
			return fmt.Errorf("ek_allow_list entry %q is not a lower-case hex SHA-256", h)
		}
	}
	return nil
}

// MaxOrigins bounds a WebAuthn policy's origins.
const MaxOrigins = 64

// validate checks a WebAuthn policy's values.
func (p *WebAuthnPolicy) validate() error {
	if err := checkRPID(p.RPID); err != nil {
		return err
	}
	if len(p.Origins) == 0 || len(p.Origins) > MaxOrigins {
		return fmt.Errorf("origins must list 1 to %d origins", MaxOrigins)
	}
	for _, o := range p.Origins {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	if p.Android != nil {
		if _, err := p.Android.verifierPolicy(); err != nil {
			return fmt.Errorf("android: %v", err)
		}
	}
	if a := p.AppAttest; a != nil {
		if len(a.AppIDs) == 0 {
			return fmt.Errorf("apple_appattest needs at least one app id")
		}
		if _, err := appattest.ParseEnvironment(a.Environment); err != nil {
			return fmt.Errorf("apple_appattest: %v", err)
		}
	}
	return nil
}

// checkRPID checks a relying party ID: a lower-case domain name.
func checkRPID(id string) error {
	if id == "" || len(id) > 253 || id != strings.ToLower(id) {
		return fmt.Errorf("rp_id %q is not a lower-case domain name", id)
	}
	for _, label := range strings.Split(id, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("rp_id %q is not a domain name", id)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("rp_id %q is not a domain name", id)
			}
		}
	}
	return nil
}

// checkOrigin checks an accepted origin: https://host[:port] (or
// http://localhost[:port] for development), or an Android app's
// android:apk-key-hash: origin.
func checkOrigin(o string) error {
	if len(o) > 512 || strings.ContainsAny(o, " \t\r\n") {
		return fmt.Errorf("origin %q is not an origin", o)
	}
	if h, ok := strings.CutPrefix(o, "android:apk-key-hash:"); ok {
		if h == "" {
			return fmt.Errorf("origin %q has no key hash", o)
		}
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("origin %q is not scheme://host[:port]", o)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && u.Hostname() == "localhost") {
		return fmt.Errorf("origin %q is not https (http only for localhost)", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("origin %q is not lower case, as browsers send it", o)
	}
	return nil
}
