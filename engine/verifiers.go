package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"slices"
	"sort"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/webauthn"
)

// The built-in verifiers: the formats' packages behind AttestationVerifier
// and AssertionVerifier.

// CodeEvidence is the code of evidence whose parts do not fit its format
// (a missing or unknown part, a chain that is not DER certificates).
const CodeEvidence attest.Code = "input.evidence"

// Verifiers returns a verifier for every format built into this server
// (Android Key Attestation, Apple App Attest, TPM key certification and
// WebAuthn registrations), with fresh caches. revocation, when not nil, is
// Google's status list of Android attestation certificates, checked for
// every android-key chain (WebAuthn android-key statements included); a list
// that cannot be read rejects the attestation (fail closed).
func Verifiers(revocation *androidkey.StatusSource) map[string]AttestationVerifier {
	return map[string]AttestationVerifier{
		FormatAndroidKey: AndroidVerifier(androidkey.NewVerifier(), revocation),
		FormatAppAttest:  AppAttestVerifier(appattest.NewVerifier()),
		FormatTPM:        TPMVerifier(nil),
		FormatWebAuthn:   WebAuthnVerifier(webauthn.NewVerifier(), revocation),
	}
}

// evidenceParts checks that ev has exactly the required parts and, of the
// optional ones, nothing else.
func evidenceParts(format string, ev Evidence, required []string, optional ...string) error {
	for _, r := range required {
		if len(ev[r]) == 0 {
			return attest.Errorf(CodeEvidence, "%s evidence needs a %q part", format, r)
		}
	}
	names := make([]string, 0, len(ev))
	for n := range ev {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !slices.Contains(required, n) && !slices.Contains(optional, n) {
			return attest.Errorf(CodeEvidence, "%s evidence has an unknown part %q", format, n)
		}
	}
	return nil
}

// SplitDER splits concatenated DER values (an Android chain as one byte
// string) into its elements.
func SplitDER(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(out) == androidkey.MaxChainLength {
			return nil, errors.New("too many certificates")
		}
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(b, &raw)
		if err != nil {
			return nil, err
		}
		out = append(out, raw.FullBytes)
		b = rest
	}
	return out, nil
}

// JoinDER concatenates DER values: the "chain" part of Android evidence.
func JoinDER(certs [][]byte) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c...)
	}
	return out
}

type androidVerifier struct {
	v      *androidkey.Verifier
	status *androidkey.StatusSource
}

// AndroidVerifier verifies "android-key" evidence (part "chain") with v
// under the tenant's Android policy. Trust anchors are Google's roots and
// the tenant's extra roots. status, when not nil, supplies Google's
// revocation list (a list that cannot be read fails closed).
func AndroidVerifier(v *androidkey.Verifier, status *androidkey.StatusSource) AttestationVerifier {
	return &androidVerifier{v: v, status: status}
}

func (a *androidVerifier) VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error) {
	if err := evidenceParts(FormatAndroidKey, req.Evidence, []string{"chain"}); err != nil {
		return nil, err
	}
	chain, err := SplitDER(req.Evidence["chain"])
	if err != nil {
		return nil, attest.Errorf(CodeEvidence, "android-key chain is not a sequence of DER certificates: %v", err)
	}
	if req.Policy.Android == nil {
		return nil, attest.Errorf(androidkey.CodePolicy, "no Android policy")
	}
	policy, err := req.Policy.Android.verifierPolicy()
	if err != nil {
		return nil, attest.Errorf(androidkey.CodePolicy, "%v", err)
	}
	opts := androidkey.Options{Challenge: req.Challenge, Time: req.Time, Policy: policy}
	if a.status != nil {
		list, err := a.status.List(ctx)
		if err != nil {
			return nil, err
		}
		opts.Revocation = list
	}
	res, err := a.v.Verify(chain, opts)
	if attest.CodeOf(err) == androidkey.CodeUntrustedRoot && len(req.ExtraRoots) > 0 {
		// Not Google's: the tenant's extra roots are the other anchors.
		opts.Roots = androidkey.NewRoots(req.ExtraRoots...)
		res, err = a.v.Verify(chain, opts)
	}
	if err != nil {
		return nil, err
	}
	return res.Verdict, nil
}

// verifierPolicy returns the androidkey policy of p (defaults filled, as
// Policy.Effective does) through its JSON form.
func (p *AndroidPolicy) verifierPolicy() (androidkey.Policy, error) {
	b, err := json.Marshal(p.withDefaults())
	if err != nil {
		return androidkey.Policy{}, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return androidkey.Policy{}, err
	}
	delete(m, "extra_roots") // the engine's, not the verifier's
	b, err = json.Marshal(m)
	if err != nil {
		return androidkey.Policy{}, err
	}
	return androidkey.ParsePolicy(b)
}

type appAttestVerifier struct{ v *appattest.Verifier }

// AppAttestVerifier verifies "apple-appattest" evidence (parts
// "attestation" and "key_id") with v under the tenant's App Attest policy.
// The app passes SHA-256 of the enrollment challenge to attestKey as the
// client data hash. Trust anchors are Apple's root and the tenant's extra
// roots.
func AppAttestVerifier(v *appattest.Verifier) AttestationVerifier {
	return &appAttestVerifier{v: v}
}

func (a *appAttestVerifier) VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error) {
	if err := evidenceParts(FormatAppAttest, req.Evidence, []string{"attestation", "key_id"}); err != nil {
		return nil, err
	}
	p := req.Policy.AppAttest
	if p == nil {
		return nil, attest.Errorf(appattest.CodeAppIDs, "no App Attest policy")
	}
	env, err := appattest.ParseEnvironment(p.Environment)
	if err != nil {
		return nil, attest.Errorf(appattest.CodeEnvironment, "%v", err)
	}
	hash := sha256.Sum256(req.Challenge)
	opts := appattest.AttestationOptions{ClientDataHash: hash[:], AppIDs: p.AppIDs, Environment: env, Time: req.Time}
	if len(req.ExtraRoots) > 0 {
		apple, err := appattest.AppleRoot()
		if err != nil {
			return nil, err
		}
		opts.Roots = append([]*x509.Certificate{apple}, req.ExtraRoots...)
	}
	att, err := a.v.VerifyAttestation(req.Evidence["attestation"], req.Evidence["key_id"], opts)
	if err != nil {
		return nil, err
	}
	return att.Verdict, nil
}

type appAttestAssertions struct{}

// AppAttestAssertions verifies the App Attest assertions that sign
// answers (with appattest.VerifyAssertion).
func AppAttestAssertions() AssertionVerifier { return appAttestAssertions{} }

func (appAttestAssertions) VerifyAssertion(key crypto.PublicKey, assertion, clientData []byte, appIDs []string, previous uint32) (uint32, error) {
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return 0, attest.Errorf(appattest.CodePublicKey, "an App Attest credential holds a %T key", key)
	}
	res, err := appattest.VerifyAssertion(assertion, clientData, pub, appattest.AssertionOptions{AppIDs: appIDs, PreviousCounter: previous})
	if err != nil {
		return 0, err
	}
	return res.Counter, nil
}
