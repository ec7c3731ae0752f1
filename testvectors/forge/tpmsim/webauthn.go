package tpmsim

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/testvectors/forge"
)

// WebAuthnTPM is a Windows Hello-like authenticator on the simulated TPM:
// an AIK whose certificate a test CA issued, and credential keys created in
// the TPM and certified by the AIK into WebAuthn "tpm" statements.
type WebAuthnTPM struct {
	t       *TPM
	CA      *forge.TPMCA
	AIK     *Object
	AIKKey  crypto.PublicKey
	AIKCert []byte
	// Alg is the COSE algorithm of the statement's signature, from the
	// AIK's scheme.
	Alg  int64
	hash crypto.Hash
}

// AIKTemplateRSA returns an RSA-2048 AIK template signing with
// RSASSA-PKCS1-v1_5 and hash (SHA-256, or SHA-1 for the RS1 algorithm of
// older Windows TPMs).
func AIKTemplateRSA(hash tpm2.Algorithm) tpm2.Public {
	return tpm2.Public{
		Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: tpm2.FlagSignerDefault | tpm2.FlagNoDA,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: hash}, KeyBits: 2048},
	}
}

// NewWebAuthnTPM makes an AIK from template and its certificate by ca with
// profile.
func (t *TPM) NewWebAuthnTPM(ca *forge.TPMCA, template tpm2.Public, profile forge.AIKProfile) (*WebAuthnTPM, error) {
	aik, err := t.NewRawAK(template)
	if err != nil {
		return nil, err
	}
	pub, err := tpm2.DecodePublic(aik.Public)
	if err != nil {
		return nil, err
	}
	key, err := pub.Key()
	if err != nil {
		return nil, err
	}
	w := &WebAuthnTPM{t: t, CA: ca, AIK: aik, AIKKey: key}
	switch aik.Scheme {
	case tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256}:
		w.Alg, w.hash = forge.COSEES256, crypto.SHA256
	case tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}:
		w.Alg, w.hash = forge.COSERS256, crypto.SHA256
	case tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA1}:
		w.Alg, w.hash = forge.COSERS1, crypto.SHA1
	default:
		return nil, fmt.Errorf("tpmsim: no WebAuthn algorithm for the AIK scheme %+v", aik.Scheme)
	}
	if w.AIKCert, err = ca.AIKCertificate(key, profile); err != nil {
		return nil, err
	}
	return w, nil
}

// TPMStatement is a tpm statement before it is encoded, for changing one
// member.
type TPMStatement struct {
	Ver      string
	Alg      int64
	X5C      [][]byte
	Sig      []byte
	CertInfo []byte
	PubArea  []byte
}

// Map is the statement as attStmt.
func (s *TPMStatement) Map() map[string]any {
	return map[string]any{"ver": s.Ver, "alg": s.Alg, "x5c": s.X5C, "sig": s.Sig, "certInfo": s.CertInfo, "pubArea": s.PubArea}
}

// StatementOptions change how a statement is made.
type StatementOptions struct {
	// ExtraData, when set, replaces the extraData the TPM certifies.
	ExtraData func(real []byte) []byte
	// Certified, when set, is the key the TPM certifies instead of the
	// credential key.
	Certified *Object
	// Signer, when set, signs the certification instead of the AIK.
	Signer *WebAuthnTPM
	// Change changes the statement before it is encoded.
	Change func(s *TPMStatement)
	// Members, when set, replaces attStmt.
	Members func(s *TPMStatement) map[string]any
}

