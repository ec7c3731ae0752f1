package testvectors

import (
	"crypto/x509"
	"encoding/json"
	"fmt"

	"github.com/keybind/keybind/attest/androidkey"
)

// androidKey checks a vector of kind "android-key" (VECTORS.md):
//
//	input.chain          PEM file, or a list of DER values; leaf first
//	params.time          validation time
//	params.challenge     the expected attestation challenge
//	params.roots         "google" (default) or a list of PEM values
//	params.revocation    a status-list JSON value (optional)
//	params.policy        androidkey.ParsePolicy's JSON object (optional)
//
// A status list that does not parse is the verifier's rejection
// (input.revocation_list: a configured list that cannot be used fails
// closed), not an unusable vector.
func androidKey(c *Case) (map[string]any, error) {
	chain, ok, err := c.Certificates(Input, "chain")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, c.fail(Input, "chain", "missing")
	}
	t, err := c.Time()
	if err != nil {
		return nil, err
	}
	challenge, err := c.RequiredBytes(Params, "challenge")
	if err != nil {
		return nil, err
	}
	builtin, rootDER, err := c.Roots(Params, "roots", "google")
	if err != nil {
		return nil, err
	}
	revocation, hasRevocation, err := c.Bytes(Params, "revocation")
	if err != nil {
		return nil, err
	}
	var rawPolicy json.RawMessage
	hasPolicy, err := c.JSON(Params, "policy", &rawPolicy)
	if err != nil {
		return nil, err
	}

	opts := androidkey.Options{Challenge: challenge, Time: t}
	if hasPolicy {
		if opts.Policy, err = androidkey.ParsePolicy(rawPolicy); err != nil {
			return nil, c.fail(Params, "policy", "%v", err)
		}
	}
	if !builtin {
		certs := make([]*x509.Certificate, len(rootDER))
		for i, der := range rootDER {
			if certs[i], err = x509.ParseCertificate(der); err != nil {
				return nil, c.fail(Params, "roots", "certificate %d: %v", i, err)
			}
		}
		opts.Roots = androidkey.NewRoots(certs...)
	}
	if hasRevocation {
		if opts.Revocation, err = androidkey.ParseStatusList(revocation); err != nil {
			return nil, err
		}
	}
	res, err := androidkey.NewVerifier().Verify(chain, opts)
	if err != nil {
		return nil, err
	}
	if res.Verdict.Format != androidkey.Format {
		return nil, fmt.Errorf("verdict format %q", res.Verdict.Format)
	}
	return res.Verdict.Facts, nil
}
