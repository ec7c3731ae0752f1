// Package tpmsim is a software TPM 2.0 for tests and vector generation: the
// TCG reference implementation (through go-tpm-tools' simulator, which needs
// cgo) opened with go-attestation exactly as a PC's TPM is opened, plus the
// raw TPM commands a well-behaved client never sends, for making the keys
// and attestations that keybind must refuse (restricted keys, imported keys,
// keys that can leave the TPM).
//
//	t, err := tpmsim.Open()
//	defer t.Close()
//	ek, _ := t.EK()                             // the RSA endorsement key
//	ak, _ := t.TPM.NewAK(nil)                   // go-attestation, as on a PC
//	key, _ := t.TPM.NewKey(ak, &attest.KeyConfig{QualifyingData: challenge})
//
// The simulator is one per process: Open waits until the TPM opened before
// it is closed. A TPM holds three loaded objects at a time; close what is no
// longer needed (AK.Close, Key.Close, Flush).
package tpmsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
)

// SRK is the persistent handle of the storage root key go-attestation uses
// (and creates on first use); raw keys are made under it too.
const SRK = tpmutil.Handle(0x81000001)

// TPM is an open simulated TPM.
type TPM struct {
	sim *simulator.Simulator
	// TPM is the go-attestation handle on the simulator: EKs, NewAK,
	// NewKey, AK.ActivateCredential, as on a real device.
	TPM *goattest.TPM
}

// channel is the simulator as a go-attestation command channel.
type channel struct{ *simulator.Simulator }

// MeasurementLog: the simulator has no boot measurements.
func (channel) MeasurementLog() ([]byte, error) { return nil, nil }

// Open starts a fresh simulated TPM with new random seeds (so a new EK).
func Open() (*TPM, error) {
	sim, err := simulator.Get()
	if err != nil {
		return nil, fmt.Errorf("tpmsim: starting the simulator: %w", err)
	}
	t, err := goattest.OpenTPM(&goattest.OpenConfig{CommandChannel: channel{sim}})
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("tpmsim: opening the simulator with go-attestation: %w", err)
	}
	return &TPM{sim: sim, TPM: t}, nil
}

// Close shuts the simulator down; the next Open may proceed.
func (t *TPM) Close() error {
	t.TPM.Close()
	return t.sim.Close()
}

// EK returns the TPM's RSA endorsement key, as go-attestation finds it.
func (t *TPM) EK() (goattest.EK, error) {
	eks, err := t.TPM.EKs()
	if err != nil {
		return goattest.EK{}, fmt.Errorf("tpmsim: reading the EK: %w", err)
	}
	if len(eks) == 0 {
		return goattest.EK{}, fmt.Errorf("tpmsim: no EK")
	}
	return eks[0], nil
}

// srk makes sure the storage root key exists, letting go-attestation create
// it the way it does on a PC.
func (t *TPM) srk() error {
	if _, _, _, err := tpm2.ReadPublic(t.sim, SRK); err == nil {
		return nil
	}
	ak, err := t.TPM.NewAK(&goattest.AKConfig{Algorithm: goattest.ECDSA})
	if err != nil {
		return fmt.Errorf("tpmsim: creating the storage root key: %w", err)
	}
	return ak.Close(t.TPM)
}

// Object is a key made by a raw command. It is kept outside the TPM (its
// wrapped private part, or the external key) and loaded only while a command
// needs it: the simulator has room for three loaded objects, and creating a
// key takes two of them.
type Object struct {
	// Public is the key's TPMT_PUBLIC; CreateData, CreateAttestation and
	// CreateSignature are its creation data and, for a key made by NewRawAK,
	// its TPM2_CertifyCreation by itself.
	Public            []byte
	CreateData        []byte
	CreateAttestation []byte
	CreateSignature   []byte
	// Scheme is the signing scheme of a signing key.
	Scheme tpm2.SigScheme

	load func() (tpmutil.Handle, error)
}

