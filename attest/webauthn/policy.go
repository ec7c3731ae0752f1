package webauthn

import "github.com/keybind/keybind/attest/androidkey"

// ParsePolicy reads a policy written as the test-vector format writes one
// (VECTORS.md: the android-key policy object, androidkey.ParsePolicy's
// JSON). Every field applies to format android-key; besides,
// min_security_level "software" allows keys nothing vouches for (format
// none), and require_user_auth requires the UV flag of every format.
func ParsePolicy(data []byte) (Policy, error) {
	a, err := androidkey.ParsePolicy(data)
	if err != nil {
		return Policy{}, err
	}
	return Policy{
		AllowSoftwareKeys:       a.MinSecurityLevel == androidkey.Software,
		RequireUserVerification: a.RequireUserAuth,
		Android:                 a,
	}, nil
}
