package webauthn

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
)

// OIDFIDOAAGUID is id-fido-gen-ce-aaguid: an attestation certificate
// extension naming the authenticator model.
var OIDFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// tpmStatementKeys are the members of a tpm statement (ecdaaKeyId, for the
// withdrawn ECDAA attestation, is not accepted).
var tpmStatementKeys = []string{"ver", "alg", "x5c", "sig", "certInfo", "pubArea"}

// builtinTPMRoot is the Microsoft root, parsed and checked once.
var builtinTPMRoot = sync.OnceValues(MicrosoftTPMRoot)

// verifyTPM verifies a statement of format tpm (WebAuthn, "TPM Attestation
// Statement Format"), one code per check, in the specification's order:
//
//  1. the statement is the six members of their types (tpm.statement), ver
//     is "2.0" (tpm.version), alg a signature algorithm keybind accepts
//     (tpm.algorithm);
//  2. pubArea decodes strictly (tpm.malformed_public) and is the credential
//     key (tpm.pub_area_mismatch); it is a key that never leaves the TPM and
//     was made by it, as for VerifyCertification in package tpm
//     (tpm.CheckSignInKey: tpm.weak_key, tpm.not_fixed_tpm, …), which the
//     WebAuthn specification leaves out and a TPM-bound credential needs;
//  3. certInfo decodes strictly (tpm.malformed_attestation, tpm.bad_magic),
//     is a TPM2_Certify (tpm.attestation_type), over the hash with alg's
//     hash of authenticatorData‖clientDataHash (tpm.extra_data_mismatch),
//     naming pubArea with its name algorithm, SHA-1 or SHA-256
//     (tpm.name_mismatch);
//  4. sig verifies over certInfo with the key of the AIK certificate, the
//     first of x5c (asn1.certificate, tpm.bad_signature);
//  5. the AIK certificate meets the requirements: version 3, empty subject,
//     the TPM's subject alternative name, tcg-kp-AIKCertificate, CA false
//     (tpm.aik_*), and the AAGUID extension, when present, names the
//     authenticator's AAGUID (tpm.aaguid_extension, tpm.aaguid_mismatch);
//  6. x5c chains to a trusted root, by default the Microsoft TPM Root
//     Certificate Authority 2014 (chain.*).
func (r *registration) verifyTPM() (*attest.Verdict, error) {
	var m map[string]cbor.RawMessage
	if err := attest.UnmarshalCBOR("tpm statement", r.obj.attStmt, &m); err != nil {
		return nil, err
	}
	for _, k := range tpmStatementKeys {
		if _, ok := m[k]; !ok {
			return nil, attest.Errorf(CodeTPMStatement, "the tpm statement has no %s", k)
		}
	}
	if len(m) != len(tpmStatementKeys) {
		return nil, attest.Errorf(CodeTPMStatement, "the tpm statement has %d members, not ver, alg, x5c, sig, certInfo and pubArea", len(m))
	}
	var (
		ver                    string
		alg                    int64
		x5c                    [][]byte
		sig, certInfo, pubArea []byte
	)
	for _, f := range []struct {
		name string
		dst  any
	}{{"ver", &ver}, {"alg", &alg}, {"x5c", &x5c}, {"sig", &sig}, {"certInfo", &certInfo}, {"pubArea", &pubArea}} {
		if err := attest.UnmarshalCBOR("tpm statement "+f.name, m[f.name], f.dst); err != nil {
			if attest.CodeOf(err) == attest.CodeCBORType {
				return nil, attest.Errorf(CodeTPMStatement, "%s is of the wrong type: %w", f.name, err)
			}
			return nil, err
		}
	}
	if len(x5c) == 0 {
		return nil, attest.Errorf(CodeTPMStatement, "x5c holds no certificate")
	}
	if ver != "2.0" {
		return nil, attest.Errorf(CodeTPMVersion, "ver is %q, not 2.0", ver)
	}
	hash, ok := hashOf(alg)
	if !ok {
		return nil, attest.Errorf(CodeTPMAlgorithm, "alg %d is not a signature algorithm keybind accepts", alg)
	}

	pub, err := tpm.ParsePublic(pubArea)
	if err != nil {
		return nil, err
	}
	areaKey, err := pub.Key()
	if err != nil {
		return nil, attest.Errorf(tpm.CodeUnsupportedKey, "pubArea: %v", err)
	}
	if !samePublicKey(areaKey, r.auth.CredentialKey.Key) {
		return nil, attest.Errorf(CodeTPMKeyMismatch, "pubArea is another key than the credential public key")
	}
	if err := tpm.CheckSignInKey(pub); err != nil {
		return nil, err
	}

	att, err := tpm.ParseAttestation(certInfo)
	if err != nil {
		return nil, err
	}
	if att.Type != tpm2.TagAttestCertify {
		return nil, attest.Errorf(tpm.CodeAttestationType, "certInfo is not a TPM2_Certify (type %#04x)", uint16(att.Type))
	}
	h := hash.New()
	h.Write(r.obj.authData)
	h.Write(r.clientDataHash)
	if subtle.ConstantTimeCompare(att.ExtraData, h.Sum(nil)) != 1 {
		return nil, attest.Errorf(CodeTPMExtraData, "certInfo's extraData is not the hash of this registration")
	}
	name := att.AttestedCertifyInfo.Name
	if name.Digest == nil || name.Digest.Alg != pub.NameAlg {
		return nil, attest.Errorf(tpm.CodeNameMismatch, "certInfo names no key by pubArea's name algorithm")
	}
	if ok, err := name.MatchesPublic(pub); err != nil || !ok {
		return nil, attest.Errorf(tpm.CodeNameMismatch, "certInfo certifies another key than pubArea")
	}

	certs, err := tpm.ParseChain(x5c, r.v.cache)
	if err != nil {
		return nil, err
	}
	aik := certs[0]
	if err := verifySignature(alg, aik.PublicKey, certInfo, sig); err != nil {
		return nil, attest.Errorf(tpm.CodeBadSignature, "sig is not the AIK certificate's signature of certInfo: %v", err)
	}
	if aik.Version != 3 {
		return nil, attest.Errorf(tpm.CodeAIKVersion, "AIK certificate of X.509 version %d, not 3", aik.Version)
	}
	if !isEmptyName(aik.RawSubject) {
		return nil, attest.Errorf(CodeTPMAIKSubject, "the AIK certificate's subject is %q, not empty", aik.Subject.String())
	}
	device, err := tpm.CheckAIKCertificate(aik)
	if err != nil {
		return nil, err
	}
	for _, e := range aik.Extensions {
		if !e.Id.Equal(OIDFIDOAAGUID) {
			continue
		}
		var g []byte
		if rest, err := asn1.Unmarshal(e.Value, &g); err != nil || len(rest) != 0 || len(g) != 16 || e.Critical {
			return nil, attest.Errorf(CodeTPMAAGUIDFormat, "the AAGUID extension is not a non-critical OCTET STRING of 16 bytes")
		}
		if !bytes.Equal(g, r.auth.AAGUID[:]) {
			return nil, attest.Errorf(CodeTPMAAGUID, "the AIK certificate is for authenticator model %x, the registration says %x", g, r.auth.AAGUID)
		}
	}

	roots := r.opts.TPMRoots
	if roots == nil {
		root, err := builtinTPMRoot()
		if err != nil {
			return nil, err
		}
		roots = []*x509.Certificate{root}
	}
	root, err := tpm.VerifyChain(certs, tpm.ChainOptions{
		Roots: roots, Time: r.now(), Cache: r.v.cache,
		LeafCritical: []asn1.ObjectIdentifier{tpm.OIDSubjectAltName},
	})
	if err != nil {
		return nil, err
	}

	facts := tpm.KeyFacts(pub, att)
	facts["tpm_manufacturer"] = device.Manufacturer
	facts["tpm_model"] = device.Model
	facts["tpm_version"] = device.Version
	facts["tpm_signature_algorithm"] = alg
	return &attest.Verdict{Format: "tpm", Trust: attest.TrustHardware, Root: tpm.RootName(root), Facts: facts}, nil
}

// isEmptyName reports whether a DER Name is the empty SEQUENCE.
func isEmptyName(raw []byte) bool { return bytes.Equal(raw, []byte{0x30, 0x00}) }

// samePublicKey compares two public keys by their SubjectPublicKeyInfo.
func samePublicKey(a, b any) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}