// AKTemplate returns go-attestation's template for an ECDSA P-256 AK: a
// restricted signing key that never leaves the TPM.
func AKTemplate() tpm2.Public {
	return tpm2.Public{
		Type:       tpm2.AlgECC,
		NameAlg:    tpm2.AlgSHA256,
		Attributes: tpm2.FlagSignerDefault | tpm2.FlagNoDA,
		ECCParameters: &tpm2.ECCParams{
			Sign:    &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256},
			CurveID: tpm2.CurveNISTP256,
		},
	}
}

// KeyTemplate returns the template of a sign-in key such as go-attestation's
// NewKey makes: an unrestricted ECDSA P-256 signing key that never leaves
// the TPM.
func KeyTemplate() tpm2.Public {
	return tpm2.Public{
		Type:    tpm2.AlgECC,
		NameAlg: tpm2.AlgSHA256,
		Attributes: tpm2.FlagSign | tpm2.FlagFixedTPM | tpm2.FlagFixedParent |
			tpm2.FlagSensitiveDataOrigin | tpm2.FlagUserWithAuth,
		ECCParameters: &tpm2.ECCParams{
			Sign:    &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256},
			CurveID: tpm2.CurveNISTP256,
		},
	}
}

// NewRawAK creates a signing key from template under the SRK and certifies
// its creation with itself, as go-attestation does for an AK. With
// AKTemplate it is a proper AK; other templates make the AKs keybind must
// refuse.
func (t *TPM) NewRawAK(template tpm2.Public) (*Object, error) {
	o, hash, ticket, err := t.create(template, nil)
	if err != nil {
		return nil, err
	}
	h, err := o.load()
	if err != nil {
		return nil, err
	}
	defer tpm2.FlushContext(t.sim, h)
	att, sig, err := tpm2.CertifyCreation(t.sim, "", h, h, nil, hash, o.Scheme, ticket)
	if err != nil {
		return nil, fmt.Errorf("tpmsim: TPM2_CertifyCreation: %w", err)
	}
	o.CreateAttestation, o.CreateSignature = att, sig
	return o, nil
}

// CreateKey creates a key from template under the SRK.
func (t *TPM) CreateKey(template tpm2.Public) (*Object, error) {
	o, _, _, err := t.create(template, nil)
	return o, err
}

func (t *TPM) create(template tpm2.Public, sensitive []byte) (*Object, []byte, tpm2.Ticket, error) {
	if err := t.srk(); err != nil {
		return nil, nil, tpm2.Ticket{}, err
	}
	priv, pub, data, hash, ticket, err := tpm2.CreateKey(t.sim, SRK, tpm2.PCRSelection{}, "", "", template)
	if err != nil {
		return nil, nil, tpm2.Ticket{}, fmt.Errorf("tpmsim: TPM2_Create: %w", err)
	}
	o := &Object{Public: pub, CreateData: data, Scheme: scheme(template)}
	o.load = func() (tpmutil.Handle, error) {
		h, _, err := tpm2.Load(t.sim, SRK, "", pub, priv)
		if err != nil {
			return 0, fmt.Errorf("tpmsim: TPM2_Load: %w", err)
		}
		return h, nil
	}
	return o, hash, ticket, nil
}

func scheme(template tpm2.Public) tpm2.SigScheme {
	switch {
	case template.ECCParameters != nil && template.ECCParameters.Sign != nil:
		return *template.ECCParameters.Sign
	case template.RSAParameters != nil && template.RSAParameters.Sign != nil:
		return *template.RSAParameters.Sign
	}
	return tpm2.SigScheme{}
}

