package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"

	goattest "github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/store"
)

// A PC enrolls a sign-in key held in its TPM in three steps, all for one
// enrollment (StartEnrollment):
//
//  1. StartTPMActivation: the PC sends its endorsement key (EK certificate
//     and/or EK public key) and a new attestation key's (AK) parameters.
//     The engine checks them under the tenant's TPM policy (EK trust by a
//     vendor root or by the allow-list; a restricted signing key that never
//     leaves the TPM), keeps the pending activation in the store, and
//     returns the activation challenge: a secret encrypted so that only a
//     TPM holding both the EK and the AK can recover it.
//  2. CompleteTPMActivation: the PC returns the secret its TPM recovered.
//     The engine takes the pending activation out of the store (read and
//     deleted in one update, so it answers exactly once, right or wrong),
//     compares the secret in constant time before the deadline, and records
//     the AK on the enrollment.
//  3. CompleteEnrollment with format "tpm": the PC creates the sign-in key
//     under the AK with the enrollment challenge as qualifying data and
//     sends its certification (parts public, create_attestation,
//     create_signature). The engine verifies it under the activated AK and
//     creates the credential as for every format.

// TPMAKParameters are an attestation key's parameters as go-attestation's
// AK.AttestationParameters returns them on the PC: Public (TPMT_PUBLIC),
// CreateData (TPMS_CREATION_DATA), CreateAttestation (TPMS_ATTEST of
// TPM2_CertifyCreation) and CreateSignature (TPMT_SIGNATURE).
type TPMAKParameters struct {
	Public            []byte `json:"public"`
	CreateData        []byte `json:"create_data"`
	CreateAttestation []byte `json:"create_attestation"`
	CreateSignature   []byte `json:"create_signature"`
}

// TPMActivationRequest is a PC's first TPM message for an enrollment.
type TPMActivationRequest struct {
	// Enrollment is the id StartEnrollment returned.
	Enrollment string `json:"enrollment"`
	// EKCertificate is the EK certificate as the TPM's NV index holds it
	// (go-attestation's EK.Certificate.Raw, or the NV bytes), and EKIssuers
	// the DER certificates that issued it, leaf side first, when the PC
	// has them. Required when the tenant trusts EK certificates.
	EKCertificate []byte   `json:"ek_certificate,omitempty"`
	EKIssuers     [][]byte `json:"ek_issuers,omitempty"`
	// EKPublic is the EK public key (PKIX DER). Under an EK allow-list it
	// may replace the certificate; when both are sent they must agree.
	EKPublic []byte `json:"ek_public,omitempty"`
	// AK are the new attestation key's parameters.
	AK TPMAKParameters `json:"ak"`
}

