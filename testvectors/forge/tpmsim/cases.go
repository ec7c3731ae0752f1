package tpmsim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
)

// Case is one key certification and the verdict keybind must reach: the AK
// that vouches for the key (its TPMT_PUBLIC), go-attestation's
// certification parameters, the server challenge, and the expected error
// code ("" to accept).
type Case struct {
	Name        string
	Description string
	AKPublic    []byte
	Params      goattest.CertificationParameters
	Challenge   []byte
	Code        string
	// Facts are facts an accepted certification must report.
	Facts map[string]any
}

// CertificationCases has the TPM make one valid certification of each kind
// keybind accepts (go-attestation's ECDSA and RSA keys, a SHA-1 name) and
// one refused certification per check, each made real where a TPM can make
// it (a restricted key, a key loaded from outside, a duplicable key, a key
// certified by another AK or by an unrestricted key) and by changing one
// field of a valid one otherwise (magic, attributes, names, truncations).
func (t *TPM) CertificationCases(challenge []byte) ([]Case, error) {
	var cases []Case
	add := func(c Case) { cases = append(cases, c) }
	other := append([]byte("another "), challenge...)

	// go-attestation end to end, as a PC does it.
	for _, alg := range []goattest.Algorithm{goattest.ECDSA, goattest.RSA} {
		ak, err := t.TPM.NewAK(&goattest.AKConfig{Algorithm: alg})
		if err != nil {
			return nil, fmt.Errorf("tpmsim: NewAK(%s): %w", alg, err)
		}
		cfg := &goattest.KeyConfig{Algorithm: alg, Size: 256, QualifyingData: challenge}
		want := "ecdsa-p256"
		if alg == goattest.RSA {
			cfg.Size, want = 2048, "rsa-2048"
		}
		key, err := t.TPM.NewKey(ak, cfg)
		if err != nil {
			return nil, fmt.Errorf("tpmsim: NewKey(%s): %w", alg, err)
		}
		akPub := ak.AttestationParameters().Public
		add(Case{Name: "accept/go-attestation-" + strings.ToLower(string(alg)), Description: "a " + want + " key made and certified by go-attestation's NewKey",
			AKPublic: akPub, Params: key.CertificationParameters(), Challenge: challenge,
			Facts: map[string]any{"public_key_algorithm": want, "name_alg": "sha256"}})
		key.Close()
		ak.Close(t.TPM)
	}

	ak1, err := t.NewRawAK(AKTemplate())
	if err != nil {
		return nil, err
	}
	ak2, err := t.NewRawAK(AKTemplate())
	if err != nil {
		return nil, err
	}

	// certify makes a key from template and certifies it with signer over
	// qualifying data.
	certify := func(template tpm2.Public, signer *Object, qualifying []byte) (goattest.CertificationParameters, error) {
		key, err := t.CreateKey(template)
		if err != nil {
			return goattest.CertificationParameters{}, err
		}
		att, sig, err := t.Certify(signer, key, qualifying)
		return goattest.CertificationParameters{Public: key.Public, CreateAttestation: att, CreateSignature: sig}, err
	}

	valid, err := certify(KeyTemplate(), ak1, challenge)
	if err != nil {
		return nil, err
	}
	add(Case{Name: "accept/raw-ecdsa-p256", Description: "an ECDSA P-256 sign-in key certified with TPM2_Certify",
		AKPublic: ak1.Public, Params: valid, Challenge: challenge,
		Facts: map[string]any{"public_key_algorithm": "ecdsa-p256", "attributes": []string{"fixedTPM", "fixedParent", "sensitiveDataOrigin", "userWithAuth", "sign"}}})

	sha1 := KeyTemplate()
	sha1.NameAlg = tpm2.AlgSHA1
	p, err := certify(sha1, ak1, challenge)
	if err != nil {
		return nil, err
	}
	add(Case{Name: "accept/sha1-name", Description: "a key whose name algorithm is SHA-1",
		AKPublic: ak1.Public, Params: p, Challenge: challenge, Facts: map[string]any{"name_alg": "sha1"}})

	p384 := KeyTemplate()
	p384.ECCParameters.CurveID = tpm2.CurveNISTP384
	p384.ECCParameters.Sign = &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA384}
	if p, err = certify(p384, ak1, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "accept/ecdsa-p384", Description: "an ECDSA P-384 sign-in key",
		AKPublic: ak1.Public, Params: p, Challenge: challenge, Facts: map[string]any{"public_key_algorithm": "ecdsa-p384"}})

	// Refusals a TPM makes for real.
	if p, err = certify(KeyTemplate(), ak1, other); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/wrong-challenge", Description: "certified for another challenge (a replay)",
		AKPublic: ak1.Public, Params: p, Challenge: challenge, Code: "tpm.challenge_mismatch"})

	att, sig, err := t.Certify(ak1, ak2, challenge)
	if err != nil {
		return nil, err
	}
	add(Case{Name: "reject/restricted-key", Description: "the key certified is an AK (restricted)",
		AKPublic: ak1.Public, Params: goattest.CertificationParameters{Public: ak2.Public, CreateAttestation: att, CreateSignature: sig},
		Challenge: challenge, Code: "tpm.restricted"})

	if p, err = certify(KeyTemplate(), ak2, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/signed-by-another-ak", Description: "certified by another AK of the same TPM than the one enrolled",
		AKPublic: ak1.Public, Params: p, Challenge: challenge, Code: "tpm.bad_signature"})

	dup := KeyTemplate()
	dup.Attributes &^= tpm2.FlagFixedTPM | tpm2.FlagFixedParent
	if p, err = certify(dup, ak1, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/duplicable-key", Description: "a key the TPM made duplicable (fixedTPM and fixedParent clear)",
		AKPublic: ak1.Public, Params: p, Challenge: challenge, Code: "tpm.not_fixed_tpm"})

	ext := KeyTemplate()
	ext.Attributes &^= tpm2.FlagFixedTPM | tpm2.FlagFixedParent | tpm2.FlagSensitiveDataOrigin
	extKey, err := t.ExternalKey(ext)
	if err != nil {
		return nil, err
	}
	if att, sig, err = t.Certify(ak1, extKey, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/external-key", Description: "a key made outside the TPM and loaded into it (TPM2_LoadExternal), then certified",
		AKPublic: ak1.Public, Params: goattest.CertificationParameters{Public: extKey.Public, CreateAttestation: att, CreateSignature: sig},
		Challenge: challenge, Code: "tpm.not_fixed_tpm"})

	rsa1024 := tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: KeyTemplate().Attributes,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}, KeyBits: 1024}}
	if p, err = certify(rsa1024, ak1, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/weak-key", Description: "an RSA-1024 key", AKPublic: ak1.Public, Params: p, Challenge: challenge, Code: "tpm.weak_key"})

	// An unrestricted signing key as "AK": it could sign anything, so what
	// it signs proves nothing.
	signer, err := t.CreateKey(KeyTemplate())
	if err != nil {
		return nil, err
	}
	if p, err = certify(KeyTemplate(), signer, challenge); err != nil {
		return nil, err
	}
	add(Case{Name: "reject/unrestricted-ak", Description: "certified by an unrestricted signing key posing as the AK",
		AKPublic: signer.Public, Params: p, Challenge: challenge, Code: "tpm.ak_not_restricted"})

	add(Case{Name: "reject/creation-attestation", Description: "the AK's own creation attestation given as a certification",
		AKPublic: ak1.Public, Params: goattest.CertificationParameters{Public: ak1.Public, CreateAttestation: ak1.CreateAttestation, CreateSignature: ak1.CreateSignature},
		Challenge: challenge, Code: "tpm.attestation_type"})

	// Refusals made by changing one field of a valid certification.
	second, err := certify(KeyTemplate(), ak1, challenge)
	if err != nil {
		return nil, err
	}
	mut := func(name, desc, code string, f func(p *goattest.CertificationParameters)) {
		p := goattest.CertificationParameters{
			Public:            bytes.Clone(valid.Public),
			CreateAttestation: bytes.Clone(valid.CreateAttestation),
			CreateSignature:   bytes.Clone(valid.CreateSignature),
		}
		f(&p)
		add(Case{Name: name, Description: desc, AKPublic: ak1.Public, Params: p, Challenge: challenge, Code: code})
	}
	mut("reject/name-mismatch", "the public area of another key of the same TPM than the one certified", "tpm.name_mismatch",
		func(p *goattest.CertificationParameters) { p.Public = bytes.Clone(second.Public) })
	mut("reject/bad-magic", "the attestation's magic is not TPM_GENERATED_VALUE", "tpm.bad_magic",
		func(p *goattest.CertificationParameters) { p.CreateAttestation[0] ^= 0x01 })
	mut("reject/sensitive-data-origin-clear", "the key's sensitiveDataOrigin attribute clear (made outside the TPM)", "tpm.not_tpm_generated",
		func(p *goattest.CertificationParameters) {
			setAttributes(p.Public, 0, uint32(tpm2.FlagSensitiveDataOrigin))
		})
	mut("reject/fixed-parent-clear", "the key's fixedParent attribute clear", "tpm.not_fixed_parent",
		func(p *goattest.CertificationParameters) { setAttributes(p.Public, 0, uint32(tpm2.FlagFixedParent)) })
	mut("reject/restricted-attribute", "the key's restricted attribute set", "tpm.restricted",
		func(p *goattest.CertificationParameters) { setAttributes(p.Public, uint32(tpm2.FlagRestricted), 0) })
	mut("reject/extra-data-changed", "one byte of the attested extraData changed (the signature no longer covers it)", "tpm.bad_signature",
		func(p *goattest.CertificationParameters) {
			p.CreateAttestation[extraDataOffset(p.CreateAttestation)] ^= 0x01
		})
	mut("reject/signature-changed", "one byte of the signature changed", "tpm.bad_signature",
		func(p *goattest.CertificationParameters) { p.CreateSignature[len(p.CreateSignature)-1] ^= 0x01 })
	mut("reject/truncated-public", "the public area without its last byte", "tpm.malformed_public",
		func(p *goattest.CertificationParameters) { p.Public = p.Public[:len(p.Public)-1] })
	mut("reject/trailing-public", "a byte after the public area", "tpm.malformed_public",
		func(p *goattest.CertificationParameters) { p.Public = append(p.Public, 0) })
	mut("reject/truncated-attestation", "the attestation without its last byte", "tpm.malformed_attestation",
		func(p *goattest.CertificationParameters) {
			p.CreateAttestation = p.CreateAttestation[:len(p.CreateAttestation)-1]
		})
	mut("reject/trailing-attestation", "a byte after the attestation", "tpm.malformed_attestation",
		func(p *goattest.CertificationParameters) { p.CreateAttestation = append(p.CreateAttestation, 0) })
	mut("reject/short-attested-name", "the attested name one byte short, its size field adjusted", "tpm.malformed_attestation",
		func(p *goattest.CertificationParameters) {
			p.CreateAttestation = shortenCertifiedName(p.CreateAttestation)
		})
	mut("reject/truncated-signature", "the signature without its last byte", "tpm.malformed_signature",
		func(p *goattest.CertificationParameters) {
			p.CreateSignature = p.CreateSignature[:len(p.CreateSignature)-1]
		})
	mut("reject/trailing-signature", "a byte after the signature", "tpm.malformed_signature",
		func(p *goattest.CertificationParameters) { p.CreateSignature = append(p.CreateSignature, 0) })
	return cases, nil
}

