package testvectors

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/webauthn"
)

// webauthnBuiltinRoots names the built-in roots of each WebAuthn format, as
// params.roots may name them.
var webauthnBuiltinRoots = map[string]string{
	"tpm":             "microsoft",
	"apple-appattest": "apple",
}

// kindWebAuthn checks a WebAuthn registration (VECTORS.md, kind webauthn).
func kindWebAuthn(c *Case) (map[string]any, error) {
	var opts webauthn.Options
	var err error
	if opts.Time, err = c.Time(); err != nil {
		return nil, err
	}
	object, err := c.RequiredBytes(Input, "attestation_object")
	if err != nil {
		return nil, err
	}
	clientData, err := c.RequiredBytes(Input, "client_data_json")
	if err != nil {
		return nil, err
	}
	if opts.Challenge, err = c.RequiredBytes(Params, "challenge"); err != nil {
		return nil, err
	}
	if opts.Origins, err = c.Strings(Params, "origin"); err != nil {
		return nil, err
	}
	if len(opts.Origins) == 0 {
		return nil, &FieldError{Field: Params + ".origin", Err: fmt.Errorf("missing")}
	}
	rpID, ok, err := c.String(Params, "rp_id")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &FieldError{Field: Params + ".rp_id", Err: fmt.Errorf("missing")}
	}
	opts.RPID = rpID

	// The roots are those of the object's format: a built-in name is the
	// format's (microsoft for tpm, apple for apple-appattest).
	format := webauthnFormat(object)
	builtin, roots, err := c.Roots(Params, "roots", webauthnBuiltinRoots[format])
	if err != nil {
		return nil, err
	}
	if !builtin {
		anchors, err := anchorsField(Params, "roots", roots)
		if err != nil {
			return nil, err
		}
		if len(anchors) == 0 {
			return nil, &FieldError{Field: Params + ".roots", Err: fmt.Errorf("an empty list trusts nothing")}
		}
		switch format {
		case "apple-appattest":
			opts.AppAttestRoots = anchors
		default:
			opts.TPMRoots = anchors
		}
	}
	if err := webauthnPolicy(c, &opts.Policy); err != nil {
		return nil, err
	}

	v, err := webauthn.Verify(object, clientData, &opts)
	if err != nil {
		return nil, err
	}
	return v.Facts, nil
}

// webauthnPolicy reads params.policy: min_security_level software allows
// keys nothing vouches for (format none); require_user_auth requires user
// verification.
func webauthnPolicy(c *Case, p *webauthn.Policy) error {
	sec, ok, err := c.Object(Params, "policy")
	if err != nil || !ok {
		return err
	}
	level, ok, err := c.String(sec, "min_security_level")
	if err != nil {
		return err
	}
	if ok {
		switch level {
		case "software":
			p.AllowSoftwareKeys = true
		case "tee", "strongbox":
		default:
			return &FieldError{Field: sec + ".min_security_level", Err: fmt.Errorf("%q is not software, tee or strongbox", level)}
		}
	}
	if _, err := c.JSON(sec, "require_user_auth", &p.RequireUserVerification); err != nil {
		return err
	}
	return nil
}

// webauthnFormat returns the fmt of an attestation object, or "" when the
// object does not decode (the verifier then says why).
func webauthnFormat(object []byte) string {
	var m map[string]cbor.RawMessage
	var format string
	if attest.UnmarshalCBOR("attestation object", object, &m) != nil || attest.UnmarshalCBOR("fmt", m["fmt"], &format) != nil {
		return ""
	}
	return format
}
