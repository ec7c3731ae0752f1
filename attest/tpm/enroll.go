package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
)

// EKTrust says how the server decides that an endorsement key belongs to a
// genuine TPM. It is a policy setting; the zero value is EKCertificate.
type EKTrust int

const (
	// EKCertificate: the EK certificate the device sends must chain to one
	// of Options.EKRoots (the TPM vendors' roots). With no roots
	// configured, no EK is trusted.
	EKCertificate EKTrust = iota
	// EKAllowList: the SHA-256 of the EK's SubjectPublicKeyInfo must be in
	// Options.EKAllowList (TPMs registered beforehand, such as virtual TPMs
	// without an EK certificate).
	EKAllowList
)

func (t EKTrust) String() string {
	switch t {
	case EKCertificate:
		return "certificate"
	case EKAllowList:
		return "allow-list"
	}
	return fmt.Sprintf("EKTrust(%d)", int(t))
}

// DefaultActivationTTL is how long a device has to answer an activation
// challenge when Options.ActivationTTL is zero.
const DefaultActivationTTL = 5 * time.Minute

// Options configures enrollment. The zero value trusts no EK.
type Options struct {
	// Time is the validation time of EK certificates and the start of the
	// activation deadline; zero means time.Now().
	Time time.Time
	// EKTrust chooses how EKs are trusted (zero: EKCertificate).
	EKTrust EKTrust
	// EKRoots are the TPM vendor roots EK certificates must chain to.
	EKRoots []*x509.Certificate
	// EKAllowList holds the SHA-256 of each trusted EK's
	// SubjectPublicKeyInfo (DER), for EKAllowList.
	EKAllowList [][32]byte
	// ActivationTTL bounds the time to answer the activation challenge
	// (zero: DefaultActivationTTL).
	ActivationTTL time.Duration
	// Rand is the source of the activation secret (nil: crypto/rand).
	Rand io.Reader
	// Cache, when set, remembers parsed EK issuing certificates and
	// verified signature links across calls.
	Cache *attest.CertCache
}

func (o *Options) now() time.Time {
	if o.Time.IsZero() {
		return time.Now()
	}
	return o.Time
}

// EnrollmentRequest is what a device sends to enroll its AK.
type EnrollmentRequest struct {
	// EKChain is the EK certificate, as the TPM's NV index holds it (the
	// TCG NV header and trailing bytes are tolerated, as go-attestation's
	// ParseEKCertificate does), then the certificates that issued it, if
	// the device has them. Required under EKCertificate.
	EKChain [][]byte
	// EKPublic is the EK public key (PKIX DER). Under EKAllowList it may
	// replace the certificate; when both are sent they must agree.
	EKPublic []byte
	// AK is the AK's go-attestation AttestationParameters: Public
	// (TPMT_PUBLIC), CreateData, CreateAttestation (TPMS_ATTEST of
	// TPM2_CertifyCreation) and CreateSignature.
	AK goattest.AttestationParameters
}

// Challenge is the credential the device must activate: it sends it to
// go-attestation's AK.ActivateCredential, which only its TPM can do, and
// returns the secret inside.
type Challenge = goattest.EncryptedCredential

// StartEnrollment checks an enrollment request and returns the activation
// challenge to send to the device, and the pending activation to keep on the
// server until the device answers. In order, one code each:
//
//   - the EK is trusted under opts.EKTrust: its certificate chains to
//     opts.EKRoots (tpm.ek_certificate_missing, tpm.ek_malformed, chain.*),
//     or its key hash is allowed (tpm.ek_not_allowed); an EK public key sent
//     with the certificate is the certificate's (tpm.ek_mismatch);
//   - the AK structures decode strictly (tpm.malformed_*), the attestation is
//     a TPM2_CertifyCreation (tpm.attestation_type) made by a TPM
//     (tpm.bad_magic);
//   - go-attestation's ActivationParameters.CheckAKParameters: the AK is RSA
//     or ECC of a secure size (tpm.unsupported_key, tpm.weak_key), its
//     creation attestation covers its creation data and names it
//     (tpm.ak_creation_mismatch), it is fixedTPM (tpm.ak_not_fixed_tpm),
//     restricted (tpm.ak_not_restricted), fixedParent
//     (tpm.ak_not_fixed_parent), made by the TPM (tpm.ak_not_tpm_generated),
//     and signed its own creation attestation (tpm.ak_bad_signature);
//   - ActivationParameters.Generate makes the challenge for the EK.
//
// The secret is never returned: the Activation keeps only a digest of it.
func StartEnrollment(req *EnrollmentRequest, opts *Options) (*Challenge, *Activation, error) {
	if opts == nil {
		opts = &Options{}
	}
	if req == nil {
		return nil, nil, attest.Errorf(CodeInputMissing, "no enrollment request")
	}
	now := opts.now()
	ek, ekHash, root, err := trustEK(req, opts, now)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAK(req.AK); err != nil {
		return nil, nil, err
	}
	ak, err := newAK(req.AK.Public, root, ekHash[:])
	if err != nil {
		return nil, nil, err
	}
	ap := goattest.ActivationParameters{EK: ek, AK: req.AK, Rand: opts.Rand}
	secret, ch, err := ap.Generate()
	if err != nil {
		return nil, nil, attest.Errorf(CodeEKMalformed, "making the activation challenge for the EK: %v", err)
	}
	a := &Activation{ak: ak}
	if _, err := io.ReadFull(rand.Reader, a.id[:]); err != nil {
		return nil, nil, fmt.Errorf("tpm: reading randomness: %w", err)
	}
	a.digest = secretDigest(a.id, secret)
	clear(secret)
	ttl := opts.ActivationTTL
	if ttl <= 0 {
		ttl = DefaultActivationTTL
	}
	a.expires = now.Add(ttl)
	return ch, a, nil
}