// TPMActivation is the activation challenge for the PC: go-attestation's
// EncryptedCredential, which the PC passes to AK.ActivateCredential to
// recover the secret, and the deadline for its answer.
type TPMActivation struct {
	Enrollment string    `json:"enrollment"`
	Credential []byte    `json:"credential"`
	Secret     []byte    `json:"secret"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// tpmActivation is the stored pending activation of an enrollment.
type tpmActivation struct {
	Enrollment string `json:"enrollment"`
	Tenant     string `json:"tenant"`
	User       string `json:"user"`
	// Pending is the tpm.Activation (a digest of the secret, never the
	// secret).
	Pending []byte `json:"pending"`
	// Evidence holds the request's EK and AK parts.
	Evidence  Evidence  `json:"evidence"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxEKIssuers bounds the certificates a PC sends above its EK certificate.
const MaxEKIssuers = 7

// Parts of a tpm credential's evidence. The PC sends the certification
// (public, create_attestation, create_signature, and optionally
// ak_public); the engine adds what the activation proved.
var (
	tpmCertificationParts = []string{"public", "create_attestation", "create_signature"}
	tpmActivationParts    = []string{"ak", "ak_public", "ak_create_data", "ak_create_attestation", "ak_create_signature"}
	tpmEKParts            = []string{"ek_certificate", "ek_issuers", "ek_public"}
)

// StartTPMActivation checks a PC's EK and new AK for an open enrollment
// under the tenant's TPM policy and returns the activation challenge. The
// pending activation is kept until CompleteTPMActivation takes it, or it
// expires (tpm.DefaultActivationTTL, and never after the enrollment); a new
// call replaces it. Codes: input.invalid; enroll.not_found, enroll.used,
// enroll.expired; enroll.disabled, enroll.mfa_push_required,
// enroll.not_targeted; enroll.format_not_allowed (no tpm section or no tpm
// verifier); enroll.tpm_activated (the enrollment already has an AK); the
// EK checks (tpm.ek_certificate_missing, tpm.ek_not_allowed,
// tpm.ek_malformed, tpm.ek_mismatch, chain.…, asn1.certificate) and the AK
// checks (tpm.malformed_…, tpm.bad_magic, tpm.attestation_type,
// tpm.unsupported_key, tpm.weak_key, tpm.ak_…).
func (e *Engine) StartTPMActivation(ctx context.Context, req TPMActivationRequest) (*TPMActivation, error) {
	if err := checkID("enrollment", req.Enrollment); err != nil {
		return nil, err
	}
	ev, err := req.evidence()
	if err != nil {
		return nil, err
	}
	enr, err := e.openEnrollment(req.Enrollment)
	if err != nil {
		return nil, err
	}
	act, err := e.startTPMActivation(enr, req, ev)
	if err != nil {
		e.auditRefusal(enr.Tenant, enr.User, "enroll.refused", err, ActorPhone, map[string]string{"enrollment": enr.ID, "format": FormatTPM, "step": "tpm_activation"})
		return nil, err
	}
	return act, nil
}

// evidence checks the request's sizes and returns its parts as evidence.
func (r TPMActivationRequest) evidence() (Evidence, error) {
	if len(r.AK.Public) == 0 || len(r.AK.CreateData) == 0 || len(r.AK.CreateAttestation) == 0 || len(r.AK.CreateSignature) == 0 {
		return nil, invalid("the AK parameters need public, create_data, create_attestation and create_signature")
	}
	if len(r.EKIssuers) > MaxEKIssuers {
		return nil, invalid("%d EK issuing certificates (at most %d)", len(r.EKIssuers), MaxEKIssuers)
	}
	ev := Evidence{
		"ak_public": r.AK.Public, "ak_create_data": r.AK.CreateData,
		"ak_create_attestation": r.AK.CreateAttestation, "ak_create_signature": r.AK.CreateSignature,
	}
	if len(r.EKCertificate) > 0 {
		ev["ek_certificate"] = r.EKCertificate
	}
	if len(r.EKIssuers) > 0 {
		for _, c := range r.EKIssuers {
			if len(c) == 0 {
				return nil, invalid("an empty EK issuing certificate")
			}
			if _, err := SplitDER(c); err != nil {
				return nil, invalid("an EK issuing certificate is not DER: %v", err)
			}
		}
		ev["ek_issuers"] = JoinDER(r.EKIssuers)
	}
	if len(r.EKPublic) > 0 {
		ev["ek_public"] = r.EKPublic
	}
	if err := checkEvidence(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// openEnrollment reads an enrollment that is still open: pending and not
// expired.
func (e *Engine) openEnrollment(id string) (*Enrollment, error) {
	var enr Enrollment
	if err := e.st.Get(store.EnrollmentKey(id), &enr); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeEnrollNotFound, KindNotFound, "no enrollment %q", id)
		}
		return nil, storeError(err)
	}
	if err := e.enrollmentOpen(&enr); err != nil {
		return nil, err
	}
	return &enr, nil
}

