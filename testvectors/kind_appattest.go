package testvectors

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"math"

	"github.com/keybind/keybind/attest/appattest"
)

// appAttestKinds are the two App Attest kinds. They share one Verifier, as
// a server does: its cache of the intermediate certificate is part of what
// the vectors exercise.
type appAttestKinds struct{ v *appattest.Verifier }

func newAppAttestKinds() appAttestKinds { return appAttestKinds{v: appattest.NewVerifier()} }

// attestationParams reads the params of an apple-appattest check:
// client_data_hash, app_ids, environment, roots and time.
func attestationParams(c *Case) (appattest.AttestationOptions, error) {
	var opts appattest.AttestationOptions
	var err error
	if opts.Time, err = c.Time(); err != nil {
		return opts, err
	}
	if opts.ClientDataHash, err = c.RequiredBytes(Params, "client_data_hash"); err != nil {
		return opts, err
	}
	if opts.AppIDs, err = appIDs(c); err != nil {
		return opts, err
	}
	env, ok, err := c.String(Params, "environment")
	if err != nil {
		return opts, err
	}
	if ok {
		if opts.Environment, err = appattest.ParseEnvironment(env); err != nil {
			return opts, &FieldError{Field: Params + ".environment", Err: err}
		}
	}
	builtin, roots, err := c.Roots(Params, "roots", "apple")
	if err != nil {
		return opts, err
	}
	if !builtin {
		for i, der := range roots {
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return opts, &FieldError{Field: Params + ".roots", Err: fmt.Errorf("certificate %d: %v", i, err)}
			}
			opts.Roots = append(opts.Roots, cert)
		}
		if len(opts.Roots) == 0 {
			return opts, &FieldError{Field: Params + ".roots", Err: fmt.Errorf("an empty list trusts nothing")}
		}
	}
	return opts, nil
}

func appIDs(c *Case) ([]string, error) {
	ids, err := c.Strings(Params, "app_ids")
	if err == nil && len(ids) == 0 {
		err = &FieldError{Field: Params + ".app_ids", Err: fmt.Errorf("missing (name the TEAMID.bundle.id values to accept)")}
	}
	return ids, err
}

// attestation checks an apple-appattest vector.
func (k appAttestKinds) attestation(c *Case) (map[string]any, error) {
	object, err := c.RequiredBytes(Input, "attestation")
	if err != nil {
		return nil, err
	}
	keyID, err := c.RequiredBytes(Input, "key_id")
	if err != nil {
		return nil, err
	}
	opts, err := attestationParams(c)
	if err != nil {
		return nil, err
	}
	att, err := k.v.VerifyAttestation(object, keyID, opts)
	if err != nil {
		return nil, err
	}
	return att.Verdict.Facts, nil
}

// assertion checks an apple-appattest-assertion vector. The key
// is input.public_key, or comes from input.attestation + input.key_id,
// verified first with the same params (which then also carry the
// attestation's client_data_hash, environment and roots).
func (k appAttestKinds) assertion(c *Case) (map[string]any, error) {
	assertion, err := c.RequiredBytes(Input, "assertion")
	if err != nil {
		return nil, err
	}
	clientData, err := c.RequiredBytes(Input, "client_data")
	if err != nil {
		return nil, err
	}
	var opts appattest.AssertionOptions
	if opts.AppIDs, err = appIDs(c); err != nil {
		return nil, err
	}
	prev, err := c.Int(Params, "previous_counter", 0)
	if err != nil {
		return nil, err
	}
	if prev < 0 || prev > math.MaxUint32 {
		return nil, &FieldError{Field: Params + ".previous_counter", Err: fmt.Errorf("%d is not a 32-bit counter", prev)}
	}
	opts.PreviousCounter = uint32(prev)
	if opts.Challenge, _, err = c.Bytes(Params, "challenge"); err != nil {
		return nil, err
	}

	var pub *ecdsa.PublicKey
	keyBytes, hasKey, err := c.Bytes(Input, "public_key")
	if err != nil {
		return nil, err
	}
	if c.Has(Input, "attestation") || c.Has(Input, "key_id") {
		if hasKey {
			return nil, &FieldError{Field: Input + ".public_key", Err: fmt.Errorf("give either public_key or attestation + key_id, not both")}
		}
		object, err := c.RequiredBytes(Input, "attestation")
		if err != nil {
			return nil, err
		}
		keyID, err := c.RequiredBytes(Input, "key_id")
		if err != nil {
			return nil, err
		}
		aopts, err := attestationParams(c)
		if err != nil {
			return nil, err
		}
		att, err := k.v.VerifyAttestation(object, keyID, aopts)
		if err != nil {
			return nil, err
		}
		pub = att.PublicKey
	} else {
		if _, err := c.Time(); err != nil {
			return nil, err
		}
		if !hasKey {
			return nil, &FieldError{Field: Input + ".public_key", Err: fmt.Errorf("missing (give public_key, or attestation + key_id)")}
		}
		if pub, err = appattest.ParsePublicKey(keyBytes); err != nil {
			return nil, err
		}
	}
	res, err := appattest.VerifyAssertion(assertion, clientData, pub, opts)
	if err != nil {
		return nil, err
	}
	return res.Facts(), nil
}