// trustEK decides whether the request's EK is trusted, and returns its key,
// the SHA-256 of its SubjectPublicKeyInfo and the name of what vouched for
// it.
func trustEK(req *EnrollmentRequest, opts *Options, now time.Time) (crypto.PublicKey, [32]byte, string, error) {
	var (
		certKey, sentKey crypto.PublicKey
		leaf             *x509.Certificate
		zero             [32]byte
	)
	if len(req.EKChain) > 0 {
		c, err := goattest.ParseEKCertificate(req.EKChain[0])
		if err != nil {
			return nil, zero, "", attest.Errorf(CodeEKMalformed, "EK certificate: %v", err)
		}
		leaf, certKey = c, c.PublicKey
	}
	if len(req.EKPublic) > 0 {
		k, err := x509.ParsePKIXPublicKey(req.EKPublic)
		if err != nil {
			return nil, zero, "", attest.Errorf(CodeEKMalformed, "EK public key: %v", err)
		}
		sentKey = k
	}
	if certKey != nil && sentKey != nil && !samePublicKey(certKey, sentKey) {
		return nil, zero, "", attest.Errorf(CodeEKMismatch, "the EK public key sent is not the EK certificate's")
	}
	key := certKey
	if key == nil {
		key = sentKey
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	case nil:
		if opts.EKTrust == EKCertificate {
			return nil, zero, "", attest.Errorf(CodeEKCertificateMiss, "the policy trusts EK certificates and the device sent none")
		}
		return nil, zero, "", attest.Errorf(CodeInputMissing, "no EK public key or certificate")
	default:
		return nil, zero, "", attest.Errorf(CodeEKMalformed, "EK of type %T (RSA or ECC)", key)
	}
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, zero, "", attest.Errorf(CodeEKMalformed, "EK public key: %v", err)
	}
	hash := sha256.Sum256(spki)

	switch opts.EKTrust {
	case EKCertificate:
		if leaf == nil {
			return nil, zero, "", attest.Errorf(CodeEKCertificateMiss, "the policy trusts EK certificates and the device sent none")
		}
		chain := []*x509.Certificate{leaf}
		if len(req.EKChain) > 1 {
			issuers, err := ParseChain(req.EKChain[1:], opts.Cache)
			if err != nil {
				return nil, zero, "", err
			}
			chain = append(chain, issuers...)
		}
		root, err := VerifyChain(chain, ChainOptions{
			Roots: opts.EKRoots, Time: now, Cache: opts.Cache,
			LeafCritical: ekCritical,
		})
		if err != nil {
			return nil, zero, "", err
		}
		return key, hash, RootName(root), nil
	case EKAllowList:
		for _, h := range opts.EKAllowList {
			if h == hash {
				return key, hash, "ek-allowlist", nil
			}
		}
		return nil, zero, "", attest.Errorf(CodeEKNotAllowed, "the EK (SHA-256 of its public key %x) is not on the allow-list", hash)
	}
	return nil, zero, "", attest.Errorf(CodeEKNotAllowed, "unknown EK trust policy %v", opts.EKTrust)
}

// ekCritical are the critical extensions an EK certificate may carry that
// crypto/x509 does not handle: the subject alternative name naming the TPM
// (its content is not used to trust the EK, the chain is), and the subject
// directory attributes of the TPM specification.
var ekCritical = []asn1.ObjectIdentifier{OIDSubjectAltName, {2, 5, 29, 9}}

