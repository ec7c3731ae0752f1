package testvectors

import (
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/webauthn"
)

// webauthnBuiltinRoots names the built-in roots of each WebAuthn format, as
// params.roots may name them.
var webauthnBuiltinRoots = map[string]string{
	"tpm":             "microsoft",
	"apple-appattest": "apple",
	"android-key":     "google",
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
	// format's (microsoft for tpm, apple for apple-appattest, google for
	// android-key).
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
		case "android-key":
			opts.AndroidRoots = androidkey.NewRoots(anchors...)
		default:
			opts.TPMRoots = anchors
		}
	}
	var rawPolicy json.RawMessage
	hasPolicy, err := c.JSON(Params, "policy", &rawPolicy)
	if err != nil {
		return nil, err
	}
	if hasPolicy {
		if opts.Policy, err = webauthn.ParsePolicy(rawPolicy); err != nil {
			return nil, c.fail(Params, "policy", "%v", err)
		}
	}

	v, err := webauthn.Verify(object, clientData, &opts)
	if err != nil {
		return nil, err
	}
	return v.Facts, nil
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