// setAttributes sets and clears TPMA_OBJECT bits of a TPMT_PUBLIC (type,
// nameAlg, then the 32-bit attributes).
func setAttributes(public []byte, set, clear uint32) {
	a := binary.BigEndian.Uint32(public[4:8])
	binary.BigEndian.PutUint32(public[4:8], (a|set)&^clear)
}

// extraDataOffset is where the extraData bytes of a TPMS_ATTEST start:
// magic (4), type (2), qualifiedSigner (TPM2B), extraData size (2).
func extraDataOffset(att []byte) int {
	signer := int(binary.BigEndian.Uint16(att[6:8]))
	return 8 + signer + 2
}

// shortenCertifiedName removes the last byte of the certified key's name
// in a certify attestation and fixes the name's size, so the structure
// stays self-consistent but the name's digest is one byte short.
func shortenCertifiedName(att []byte) []byte {
	off := extraDataOffset(att) - 2
	off += 2 + int(binary.BigEndian.Uint16(att[off:])) // extraData
	off += 17 + 8                                      // clockInfo, firmwareVersion
	size := int(binary.BigEndian.Uint16(att[off:]))
	out := bytes.Clone(att[:off])
	out = binary.BigEndian.AppendUint16(out, uint16(size-1))
	out = append(out, att[off+2:off+2+size-1]...)
	return append(out, att[off+2+size:]...)
}
