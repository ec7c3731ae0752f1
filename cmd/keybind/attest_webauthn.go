package main

import (
	"strings"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors"
)

func runAttestWebAuthn(e *env, args []string) int {
	fs := newFlags(e, "keybind attest webauthn --attestation-object V --client-data-json V --challenge V --origin O --rp-id ID [flags]", `
Verify a WebAuthn registration (the attestation object and the
clientDataJSON a browser returns from navigator.credentials.create) and
print the verdict and facts as JSON. Formats, and their roots unless
--roots is given: tpm (the Microsoft TPM Root Certificate Authority 2014),
android-key (Google's hardware attestation roots), apple-appattest (the
Apple App Attestation Root CA; the App ID is the RP ID), and none (refused
unless the policy's min_security_level is software).

--policy is the policy object of the test-vector format, as JSON text or a
value holding it: min_security_level (software, tee, strongbox),
require_verified_boot, require_device_locked, require_user_auth,
packages, signing_digests, min_os_patch_level, expiry.

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
	policy := fs.String("policy", "", `the policy, a JSON object ({"min_security_level":"software"}) or a value holding one (file:policy.json) (default: the safe default)`)
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
	var err error
	if p := strings.TrimSpace(*policy); p != "" {
		data := []byte(p)
		if !strings.HasPrefix(p, "{") {
			if data, err = testvectors.DecodeValue(p, "."); err != nil {
				e.errorf("attest webauthn: --policy: %v", err)
				return 2
			}
		}
		if opts.Policy, err = webauthn.ParsePolicy(data); err != nil {
			e.errorf("attest webauthn: --policy: %v", err)
			return 2
		}
	}
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
		opts.TPMRoots, opts.AppAttestRoots, opts.AndroidRoots = anchors, anchors, androidkey.NewRoots(anchors...)
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
