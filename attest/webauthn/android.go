package webauthn

import (
	"crypto/x509"

	"github.com/fxamacker/cbor/v2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
)

// Codes of the android-key statement; the chain and KeyDescription checks
// are the Android verifier's (android.*, chain.*, policy.*).
const (
	CodeAndroidStatement attest.Code = "android.statement"      // attStmt is not alg, sig and x5c of their types
	CodeAndroidAlgorithm attest.Code = "android.algorithm"      // alg is not a signature algorithm keybind accepts
	CodeAndroidSignature attest.Code = "android.signature"      // sig is not the attested key's signature of authenticatorData‖clientDataHash
	CodeAndroidKey       attest.Code = "android.credential_key" // the attested key is not the credential key
)

// verifyAndroidKey verifies a statement of format android-key (WebAuthn,
// "Android Key Attestation Statement Format"), one code per check:
//
//  1. the statement is alg, sig and x5c of their types (android.statement),
//     alg a signature algorithm keybind accepts (android.algorithm);
//  2. sig is the signature of authenticatorData‖clientDataHash by the key of
//     the first certificate of x5c (android.signature);
//  3. that key is the credential key (android.credential_key);
//  4. the Android verifier (package androidkey) checks the chain and its
//     KeyDescription with the client data hash as the challenge: the chain
//     to the Google roots (or Options.AndroidRoots), revocation, the
//     challenge, origin GENERATED, purpose SIGN, no allApplications, and
//     Policy.Android (android.*, chain.*, policy.*).
func (r *registration) verifyAndroidKey() (*attest.Verdict, error) {
	var m map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("android-key statement", r.obj.attStmt, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"alg", "sig", "x5c"} {
		if _, ok := m[k]; !ok {
			return nil, attest.Errorf(CodeAndroidStatement, "the android-key statement has no %s", k)
		}
	}
	if len(m) != 3 {
		return nil, attest.Errorf(CodeAndroidStatement, "the android-key statement has %d members, not alg, sig and x5c", len(m))
	}
	var (
		alg int64
		sig []byte
		x5c [][]byte
	)
	for _, f := range []struct {
		name string
		dst  any
	}{{"alg", &alg}, {"sig", &sig}, {"x5c", &x5c}} {
		if err := attest.UnmarshalCBOR("android-key statement "+f.name, m[f.name], f.dst); err != nil {
			if attest.CodeOf(err) == attest.CodeCBORType {
				return nil, attest.Errorf(CodeAndroidStatement, "%s is of the wrong type: %w", f.name, err)
			}
			return nil, err
		}
	}
	if len(x5c) == 0 {
		return nil, attest.Errorf(CodeAndroidStatement, "x5c holds no certificate")
	}
	if _, ok := credentialAlgs[alg]; !ok {
		return nil, attest.Errorf(CodeAndroidAlgorithm, "alg %d is not a signature algorithm keybind accepts", alg)
	}
	// A leaf that does not parse is named by the Android verifier below.
	if leaf, err := x509.ParseCertificate(x5c[0]); err == nil {
		signed := append(append([]byte{}, r.obj.authData...), r.clientDataHash...)
		if err := verifySignature(alg, leaf.PublicKey, signed, sig); err != nil {
			return nil, attest.Errorf(CodeAndroidSignature, "sig is not the attested key's signature of the registration: %v", err)
		}
		if !samePublicKey(leaf.PublicKey, r.auth.CredentialKey.Key) {
			return nil, attest.Errorf(CodeAndroidKey, "the attested key is not the credential public key")
		}
	}
	res, err := r.v.android.Verify(x5c, androidkey.Options{
		Challenge:  r.clientDataHash,
		Time:       r.opts.Time,
		Roots:      r.opts.AndroidRoots,
		Revocation: r.opts.AndroidRevocation,
		Policy:     r.opts.Policy.Android,
	})
	if err != nil {
		return nil, err
	}
	return res.Verdict, nil
}