func (e *Engine) enrollmentOpen(enr *Enrollment) error {
	if enr.State != enrollPending {
		return errorf(CodeEnrollUsed, KindConflict, "enrollment %q was already used", enr.ID)
	}
	if !e.now().Before(enr.ExpiresAt) {
		return errorf(CodeEnrollExpired, KindGone, "enrollment %q expired at %s", enr.ID, enr.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// tpmPolicy checks that the tenant may enroll a TPM key for the user now,
// and returns the effective TPM section and the EK roots.
func (e *Engine) tpmPolicy(enr *Enrollment) (*TPMPolicy, []*x509.Certificate, error) {
	t, err := e.tenant(enr.Tenant)
	if err != nil {
		return nil, nil, err
	}
	u, err := e.user(enr.Tenant, enr.User)
	if err != nil {
		return nil, nil, err
	}
	if err := enrollable(t, u); err != nil {
		return nil, nil, err
	}
	p := t.Policy.Effective().Attestation
	if p.TPM == nil || e.verifiers[FormatTPM] == nil {
		return nil, nil, errorf(CodeEnrollFormat, KindForbidden, "the tenant's policy does not accept %q attestations", FormatTPM)
	}
	return p.TPM, e.formatRoots(p, FormatTPM), nil
}

func (e *Engine) startTPMActivation(enr *Enrollment, req TPMActivationRequest, ev Evidence) (*TPMActivation, error) {
	if enr.TPMAK != nil {
		return nil, errorf(CodeTPMActivated, KindConflict, "enrollment %q already has an activated attestation key", enr.ID)
	}
	policy, roots, err := e.tpmPolicy(enr)
	if err != nil {
		return nil, err
	}
	now := e.now()
	opts, err := tpmOptions(policy, roots, now, e.tpmCache)
	if err != nil {
		return nil, err
	}
	opts.Rand = randReader{e}
	opts.ActivationTTL = min(tpm.DefaultActivationTTL, enr.ExpiresAt.Sub(now))
	ch, pending, err := tpm.StartEnrollment(&tpm.EnrollmentRequest{
		EKChain:  ekChain(req.EKCertificate, req.EKIssuers),
		EKPublic: req.EKPublic,
		AK:       req.AK.goattest(),
	}, &opts)
	if err != nil {
		return nil, attestationError(err)
	}
	record, err := pending.MarshalBinary()
	if err != nil {
		return nil, errorf(CodeInternal, KindInternal, "activation: %v", err)
	}
	act := tpmActivation{
		Enrollment: enr.ID, Tenant: enr.Tenant, User: enr.User, Pending: record, Evidence: ev,
		ExpiresAt: pending.Expires().UTC(), CreatedAt: now,
	}
	ek, ak := store.EnrollmentKey(enr.ID), store.TPMActivationKey(enr.ID)
	err = e.st.Update([]store.Key{ek, ak}, func(tx *store.Tx) error {
		var cur Enrollment
		if err := tx.Get(ek, &cur); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeEnrollNotFound, KindNotFound, "no enrollment %q", enr.ID)
		} else if err != nil {
			return err
		}
		if err := e.enrollmentOpen(&cur); err != nil {
			return err
		}
		if cur.TPMAK != nil {
			return errorf(CodeTPMActivated, KindConflict, "enrollment %q already has an activated attestation key", enr.ID)
		}
		// A new activation replaces the pending one: one per enrollment.
		if err := tx.Put(ak, act); err != nil {
			return err
		}
		if err := tx.DeleteAfter(ak, act.ExpiresAt.Add(e.retention)); err != nil {
			return err
		}
		return e.audit(tx, enr.Tenant, enr.User, "enroll.tpm_activation_started", "", ActorPhone, map[string]string{"enrollment": enr.ID})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &TPMActivation{Enrollment: enr.ID, Credential: ch.Credential, Secret: ch.Secret, ExpiresAt: act.ExpiresAt}, nil
}

func (p TPMAKParameters) goattest() goattest.AttestationParameters {
	return goattest.AttestationParameters{Public: p.Public, CreateData: p.CreateData, CreateAttestation: p.CreateAttestation, CreateSignature: p.CreateSignature}
}

func ekChain(cert []byte, issuers [][]byte) [][]byte {
	if len(cert) == 0 {
		return nil
	}
	return append([][]byte{cert}, issuers...)
}

// tpmOptions are the enrollment options of a TPM policy.
func tpmOptions(p *TPMPolicy, roots []*x509.Certificate, at time.Time, cache *attest.CertCache) (tpm.Options, error) {
	o := tpm.Options{Time: at, EKRoots: roots, Cache: cache}
	switch p.EKTrust {
	case "", EKTrustCertificate:
		o.EKTrust = tpm.EKCertificate
	case EKTrustAllowList:
		o.EKTrust = tpm.EKAllowList
		o.EKAllowList = make([][32]byte, 0, len(p.EKAllowList))
		for _, h := range p.EKAllowList {
			var b [32]byte
			if n, err := hex.Decode(b[:], []byte(h)); err != nil || n != 32 {
				return o, errorf(CodePolicyInvalid, KindInvalid, "ek_allow_list entry %q is not a hex SHA-256", h)
			}
			o.EKAllowList = append(o.EKAllowList, b)
		}
	default:
		return o, errorf(CodePolicyInvalid, KindInvalid, "ek_trust %q is not %q or %q", p.EKTrust, EKTrustCertificate, EKTrustAllowList)
	}
	return o, nil
}

// randReader reads the engine's randomness.
type randReader struct{ e *Engine }

func (r randReader) Read(b []byte) (int, error) {
	if err := r.e.random(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// MaxTPMSecret bounds the secret a PC returns (go-attestation's secrets
// are 32 bytes).
const MaxTPMSecret = 64

// CompleteTPMActivation takes the enrollment's pending activation out of
// the store and checks the secret the PC's TPM recovered: in one store
// update the activation is read and deleted, the secret compared in
// constant time before the deadline, and on success the AK recorded on the
// enrollment. An activation answers once: a wrong or late answer uses it up
// too (start again), and a second answer finds it gone. Codes:
// input.invalid; enroll.not_found, enroll.used, enroll.expired;
// enroll.disabled, enroll.mfa_push_required, enroll.not_targeted,
// enroll.format_not_allowed (the policy, checked again);
// enroll.tpm_no_activation (none pending); tpm.activation_used (already
// answered: the enrollment has its AK); tpm.activation_expired;
// tpm.activation_mismatch (another secret: the TPM does not hold both the
// EK and the AK).
func (e *Engine) CompleteTPMActivation(ctx context.Context, enrollment string, secret []byte) (*TPMAK, error) {
	if err := checkID("enrollment", enrollment); err != nil {
		return nil, err
	}
	if len(secret) == 0 || len(secret) > MaxTPMSecret {
		return nil, invalid("the activation secret must be 1 to %d bytes", MaxTPMSecret)
	}
	enr, err := e.openEnrollment(enrollment)
	if err != nil {
		return nil, err
	}
	if _, _, err := e.tpmPolicy(enr); err != nil {
		e.auditRefusal(enr.Tenant, enr.User, "enroll.refused", err, ActorPhone, map[string]string{"enrollment": enr.ID, "format": FormatTPM, "step": "tpm_activation"})
		return nil, err
	}
	ek, ak := store.EnrollmentKey(enrollment), store.TPMActivationKey(enrollment)
	var (
		result error // a refusal committed with the activation's deletion
		out    *TPMAK
	)
	err = e.st.Update([]store.Key{ek, ak}, func(tx *store.Tx) error {
		result, out = nil, nil
		var cur Enrollment
		if err := tx.Get(ek, &cur); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeEnrollNotFound, KindNotFound, "no enrollment %q", enrollment)
		} else if err != nil {
			return err
		}
		if cur.State != enrollPending {
			return errorf(CodeEnrollUsed, KindConflict, "enrollment %q was already used", enrollment)
		}
		var act tpmActivation
		if err := tx.Take(ak, &act); errors.Is(err, store.ErrNotFound) {
			if cur.TPMAK != nil {
				return errorf(Code(tpm.CodeActivationUsed), KindConflict, "the activation of enrollment %q was already answered", enrollment)
			}
			return errorf(CodeTPMNoActivation, KindNotFound, "enrollment %q has no pending TPM activation", enrollment)
		} else if err != nil {
			return err
		}
		// From here the activation is consumed, whatever the outcome.
		now := e.now()
		result = e.activate(&cur, &act, secret, now)
		if result != nil {
			return e.audit(tx, cur.Tenant, cur.User, "enroll.refused", CodeOf(result), ActorPhone, map[string]string{"enrollment": enrollment, "format": FormatTPM, "step": "tpm_activation"})
		}
		if err := tx.Put(ek, cur); err != nil {
			return err
		}
		out = cur.TPMAK
		return e.audit(tx, cur.Tenant, cur.User, "enroll.tpm_activated", "", ActorPhone, map[string]string{"enrollment": enrollment, "root": cur.TPMAK.Root})
	})
	if err != nil {
		err = storeError(err)
		e.auditRefusal(enr.Tenant, enr.User, "enroll.refused", err, ActorPhone, map[string]string{"enrollment": enrollment, "format": FormatTPM, "step": "tpm_activation"})
		return nil, err
	}
	if result != nil {
		return nil, result
	}
	return out, nil
}

// activate checks the secret against the taken activation and, on
// success, records the AK on enr.
func (e *Engine) activate(enr *Enrollment, act *tpmActivation, secret []byte, now time.Time) error {
	if !now.Before(enr.ExpiresAt) {
		return errorf(CodeEnrollExpired, KindGone, "enrollment %q expired at %s", enr.ID, enr.ExpiresAt.Format(time.RFC3339))
	}
	pending, err := tpm.ParseActivation(act.Pending)
	if err != nil {
		return errorf(CodeInternal, KindInternal, "stored activation: %v", err)
	}
	ak, err := pending.Activate(secret, now)
	if err != nil {
		kind := KindForbidden
		switch attest.CodeOf(err) {
		case tpm.CodeActivationExpired:
			kind = KindGone
		case tpm.CodeActivationUsed:
			kind = KindConflict
		}
		return &Error{Code: Code(attest.CodeOf(err)), Kind: kind, Reason: err.Error(), Err: err}
	}
	record, err := ak.MarshalBinary()
	if err != nil {
		return errorf(CodeInternal, KindInternal, "AK record: %v", err)
	}
	ev := Evidence{"ak": record}
	for k, v := range act.Evidence {
		ev[k] = v
	}
	enr.TPMAK = &TPMAK{Enrollment: enr.ID, Public: ak.Public(), EKSHA256: ak.EKHash(), Root: ak.Root(), ActivatedAt: now, Evidence: ev}
	return nil
}

// tpmEvidence adds to a PC's certification the parts its enrollment's
// activation proved. The PC sends public, create_attestation and
// create_signature, and may name the AK it used (ak_public), which must be
// the activated one.
func tpmEvidence(enr *Enrollment, ev Evidence) (Evidence, error) {
	if err := evidenceParts(FormatTPM, ev, tpmCertificationParts, "ak_public"); err != nil {
		return nil, attestationError(err)
	}
	if enr.TPMAK == nil {
		return nil, errorf(CodeTPMNotActivated, KindConflict, "enrollment %q has no activated attestation key: activate one first (StartTPMActivation)", enr.ID)
	}
	if p, ok := ev["ak_public"]; ok && !bytes.Equal(p, enr.TPMAK.Public) {
		return nil, errorf(CodeTPMAKMismatch, KindForbidden, "the certification names another attestation key than the one activated for enrollment %q", enr.ID)
	}
	full := Evidence{}
	for k, v := range enr.TPMAK.Evidence {
		full[k] = v
	}
	for k, v := range ev {
		full[k] = v
	}
	return full, nil
}

type tpmVerifier struct{ cache *attest.CertCache }

// TPMVerifier verifies "tpm" evidence: a sign-in key's certification by an
// attestation key, with what the key's activation proved (the parts
// tpmEvidence adds). It checks again, under the tenant's current TPM policy
// and at the request's time, that the EK is trusted and the AK is an
// attestation key (tpm.StartEnrollment's checks), then that the activated
// AK certified the key for the enrollment challenge
// (tpm.VerifyCertification), and that the key can sign answers with
// SHA-256 (RSA), or the hash of its curve (ECDSA) (enroll.unsupported_key).
// ExtraRoots of the request are the EK roots. cache (nil: a cache of its
// own) keeps EK issuing certificates.
func TPMVerifier(cache *attest.CertCache) AttestationVerifier {
	if cache == nil {
		cache = attest.NewCertCache(0)
	}
	return &tpmVerifier{cache: cache}
}

func (v *tpmVerifier) VerifyAttestation(ctx context.Context, req AttestationRequest) (*attest.Verdict, error) {
	ev := req.Evidence
	if err := evidenceParts(FormatTPM, ev, append(append([]string{}, tpmCertificationParts...), tpmActivationParts...), tpmEKParts...); err != nil {
		return nil, err
	}
	if req.Policy.TPM == nil {
		return nil, attest.Errorf(tpm.CodeEKNotAllowed, "no TPM policy")
	}
	opts, err := tpmOptions(req.Policy.TPM, req.ExtraRoots, req.Time, v.cache)
	if err != nil {
		return nil, err
	}
	var issuers [][]byte
	if len(ev["ek_issuers"]) > 0 {
		if issuers, err = SplitDER(ev["ek_issuers"]); err != nil {
			return nil, attest.Errorf(CodeEvidence, "ek_issuers is not a sequence of DER certificates: %v", err)
		}
	}
	ekReq := &tpm.EnrollmentRequest{
		EKChain:  ekChain(ev["ek_certificate"], issuers),
		EKPublic: ev["ek_public"],
		AK: goattest.AttestationParameters{
			Public: ev["ak_public"], CreateData: ev["ak_create_data"],
			CreateAttestation: ev["ak_create_attestation"], CreateSignature: ev["ak_create_signature"],
		},
	}
	// The EK and the AK, under the policy of now. (The challenge this makes
	// is dropped: the activation was answered when the AK was enrolled.)
	if _, _, err := tpm.StartEnrollment(ekReq, &opts); err != nil {
		return nil, err
	}
	ak, err := tpm.ParseAK(ev["ak"])
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(ak.Public(), ev["ak_public"]) || !bytes.Equal(ak.EKHash(), ekHash(ekReq)) {
		return nil, attest.Errorf(tpm.CodeMalformedStored, "the activated AK is not the one of the activation request")
	}
	verdict, err := tpm.VerifyCertification(ak, tpm.CertificationParameters{
		Public: ev["public"], CreateAttestation: ev["create_attestation"], CreateSignature: ev["create_signature"],
	}, req.Challenge)
	if err != nil {
		return nil, err
	}
	pub, err := tpm.ParsePublic(ev["public"])
	if err != nil {
		return nil, err
	}
	if err := tpmAnswerScheme(pub); err != nil {
		return nil, err
	}
	verdict.Facts["ek_sha256"] = hex.EncodeToString(ak.EKHash())
	verdict.Facts["ek_trust"] = req.Policy.TPM.EKTrust
	return verdict, nil
}

// ekHash is the SHA-256 of the request's EK SubjectPublicKeyInfo (nil when
// it does not parse: StartEnrollment refused it first).
func ekHash(r *tpm.EnrollmentRequest) []byte {
	var spki []byte
	if len(r.EKPublic) > 0 {
		spki = r.EKPublic
	} else if len(r.EKChain) > 0 {
		c, err := goattest.ParseEKCertificate(r.EKChain[0])
		if err != nil {
			return nil
		}
		spki = c.RawSubjectPublicKeyInfo
	}
	if k, err := x509.ParsePKIXPublicKey(spki); err == nil {
		if spki, err = x509.MarshalPKIXPublicKey(k); err == nil {
			h := sha256.Sum256(spki)
			return h[:]
		}
	}
	return nil
}

// tpmAnswerScheme refuses a TPM key whose signing scheme is fixed to one
// an answer cannot use: answers are signed with SHA-256 by RSA keys
// (RSASSA-PKCS1-v1_5 or RSASSA-PSS) and with the hash of their curve by
// ECDSA keys (SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521). A key
// without a fixed scheme (TPM_ALG_NULL) signs with what the PC asks.
func tpmAnswerScheme(pub tpm2.Public) error {
	var s *tpm2.SigScheme
	var want tpm2.Algorithm
	algs := []tpm2.Algorithm{}
	switch pub.Type {
	case tpm2.AlgRSA:
		if pub.RSAParameters != nil {
			s = pub.RSAParameters.Sign
		}
		want, algs = tpm2.AlgSHA256, []tpm2.Algorithm{tpm2.AlgRSASSA, tpm2.AlgRSAPSS}
	case tpm2.AlgECC:
		if pub.ECCParameters == nil {
			break
		}
		s = pub.ECCParameters.Sign
		switch pub.ECCParameters.CurveID {
		case tpm2.CurveNISTP256:
			want = tpm2.AlgSHA256
		case tpm2.CurveNISTP384:
			want = tpm2.AlgSHA384
		case tpm2.CurveNISTP521:
			want = tpm2.AlgSHA512
		}
		algs = []tpm2.Algorithm{tpm2.AlgECDSA}
	}
	if s == nil || s.Alg == tpm2.AlgNull {
		return nil
	}
	for _, a := range algs {
		if s.Alg == a && s.Hash == want {
			return nil
		}
	}
	return errorf(CodeEnrollUnsupportedKey, KindForbidden, "the TPM key signs only with scheme %v and hash %v, which answers do not use", s.Alg, s.Hash)
}