// Registration returns a registration of format tpm for cred (a key created
// by CreateKey or ExternalKey), its statement made with opts.
func (w *WebAuthnTPM) Registration(cred *Object, rpID, origin string, challenge []byte, opts StatementOptions) (forge.WebAuthnRegistration, error) {
	pub, err := tpm2.DecodePublic(cred.Public)
	if err != nil {
		return forge.WebAuthnRegistration{}, err
	}
	key, err := pub.Key()
	if err != nil {
		return forge.WebAuthnRegistration{}, err
	}
	coseAlg := forge.COSEES256
	if pub.Type == tpm2.AlgRSA {
		coseAlg = forge.COSERS256
	}
	cose, err := forge.COSEKey(key, coseAlg)
	if err != nil {
		return forge.WebAuthnRegistration{}, err
	}
	id := make([]byte, 32)
	rand.Read(id)
	r := forge.WebAuthnRegistration{
		RPID: rpID, Origin: origin, Challenge: challenge, Flags: forge.WebAuthnFlags,
		AAGUID: WindowsHelloAAGUID, CredentialID: id, CredentialKey: cose, Format: "tpm",
	}
	r.Statement = func(authData, clientDataHash []byte) (any, error) {
		signer := w
		if opts.Signer != nil {
			signer = opts.Signer
		}
		h := w.hash.New()
		h.Write(authData)
		h.Write(clientDataHash)
		extra := h.Sum(nil)
		if opts.ExtraData != nil {
			extra = opts.ExtraData(extra)
		}
		certified := cred
		if opts.Certified != nil {
			certified = opts.Certified
		}
		certInfo, tpmtSig, err := w.t.Certify(signer.AIK, certified, extra)
		if err != nil {
			return nil, err
		}
		sig, err := rawSignature(tpmtSig)
		if err != nil {
			return nil, err
		}
		s := &TPMStatement{Ver: "2.0", Alg: w.Alg, X5C: [][]byte{w.AIKCert, w.CA.Intermediate.Raw}, Sig: sig, CertInfo: certInfo, PubArea: cred.Public}
		if opts.Change != nil {
			opts.Change(s)
		}
		if opts.Members != nil {
			return opts.Members(s), nil
		}
		return s.Map(), nil
	}
	return r, nil
}

// WindowsHelloAAGUID is the AAGUID the generated registrations carry (a
// test value, not a registered authenticator model).
var WindowsHelloAAGUID = [16]byte{0x6b, 0x65, 0x79, 0x62, 0x69, 0x6e, 0x64, 0x2d, 0x74, 0x70, 0x6d, 0x2d, 0x74, 0x65, 0x73, 0x74}

// rawSignature turns a TPMT_SIGNATURE into the signature a WebAuthn tpm
// statement carries: the RSA signature bytes, or the ECDSA signature in
// ASN.1 DER.
func rawSignature(tpmt []byte) ([]byte, error) {
	sig, err := tpm2.DecodeSignature(bytes.NewBuffer(tpmt))
	if err != nil {
		return nil, err
	}
	switch {
	case sig.RSA != nil:
		return sig.RSA.Signature, nil
	case sig.ECC != nil:
		return asn1.Marshal(struct{ R, S *big.Int }{sig.ECC.R, sig.ECC.S})
	}
	return nil, fmt.Errorf("tpmsim: signature of algorithm %v", sig.Alg)
}

