package forge

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// WebAuthnAssertion is what navigator.credentials.get returns for a
// credential: the authenticator data, the clientDataJSON, and the
// credential key's signature over authenticatorData‖SHA-256(clientDataJSON).
type WebAuthnAssertion struct {
	AuthenticatorData []byte
	ClientDataJSON    []byte
	Signature         []byte
}

// WebAuthnAssertOptions describe an assertion. The zero value of each
// changeable field is what a browser and a well-behaved authenticator send.
type WebAuthnAssertOptions struct {
	RPID      string
	Origin    string
	Challenge []byte
	// Alg is the credential's COSE algorithm: it fixes the signature's hash
	// and padding (ES256, ES384, ES512, EdDSA, RS256…, PS256…).
	Alg int64
	// Flags are the authenticator data flags (zero: user present and
	// verified).
	Flags   byte
	Counter uint32
	// Type is the client data type (zero: webauthn.get).
	Type string
	// ClientDataJSON, when set, replaces the client data built from the
	// fields above.
	ClientDataJSON []byte
	// AuthData, when set, changes the authenticator data before it is
	// signed.
	AuthData func([]byte) []byte
}

// WebAuthnAssert makes an assertion with key, the credential's private
// key (a crypto.Signer of its type: ECDSA, RSA, Ed25519, or a TPM-backed
// signer).
func WebAuthnAssert(key crypto.Signer, opts WebAuthnAssertOptions) (WebAuthnAssertion, error) {
	flags := opts.Flags
	if flags == 0 {
		flags = 0x01 | 0x04
	}
	h := sha256.Sum256([]byte(opts.RPID))
	ad := append(h[:], flags)
	ad = binary.BigEndian.AppendUint32(ad, opts.Counter)
	if opts.AuthData != nil {
		ad = opts.AuthData(ad)
	}
	cd := opts.ClientDataJSON
	if cd == nil {
		typ := opts.Type
		if typ == "" {
			typ = "webauthn.get"
		}
		var err error
		cd, err = json.Marshal(struct {
			Type        string `json:"type"`
			Challenge   string `json:"challenge"`
			Origin      string `json:"origin"`
			CrossOrigin bool   `json:"crossOrigin"`
		}{typ, base64.RawURLEncoding.EncodeToString(opts.Challenge), opts.Origin, false})
		if err != nil {
			return WebAuthnAssertion{}, err
		}
	}
	cdh := sha256.Sum256(cd)
	msg := append(append([]byte{}, ad...), cdh[:]...)
	sig, err := WebAuthnSign(key, opts.Alg, msg)
	if err != nil {
		return WebAuthnAssertion{}, err
	}
	return WebAuthnAssertion{AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}, nil
}

// WebAuthnSign signs msg with key as COSE algorithm alg prescribes.
func WebAuthnSign(key crypto.Signer, alg int64, msg []byte) ([]byte, error) {
	var hash crypto.Hash
	pss := false
	switch alg {
	case COSEES256, COSERS256:
		hash = crypto.SHA256
	case COSEES384, -258:
		hash = crypto.SHA384
	case -36, -259:
		hash = crypto.SHA512
	case -37:
		hash, pss = crypto.SHA256, true
	case -38:
		hash, pss = crypto.SHA384, true
	case -39:
		hash, pss = crypto.SHA512, true
	case COSEEdDSA:
		if _, ok := key.Public().(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("forge: EdDSA with a %T key", key.Public())
		}
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		return nil, fmt.Errorf("forge: no signature for COSE algorithm %d", alg)
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		digest = d[:]
	}
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		return key.Sign(rand.Reader, digest, hash)
	case *rsa.PublicKey:
		if pss {
			return key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash})
		}
		return key.Sign(rand.Reader, digest, hash)
	}
	return nil, fmt.Errorf("forge: COSE algorithm %d with a %T key", alg, key.Public())
}