// ExternalKey makes an ECDSA P-256 key outside the TPM that the TPM loads,
// private part included, whenever it is used (TPM2_LoadExternal, null
// hierarchy): the TPM can certify it, but the key was never the TPM's. The
// TPM requires fixedTPM, fixedParent and restricted clear in template for
// such a key.
func (t *TPM) ExternalKey(template tpm2.Public) (*Object, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := template
	ecc := *template.ECCParameters
	ecc.Point = tpm2.ECPoint{XRaw: priv.X.FillBytes(make([]byte, 32)), YRaw: priv.Y.FillBytes(make([]byte, 32))}
	pub.ECCParameters = &ecc
	private := tpm2.Private{Type: tpm2.AlgECC, Sensitive: priv.D.FillBytes(make([]byte, 32))}
	enc, err := pub.Encode()
	if err != nil {
		return nil, err
	}
	o := &Object{Public: enc, Scheme: scheme(template)}
	o.load = func() (tpmutil.Handle, error) {
		h, _, err := tpm2.LoadExternal(t.sim, pub, private, tpm2.HandleNull)
		if err != nil {
			return 0, fmt.Errorf("tpmsim: TPM2_LoadExternal: %w", err)
		}
		return h, nil
	}
	return o, nil
}

// Certify has the TPM certify key with ak (TPM2_Certify) over qualifying
// data, and returns the TPMS_ATTEST and its TPMT_SIGNATURE.
func (t *TPM) Certify(ak, key *Object, qualifyingData []byte) (attestation, signature []byte, err error) {
	ah, err := ak.load()
	if err != nil {
		return nil, nil, err
	}
	defer tpm2.FlushContext(t.sim, ah)
	kh, err := key.load()
	if err != nil {
		return nil, nil, err
	}
	defer tpm2.FlushContext(t.sim, kh)
	att, sig, err := tpm2.CertifyEx(t.sim, "", "", kh, ah, qualifyingData, ak.Scheme)
	if err != nil {
		return nil, nil, fmt.Errorf("tpmsim: TPM2_Certify: %w", err)
	}
	return att, sig, nil
}

// Signer returns a crypto.Signer for key (an unrestricted signing key made
// by CreateKey): each Sign loads it, has the TPM sign the digest
// (TPM2_Sign: ECDSA, or RSASSA-PKCS1-v1_5, or RSASSA-PSS with
// *rsa.PSSOptions) and flushes it. ECDSA signatures are ASN.1 DER.
func (t *TPM) Signer(key *Object) (crypto.Signer, error) {
	pub, err := tpm2.DecodePublic(key.Public)
	if err != nil {
		return nil, fmt.Errorf("tpmsim: the key's public area: %w", err)
	}
	k, err := pub.Key()
	if err != nil {
		return nil, fmt.Errorf("tpmsim: the key's public key: %w", err)
	}
	return &objectSigner{t: t, o: key, pub: k}, nil
}

type objectSigner struct {
	t   *TPM
	o   *Object
	pub crypto.PublicKey
}

func (s *objectSigner) Public() crypto.PublicKey { return s.pub }

func (s *objectSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h, err := tpm2.HashToAlgorithm(opts.HashFunc())
	if err != nil {
		return nil, fmt.Errorf("tpmsim: hash: %w", err)
	}
	scheme := &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: h}
	if _, ok := s.pub.(*rsa.PublicKey); ok {
		scheme.Alg = tpm2.AlgRSASSA
		if _, pss := opts.(*rsa.PSSOptions); pss {
			scheme.Alg = tpm2.AlgRSAPSS
		}
	}
	hnd, err := s.o.load()
	if err != nil {
		return nil, err
	}
	defer tpm2.FlushContext(s.t.sim, hnd)
	sig, err := tpm2.Sign(s.t.sim, hnd, "", digest, nil, scheme)
	if err != nil {
		return nil, fmt.Errorf("tpmsim: TPM2_Sign: %w", err)
	}
	switch {
	case sig.RSA != nil:
		return sig.RSA.Signature, nil
	case sig.ECC != nil:
		return asn1.Marshal(struct{ R, S *big.Int }{sig.ECC.R, sig.ECC.S})
	}
	return nil, fmt.Errorf("tpmsim: a signature of algorithm %v", sig.Alg)
}
