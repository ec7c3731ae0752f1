package main

import (
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors"
)

func runAttestWebAuthn(e *env, args []string) int {
	fs := newFlags(e, "keybind attest webauthn --attestation-object V --client-data-json V --challenge V --origin O --rp-id ID [flags]", `
Verify a WebAuthn registration (the attestation object and the
clientDataJSON a browser returns from navigator.credentials.create) and
print the verdict and facts as JSON. Formats: tpm (roots: the built-in
Microsoft TPM Root Certificate Authority 2014 unless --roots is given),
apple-appattest (the App ID is the RP ID; roots: the built-in Apple App
Attestation Root CA unless --roots is given) and none (refused unless
--min-security-level software).

Values use the test-vector syntax: hex:..., b64:..., b64url:..., text:...
or file:PATH.`)
	object := fs.String("attestation-object", "", "the attestation object, CBOR (required)")
	clientData := fs.String("client-data-json", "", "the clientDataJSON (required)")
	challenge := fs.String("challenge", "", "the challenge the server sent (required)")
	var origins stringValues
	fs.Var(&origins, "origin", "an accepted origin, such as https://login.example.com (required, repeatable)")
	rpID := fs.String("rp-id", "", "the relying party ID (required)")
	var roots pemOrDERValues
	fs.Var(&roots, "roots", "trust anchors of the format: PEM files or DER values (repeatable; default: built-in)")
	level := fs.String("min-security-level", "tee", "software accepts keys nothing vouches for (format none); tee or strongbox do not")
	requireUV := fs.Bool("require-user-auth", false, "refuse registrations without user verification")
	environment := fs.String("environment", "production", "App Attest environment accepted: production, development or any")
	when := fs.String("time", "", "validation time, RFC 3339 (default: now)")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() != 0 {
		e.errorf("attest webauthn: unexpected argument %q", fs.Arg(0))
		return 2
	}
	var opts webauthn.Options
	var obj, cd []byte
	for _, f := range []struct {
		name, value string
		dst         *[]byte
	}{{"attestation-object", *object, &obj}, {"client-data-json", *clientData, &cd}, {"challenge", *challenge, &opts.Challenge}} {
		if f.value == "" {
			e.errorf("attest webauthn: --%s is required", f.name)
			return 2
		}
		b, err := testvectors.DecodeValue(f.value, ".")
		if err != nil {
			e.errorf("attest webauthn: --%s: %v", f.name, err)
			return 2
		}
		*f.dst = b
	}
	if len(origins) == 0 || *rpID == "" {
		e.errorf("attest webauthn: --origin and --rp-id are required")
		return 2
	}
	opts.Origins, opts.RPID = origins, *rpID
	switch *level {
	case "software":
		opts.Policy.AllowSoftwareKeys = true
	case "tee", "strongbox":
	default:
		e.errorf("attest webauthn: --min-security-level %q is not software, tee or strongbox", *level)
		return 2
	}
	opts.Policy.RequireUserVerification = *requireUV
	var err error
	if opts.Time, err = attestTimeFlag(*when); err != nil {
		e.errorf("attest webauthn: --time: %v", err)
		return 2
	}
	anchors, err := roots.certificates()
	if err != nil {
		e.errorf("attest webauthn: --roots: %v", err)
		return 2
	}
	if len(anchors) > 0 {
		// Each format reads the roots of its own.
		opts.TPMRoots, opts.AppAttestRoots = anchors, anchors
	}
	if opts.AppAttestEnvironment, err = appattest.ParseEnvironment(*environment); err != nil {
		e.errorf("attest webauthn: --environment: %v", err)
		return 2
	}
	v, err := webauthn.Verify(obj, cd, &opts)
	return printVerdict(e, v, err)
}

// stringValues is a repeatable string flag.
type stringValues []string

func (v *stringValues) String() string     { return "" }
func (v *stringValues) Set(s string) error { *v = append(*v, s); return nil }
