package engine

import (
	"context"
	"crypto/sha256"
	"crypto/x509"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/webauthn"
)

// A WebAuthn registration enrolls like a phone's attestation: the browser
// or platform authenticator makes a credential with the enrollment
// challenge as the WebAuthn challenge (navigator.credentials.create), and
// the evidence is its attestation_object and client_data_json. Its answers
// are WebAuthn assertions (navigator.credentials.get) whose challenge is
// SHA-256 of AnswerMessage, or App Attest assertions for a credential of
// statement format apple-appattest.

type webauthnVerifier struct {
	v      *webauthn.Verifier
	status *androidkey.StatusSource
}

// WebAuthnVerifier verifies "webauthn" evidence (parts attestation_object
// and client_data_json) with v, which keeps its caches across calls, under
// the tenant's WebAuthn policy: the RP ID and origins, software keys,
// user verification, the Android policy of android-key statements, the App
// Attest apps and environment of apple-appattest statements (refused
// without them: enroll.format_not_allowed). Trust anchors are each
// statement format's built-in roots and, failing those, the extra roots the
// policy names for it. status, when not nil, supplies Google's revocation
// list for android-key statements.
func WebAuthnVerifier(v *webauthn.Verifier, status *androidkey.StatusSource) AttestationVerifier {
	return &webauthnVerifier{v: v, status: status}
}

func (w *webauthnVerifier) VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error) {
	ev := req.Evidence
	if err := evidenceParts(FormatWebAuthn, ev, []string{"attestation_object", "client_data_json"}); err != nil {
		return nil, err
	}
	p := req.Policy.WebAuthn
	if p == nil {
		return nil, attest.Errorf(webauthn.CodeInputRPID, "no WebAuthn policy")
	}
	android := AndroidPolicy{}
	if p.Android != nil {
		android = *p.Android
	}
	androidPolicy, err := android.verifierPolicy()
	if err != nil {
		return nil, attest.Errorf(androidkey.CodePolicy, "%v", err)
	}
	opts := webauthn.Options{
		Challenge: req.Challenge, Origins: p.Origins, RPID: p.RPID, Time: req.Time,
		Policy: webauthn.Policy{AllowSoftwareKeys: p.AllowSoftwareKeys, RequireUserVerification: p.userVerification(), Android: androidPolicy},
	}
	statement := statementFormat(ev["attestation_object"])
	if statement == appattest.Format {
		if p.AppAttest == nil {
			return nil, errorf(CodeEnrollFormat, KindForbidden, "the tenant's WebAuthn policy accepts no apple-appattest statements")
		}
		env, err := appattest.ParseEnvironment(p.AppAttest.Environment)
		if err != nil {
			return nil, attest.Errorf(appattest.CodeEnvironment, "%v", err)
		}
		opts.AppAttestAppIDs, opts.AppAttestEnvironment = p.AppAttest.AppIDs, env
	}
	if statement == androidkey.Format && w.status != nil {
		list, err := w.status.List(ctx)
		if err != nil {
			return nil, err
		}
		opts.AndroidRevocation = list
	}
	verdict, err := w.v.Verify(ev["attestation_object"], ev["client_data_json"], &opts)
	if attest.CodeOf(err) == attest.Code("chain.untrusted_root") {
		// Not the vendor's: the roots the policy names for the format are
		// the other anchors.
		var extra []*x509.Certificate
		switch statement {
		case "tpm":
			extra = rootsNamed(req.Roots, p.TPMExtraRoots)
			opts.TPMRoots = extra
		case androidkey.Format:
			extra = rootsNamed(req.Roots, android.ExtraRoots)
			opts.AndroidRoots = androidkey.NewRoots(extra...)
		case appattest.Format:
			extra = rootsNamed(req.Roots, p.AppAttest.ExtraRoots)
			opts.AppAttestRoots = extra
		}
		if len(extra) > 0 {
			verdict, err = w.v.Verify(ev["attestation_object"], ev["client_data_json"], &opts)
		}
	}
	if err != nil {
		return nil, err
	}
	return verdict, nil
}

func rootsNamed(roots map[string][]*x509.Certificate, names []string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, n := range names {
		out = append(out, roots[n]...)
	}
	return out
}

// statementFormat returns the fmt of an attestation object, or "" when it
// does not decode (the verifier then names why).
func statementFormat(object []byte) string {
	var top map[string]cbor.RawMessage
	if attest.UnmarshalCBOR("attestation object", object, &top) != nil {
		return ""
	}
	var f string
	if attest.UnmarshalCBOR("attestation object fmt", top["fmt"], &f) != nil {
		return ""
	}
	return f
}

// AnswerChallenge is the WebAuthn challenge of an answer: SHA-256 of its
// AnswerMessage. A WebAuthn credential answers with the assertion
// navigator.credentials.get makes over it.
func AnswerChallenge(message []byte) []byte {
	h := sha256.Sum256(message)
	return h[:]
}