// checkAK checks the AK's structures, then asks go-attestation whether the
// AK's parameters make it an attestation key; on refusal it names the check.
func checkAK(p goattest.AttestationParameters) error {
	pub, err := ParsePublic(p.Public)
	if err != nil {
		return err
	}
	if _, err := ParseCreationData(p.CreateData); err != nil {
		return err
	}
	att, err := ParseAttestation(p.CreateAttestation)
	if err != nil {
		return err
	}
	if att.Type != tpm2.TagAttestCreation {
		return attest.Errorf(CodeAttestationType, "the AK's attestation is not a TPM2_CertifyCreation (type %#04x)", uint16(att.Type))
	}
	sig, err := ParseSignature(p.CreateSignature)
	if err != nil {
		return err
	}
	ap := goattest.ActivationParameters{AK: p}
	verr := ap.CheckAKParameters()
	if verr == nil {
		return nil
	}
	// Name the check that failed, in go-attestation's order.
	if err := checkKeyStrength("AK", pub); err != nil {
		return err
	}
	h, _ := pub.NameAlg.Hash() // ParsePublic checked it
	d := h.New()
	d.Write(p.CreateData)
	if !bytes.Equal(d.Sum(nil), att.AttestedCreationInfo.OpaqueDigest) {
		return attest.Errorf(CodeAKCreationMismatch, "the creation attestation covers other creation data")
	}
	if err := checkAKAttributes(pub); err != nil {
		return err
	}
	if ok, err := att.AttestedCreationInfo.Name.MatchesPublic(pub); err != nil || !ok {
		return attest.Errorf(CodeAKCreationMismatch, "the creation attestation names another key than the AK")
	}
	if akp, err := goattest.ParseAKPublic(p.Public); err != nil || !signedBy(akp.Public, akp.Hash, p.CreateAttestation, sig) {
		return attest.Errorf(CodeAKBadSignature, "the creation attestation is not signed by the AK: %v", verr)
	}
	return attest.Errorf(CodeAKInvalid, "go-attestation: %v", verr)
}

// Activation is the server's half of a credential activation: what it must
// keep between sending the challenge and receiving the device's answer. It
// holds a digest of the secret, never the secret itself, so a stored
// activation reveals nothing that answers it.
//
// An activation is answered once. Activate refuses a second call on the same
// value; across storage, the engine must take the stored activation (read
// and delete it in one step, under its ID) before calling Activate, so that
// a replayed answer finds nothing.
type Activation struct {
	id      [16]byte
	digest  [32]byte
	expires time.Time
	ak      *AK
	used    atomic.Bool
}

func secretDigest(id [16]byte, secret []byte) [32]byte {
	d := sha256.New()
	d.Write([]byte("keybind tpm activation\x00"))
	d.Write(id[:])
	d.Write(secret)
	var out [32]byte
	d.Sum(out[:0])
	return out
}

// ID returns the activation's random identifier, the key to store it under.
func (a *Activation) ID() []byte { return bytes.Clone(a.id[:]) }

// Expires returns the deadline for the device's answer.
func (a *Activation) Expires() time.Time { return a.expires }

// Activate checks the secret the device recovered with its TPM (constant
// time) and returns the enrolled AK. It refuses a second call
// (tpm.activation_used), an answer after the deadline
// (tpm.activation_expired; now zero means time.Now()) and another secret
// (tpm.activation_mismatch). Any call, right or wrong, uses the activation up.
func (a *Activation) Activate(secret []byte, now time.Time) (*AK, error) {
	if !a.used.CompareAndSwap(false, true) {
		return nil, attest.Errorf(CodeActivationUsed, "the activation was already answered")
	}
	if now.IsZero() {
		now = time.Now()
	}
	if now.After(a.expires) {
		return nil, attest.Errorf(CodeActivationExpired, "the activation expired at %s", a.expires.UTC().Format(time.RFC3339))
	}
	got := secretDigest(a.id, secret)
	if subtle.ConstantTimeCompare(got[:], a.digest[:]) != 1 {
		return nil, attest.Errorf(CodeActivationMismatch, "the device answered with another secret: its TPM does not hold both the EK and the AK")
	}
	return a.ak, nil
}

// activationVersion is the first byte of a stored activation.
const activationVersion = 1

// MarshalBinary encodes the activation for storage (ParseActivation reads
// it back). It carries the digest of the secret, not the secret.
func (a *Activation) MarshalBinary() ([]byte, error) {
	if a.used.Load() {
		return nil, errors.New("tpm: storing an activation that was already answered")
	}
	b := []byte{activationVersion}
	b = append(b, a.id[:]...)
	b = append(b, a.digest[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.expires.UnixNano()))
	return a.ak.appendBinary(b), nil
}

// ParseActivation decodes an activation stored with MarshalBinary.
func ParseActivation(b []byte) (*Activation, error) {
	r := reader{b: b}
	a := &Activation{}
	if r.byte() != activationVersion {
		return nil, attest.Errorf(CodeMalformedStored, "stored activation: unknown record version")
	}
	copy(a.id[:], r.bytes(16))
	copy(a.digest[:], r.bytes(32))
	a.expires = time.Unix(0, int64(r.uint64()))
	if r.short {
		return nil, attest.Errorf(CodeMalformedStored, "stored activation: truncated")
	}
	ak, rest, err := parseAK(r.b)
	if err == nil && len(rest) != 0 {
		err = errors.New("bytes after the record")
	}
	if err != nil {
		return nil, attest.Errorf(CodeMalformedStored, "stored activation: %v", err)
	}
	a.ak = ak
	return a, nil
}