// WebAuthnCases makes registrations of format tpm on the simulated TPM:
// valid ones (ES256 and RS256 credentials, an RS1 AIK, a SHA-1 name, an
// AIK certificate with the AAGUID extension), one refusal per check of the
// tpm statement, and the envelope cases of forge.WebAuthnEnvelopeCases on a
// tpm registration. Names start with prefix. The cases trust ca's root at
// when, unless they say otherwise.
func (t *TPM) WebAuthnCases(prefix, rpID, origin string, challenge []byte, when time.Time) ([]forge.WebAuthnCase, error) {
	ca, err := forge.NewTPMCA("keybind test TPM AIK", when.AddDate(-2, 0, 0), when.AddDate(20, 0, 0))
	if err != nil {
		return nil, err
	}
	other, err := forge.NewTPMCA("keybind other TPM AIK", when.AddDate(-2, 0, 0), when.AddDate(20, 0, 0))
	if err != nil {
		return nil, err
	}
	roots := [][]byte{ca.Root.Raw}
	profile := forge.AIKProfile{Device: forge.SimulatorDevice, NotBefore: when.AddDate(-1, 0, 0), NotAfter: when.AddDate(5, 0, 0)}
	w, err := t.NewWebAuthnTPM(ca, AKTemplate(), profile)
	if err != nil {
		return nil, err
	}
	cred, err := t.CreateKey(KeyTemplate())
	if err != nil {
		return nil, err
	}

	var cases []forge.WebAuthnCase
	add := func(name, desc, code string, r forge.WebAuthnRegistration, change func(c *forge.WebAuthnCase)) error {
		obj, cd, err := r.Build()
		if err != nil {
			return fmt.Errorf("tpmsim: case %s: %w", name, err)
		}
		c := forge.WebAuthnCase{Name: prefix + name, Description: desc, Object: obj, ClientData: cd, Code: code, Roots: roots, Time: when}
		if change != nil {
			change(&c)
		}
		cases = append(cases, c)
		return nil
	}
	// stmt adds a case of the base credential with statement options.
	stmt := func(name, desc, code string, opts StatementOptions, change func(c *forge.WebAuthnCase)) error {
		r, err := w.Registration(cred, rpID, origin, challenge, opts)
		if err != nil {
			return err
		}
		return add(name, desc, code, r, change)
	}
	// withAIK adds a case whose AIK certificate has profile p.
	withAIK := func(name, desc, code string, change func(p *forge.AIKProfile)) error {
		p := profile
		change(&p)
		cert, err := ca.AIKCertificate(w.AIKKey, p)
		if err != nil {
			return err
		}
		return stmt(name, desc, code, StatementOptions{Change: func(s *TPMStatement) { s.X5C[0] = cert }}, nil)
	}
	facts := map[string]any{"format": "tpm", "public_key_algorithm": "ecdsa-p256", "tpm_manufacturer": forge.SimulatorDevice.Manufacturer,
		"aaguid": "6b657962-696e-642d-7470-6d2d74657374", "name_alg": "sha256"}
	steps := []func() error{
		func() error {
			return stmt("accept/es256", "an ECDSA P-256 credential key created in the TPM, certified by an ECDSA AIK (ES256)", "", StatementOptions{},
				func(c *forge.WebAuthnCase) { c.Facts = facts })
		},
		func() error {
			rsaW, err := t.NewWebAuthnTPM(ca, AIKTemplateRSA(tpm2.AlgSHA256), profile)
			if err != nil {
				return err
			}
			rsaCred, err := t.CreateKey(tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: KeyTemplate().Attributes,
				RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256}, KeyBits: 2048}})
			if err != nil {
				return err
			}
			r, err := rsaW.Registration(rsaCred, rpID, origin, challenge, StatementOptions{})
			if err != nil {
				return err
			}
			return add("accept/rs256", "an RSA-2048 credential key certified by an RSA AIK (RS256), as Windows Hello makes them", "", r,
				func(c *forge.WebAuthnCase) {
					c.Facts = map[string]any{"public_key_algorithm": "rsa-2048", "tpm_signature_algorithm": forge.COSERS256}
				})
		},
		func() error {
			rs1, err := t.NewWebAuthnTPM(ca, AIKTemplateRSA(tpm2.AlgSHA1), profile)
			if err != nil {
				return err
			}
			r, err := rs1.Registration(cred, rpID, origin, challenge, StatementOptions{})
			if err != nil {
				return err
			}
			return add("accept/rs1", "certified by an RSA AIK signing with SHA-1 (RS1), extraData a SHA-1 digest", "", r,
				func(c *forge.WebAuthnCase) { c.Facts = map[string]any{"tpm_signature_algorithm": forge.COSERS1} })
		},
		func() error {
			sha1 := KeyTemplate()
			sha1.NameAlg = tpm2.AlgSHA1
			k, err := t.CreateKey(sha1)
			if err != nil {
				return err
			}
			r, err := w.Registration(k, rpID, origin, challenge, StatementOptions{})
			if err != nil {
				return err
			}
			return add("accept/sha1-name", "a credential key whose name algorithm is SHA-1", "", r,
				func(c *forge.WebAuthnCase) { c.Facts = map[string]any{"name_alg": "sha1"} })
		},
		func() error {
			return withAIK("accept/aaguid-extension", "the AIK certificate names the authenticator's AAGUID", "", func(p *forge.AIKProfile) {
				p.AAGUID = WindowsHelloAAGUID[:]
			})
		},
		func() error {
			return stmt("reject/version", "ver 1.2", "tpm.version", StatementOptions{Change: func(s *TPMStatement) { s.Ver = "1.2" }}, nil)
		},
		func() error {
			return stmt("reject/algorithm", "alg -999", "tpm.algorithm", StatementOptions{Change: func(s *TPMStatement) { s.Alg = -999 }}, nil)
		},
		func() error {
			return stmt("reject/statement-ecdaa", "a statement with ecdaaKeyId", "tpm.statement", StatementOptions{Members: func(s *TPMStatement) map[string]any {
				m := s.Map()
				m["ecdaaKeyId"] = []byte{1}
				return m
			}}, nil)
		},
		func() error {
			return stmt("reject/statement-no-x5c", "a statement without x5c", "tpm.statement", StatementOptions{Members: func(s *TPMStatement) map[string]any {
				m := s.Map()
				delete(m, "x5c")
				return m
			}}, nil)
		},
		func() error {
			return stmt("reject/statement-sig-text", "a statement whose sig is text", "tpm.statement", StatementOptions{Members: func(s *TPMStatement) map[string]any {
				m := s.Map()
				m["sig"] = hex.EncodeToString(s.Sig)
				return m
			}}, nil)
		},
		func() error {
			other, err := t.CreateKey(KeyTemplate())
			if err != nil {
				return err
			}
			return stmt("reject/pub-area-other-key", "pubArea of another key of the TPM than the credential key", "tpm.pub_area_mismatch",
				StatementOptions{Change: func(s *TPMStatement) { s.PubArea = other.Public }}, nil)
		},
		func() error {
			return stmt("reject/truncated-pub-area", "pubArea without its last byte", "tpm.malformed_public",
				StatementOptions{Change: func(s *TPMStatement) { s.PubArea = s.PubArea[:len(s.PubArea)-1] }}, nil)
		},
		func() error {
			ext := KeyTemplate()
			ext.Attributes &^= tpm2.FlagFixedTPM | tpm2.FlagFixedParent | tpm2.FlagSensitiveDataOrigin
			k, err := t.ExternalKey(ext)
			if err != nil {
				return err
			}
			r, err := w.Registration(k, rpID, origin, challenge, StatementOptions{})
			if err != nil {
				return err
			}
			return add("reject/external-key", "a credential key made outside the TPM, loaded into it and certified by the AIK", "tpm.not_fixed_tpm", r, nil)
		},
		func() error {
			return stmt("reject/extra-data", "certInfo over the hash of other data", "tpm.extra_data_mismatch",
				StatementOptions{ExtraData: func(b []byte) []byte { return append([]byte{b[0] ^ 1}, b[1:]...) }}, nil)
		},
		func() error {
			other, err := t.CreateKey(KeyTemplate())
			if err != nil {
				return err
			}
			return stmt("reject/name-mismatch", "certInfo certifies another key of the TPM than pubArea", "tpm.name_mismatch",
				StatementOptions{Certified: other}, nil)
		},
		func() error {
			return stmt("reject/bad-magic", "certInfo whose magic is not TPM_GENERATED_VALUE", "tpm.bad_magic",
				StatementOptions{Change: func(s *TPMStatement) { s.CertInfo[3] ^= 1 }}, nil)
		},
		func() error {
			return stmt("reject/attestation-type", "certInfo of type TPM_ST_ATTEST_CREATION", "tpm.attestation_type",
				StatementOptions{Change: func(s *TPMStatement) { binary.BigEndian.PutUint16(s.CertInfo[4:6], 0x801a) }}, nil)
		},
		func() error {
			return stmt("reject/truncated-cert-info", "certInfo without its last byte", "tpm.malformed_attestation",
				StatementOptions{Change: func(s *TPMStatement) { s.CertInfo = s.CertInfo[:len(s.CertInfo)-1] }}, nil)
		},
		func() error {
			w2, err := t.NewWebAuthnTPM(ca, AKTemplate(), profile)
			if err != nil {
				return err
			}
			return stmt("reject/signed-by-other-aik", "certified by another AIK of the TPM than the one in x5c", "tpm.bad_signature",
				StatementOptions{Signer: w2}, nil)
		},
		func() error {
			return stmt("reject/signature-changed", "sig with its last byte changed", "tpm.bad_signature",
				StatementOptions{Change: func(s *TPMStatement) { s.Sig[len(s.Sig)-1] ^= 1 }}, nil)
		},
		func() error {
			return withAIK("reject/aik-version-1", "an X.509 version 1 AIK certificate", "tpm.aik_version", func(p *forge.AIKProfile) { p.Version1 = true })
		},
		func() error {
			return withAIK("reject/aik-subject", "an AIK certificate with a subject", "tpm.aik_subject", func(p *forge.AIKProfile) {
				p.Subject.CommonName = "keybind test AIK"
			})
		},
		func() error {
			return withAIK("reject/aik-no-san", "an AIK certificate without subject alternative name", "tpm.aik_san", func(p *forge.AIKProfile) { p.NoSAN = true })
		},
		func() error {
			return withAIK("reject/aik-no-eku", "an AIK certificate without tcg-kp-AIKCertificate", "tpm.aik_eku", func(p *forge.AIKProfile) { p.NoAIKUsage = true })
		},
		func() error {
			return withAIK("reject/aik-ca", "an AIK certificate that is a CA", "tpm.aik_basic_constraints", func(p *forge.AIKProfile) { p.CA = true })
		},
		func() error {
			return withAIK("reject/aaguid-mismatch", "an AIK certificate naming another AAGUID", "tpm.aaguid_mismatch", func(p *forge.AIKProfile) {
				p.AAGUID = bytes.Repeat([]byte{7}, 16)
			})
		},
		func() error {
			return withAIK("reject/aaguid-length", "an AIK certificate whose AAGUID extension holds 15 bytes", "tpm.aaguid_extension", func(p *forge.AIKProfile) {
				p.AAGUID = WindowsHelloAAGUID[:15]
			})
		},
		func() error {
			return withAIK("reject/aik-expired", "an AIK certificate that expired", "chain.expired", func(p *forge.AIKProfile) {
				p.NotBefore, p.NotAfter = when.AddDate(-3, 0, 0), when.AddDate(0, 0, -1)
			})
		},
		func() error {
			return stmt("reject/untrusted-root", "checked against another CA's root", "chain.untrusted_root", StatementOptions{},
				func(c *forge.WebAuthnCase) { c.Roots = [][]byte{other.Root.Raw} })
		},
		func() error {
			return stmt("reject/builtin-root", "checked against the built-in Microsoft TPM root, which did not issue the test CA", "chain.untrusted_root",
				StatementOptions{}, func(c *forge.WebAuthnCase) { c.Roots = nil })
		},
		func() error {
			return stmt("reject/missing-intermediate", "x5c without the intermediate", "chain.untrusted_root",
				StatementOptions{Change: func(s *TPMStatement) { s.X5C = s.X5C[:1] }}, nil)
		},
		func() error {
			return stmt("reject/aik-malformed", "an AIK certificate cut short", "asn1.certificate",
				StatementOptions{Change: func(s *TPMStatement) { s.X5C[0] = s.X5C[0][:len(s.X5C[0])-10] }}, nil)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	base, err := w.Registration(cred, rpID, origin, challenge, StatementOptions{})
	if err != nil {
		return nil, err
	}
	env, err := forge.WebAuthnEnvelopeCases(base, prefix, false, roots, when)
	if err != nil {
		return nil, err
	}
	return append(cases, env...), nil
}
