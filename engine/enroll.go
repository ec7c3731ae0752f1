package engine

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/store"
)

// ChallengeSize is the size of an enrollment challenge in bytes.
const ChallengeSize = 32

// enrollable checks that a user may hold phone sign-in under the tenant's
// policy: the method is on, the user has MFA push and is targeted.
func enrollable(t *Tenant, u *User) error {
	p := t.Policy
	switch {
	case !p.Enabled:
		return errorf(CodeEnrollDisabled, KindForbidden, "phone sign-in is not enabled in tenant %q", t.ID)
	case !u.MFAPush:
		return errorf(CodeEnrollMFARequired, KindForbidden, "user %q has not registered for multi-factor push", u.ID)
	case !p.Target.Includes(u.Groups):
		return errorf(CodeEnrollNotTargeted, KindForbidden, "user %q is not targeted by the tenant's phone sign-in policy", u.ID)
	}
	return nil
}

// StartEnrollment opens an enrollment for a user the auth server has just
// authenticated (password and MFA): a random challenge, usable once, for
// EnrollmentLifetime. Codes: input.invalid, tenant.not_found,
// user.not_found, enroll.disabled, enroll.mfa_push_required,
// enroll.not_targeted, enroll.install_limit.
func (e *Engine) StartEnrollment(ctx context.Context, tenant, user string) (*Enrollment, error) {
	enr, err := e.startEnrollment(tenant, user)
	if err != nil {
		e.auditRefusal(tenant, user, "enroll.refused", err, ActorAuthServer, nil)
	}
	return enr, err
}

func (e *Engine) startEnrollment(tenant, user string) (*Enrollment, error) {
	t, err := e.tenant(tenant)
	if err != nil {
		return nil, err
	}
	u, err := e.user(tenant, user)
	if err != nil {
		return nil, err
	}
	if err := enrollable(t, u); err != nil {
		return nil, err
	}
	ids, err := e.userCredentialIDs(e.st, tenant, user)
	if err != nil {
		return nil, storeError(err)
	}
	if max := t.Policy.Effective().MaxInstalls; len(ids) >= max {
		return nil, errorf(CodeEnrollInstallLimit, KindForbidden, "user %q has %d phone sign-in installs, the most the tenant allows", user, len(ids))
	}
	id, err := e.newID()
	if err != nil {
		return nil, err
	}
	challenge := make([]byte, ChallengeSize)
	if err := e.random(challenge); err != nil {
		return nil, err
	}
	now := e.now()
	enr := Enrollment{ID: id, Tenant: tenant, User: user, Challenge: challenge, ExpiresAt: now.Add(EnrollmentLifetime), State: enrollPending, CreatedAt: now}
	k := store.EnrollmentKey(id)
	err = e.st.Update([]store.Key{k}, func(tx *store.Tx) error {
		if err := tx.Create(k, enr); err != nil {
			return err
		}
		if err := tx.DeleteAfter(k, enr.ExpiresAt.Add(e.retention)); err != nil {
			return err
		}
		return e.audit(tx, tenant, user, "enroll.started", "", ActorAuthServer, map[string]string{"enrollment": id})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &enr, nil
}

// EnrollRequest is the device's half of an enrollment.
type EnrollRequest struct {
	// Enrollment is the id StartEnrollment returned.
	Enrollment string
	// Format and Evidence are the attestation of the new key over the
	// enrollment's challenge (for tpm, the key's certification by the AK
	// activated for this enrollment; for webauthn, the registration with the
	// challenge as its WebAuthn challenge).
	Format   string
	Evidence Evidence
	// Device is the id of the device as a previous enrollment returned it;
	// empty for a device enrolling for the first time (a new id is made).
	Device string
}

// CompleteEnrollment consumes the enrollment's challenge (once, whatever
// the result), verifies the attestation under the tenant's policy, and
// creates the credential (and the device, when new) atomically. Codes:
// input.invalid; enroll.not_found, enroll.used, enroll.expired;
// enroll.tpm_not_activated (format tpm before CompleteTPMActivation: the
// challenge is not consumed), enroll.tpm_ak_mismatch; the policy codes of
// StartEnrollment (checked again); enroll.format_not_allowed,
// enroll.untrusted_key, enroll.unsupported_key and the verifier's attest
// codes (chain.…, android.…, appattest.…, tpm.…, webauthn.…, policy.…,
// input.evidence); device.not_found, device.disabled,
// enroll.device_other_tenant, enroll.device_has_account,
// enroll.key_registered, enroll.install_limit.
func (e *Engine) CompleteEnrollment(ctx context.Context, req EnrollRequest) (*Credential, error) {
	if err := checkID("enrollment", req.Enrollment); err != nil {
		return nil, err
	}
	if err := formatKnown(req.Format); err != nil {
		return nil, err
	}
	if err := checkEvidence(req.Evidence); err != nil {
		return nil, err
	}
	if req.Device != "" {
		if err := checkID("device", req.Device); err != nil {
			return nil, err
		}
	}
	enr, err := e.consumeEnrollment(req.Enrollment, req.Format)
	if err != nil {
		return nil, err
	}
	cred, err := e.completeEnrollment(ctx, enr, req)
	if err != nil {
		e.auditRefusal(enr.Tenant, enr.User, "enroll.refused", err, ActorPhone, map[string]string{"enrollment": enr.ID, "format": req.Format})
		return nil, err
	}
	return cred, nil
}

// consumeEnrollment marks an enrollment used, once. A tpm enrollment
// whose AK is not activated yet is refused without consuming it.
func (e *Engine) consumeEnrollment(id, format string) (*Enrollment, error) {
	k := store.EnrollmentKey(id)
	var enr Enrollment
	err := e.st.Update([]store.Key{k}, func(tx *store.Tx) error {
		if err := tx.Get(k, &enr); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeEnrollNotFound, KindNotFound, "no enrollment %q", id)
		} else if err != nil {
			return err
		}
		if enr.State != enrollPending {
			return errorf(CodeEnrollUsed, KindConflict, "enrollment %q was already used", id)
		}
		if !e.now().Before(enr.ExpiresAt) {
			return errorf(CodeEnrollExpired, KindGone, "enrollment %q expired at %s", id, enr.ExpiresAt.Format(time.RFC3339))
		}
		if format == FormatTPM && enr.TPMAK == nil {
			return errorf(CodeTPMNotActivated, KindConflict, "enrollment %q has no activated attestation key: activate one first (StartTPMActivation)", id)
		}
		used := enr
		used.State = enrollUsed
		return tx.CompareAndSwap(k, enr, used)
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &enr, nil
}

func (e *Engine) completeEnrollment(ctx context.Context, enr *Enrollment, req EnrollRequest) (*Credential, error) {
	t, err := e.tenant(enr.Tenant)
	if err != nil {
		return nil, err
	}
	u, err := e.user(enr.Tenant, enr.User)
	if err != nil {
		return nil, err
	}
	if err := enrollable(t, u); err != nil {
		return nil, err
	}
	policy := t.Policy.Effective()
	now := e.now()
	evidence := req.Evidence
	if req.Format == FormatTPM {
		if evidence, err = tpmEvidence(enr, evidence); err != nil {
			return nil, err
		}
	}
	verdict, err := e.verifyAttestation(ctx, policy, req.Format, evidence, enr.Challenge, now)
	if err != nil {
		return nil, err
	}
	if err := checkSigningKey(req.Format, verdict.PublicKey); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(verdict.PublicKey)
	if err != nil {
		return nil, errorf(CodeEnrollUnsupportedKey, KindForbidden, "the attested key cannot be encoded: %v", err)
	}
	keyID := sha256.Sum256(spki)
	facts, err := json.Marshal(verdict.Facts)
	if err != nil {
		return nil, errorf(CodeInternal, KindInternal, "verdict facts: %v", err)
	}
	rawEvidence, err := encodeEvidence(evidence)
	if err != nil {
		return nil, errorf(CodeInternal, KindInternal, "evidence: %v", err)
	}
	credID, err := e.newID()
	if err != nil {
		return nil, err
	}
	deviceID, newDevice := req.Device, req.Device == ""
	if newDevice {
		if deviceID, err = e.newID(); err != nil {
			return nil, err
		}
	}
	cred := Credential{
		ID: credID, Tenant: enr.Tenant, User: enr.User, Device: deviceID,
		Format: req.Format, Trust: string(verdict.Trust), Root: verdict.Root,
		PublicKey: spki, KeyID: keyID[:], Facts: facts, Challenge: enr.Challenge, CreatedAt: now,
	}
	if app, ok := verdict.Facts["app_id"].(string); ok {
		cred.AppID = app
	}
	if req.Format == FormatWebAuthn {
		cred.Statement, _ = verdict.Facts["format"].(string)
		cred.WebAuthnID, _ = verdict.Facts["credential_id"].([]byte)
		cred.COSEAlgorithm, _ = verdict.Facts["cose_algorithm"].(int64)
	}
	if n, ok := verdict.Facts["counter"]; ok {
		cred.Counter = counterOf(n)
	}
	uk, dk, kk := store.UserKey(enr.Tenant, enr.User), store.DeviceKey(deviceID), store.KeyIDKey(keyID[:])
	err = e.st.Update([]store.Key{uk, dk, kk}, func(tx *store.Tx) error {
		if ok, err := tx.Has(uk); err != nil {
			return err
		} else if !ok {
			return errorf(CodeUserNotFound, KindNotFound, "user %q was deleted", enr.User)
		}
		ids, err := e.userCredentialIDs(tx, enr.Tenant, enr.User)
		if err != nil {
			return err
		}
		if len(ids) >= policy.MaxInstalls {
			return errorf(CodeEnrollInstallLimit, KindForbidden, "user %q has %d phone sign-in installs, the most the tenant allows", enr.User, len(ids))
		}
		d := device{ID: deviceID, Platform: platformOf(req.Format, cred.Statement), CreatedAt: now}
		if !newDevice {
			if err := tx.Get(dk, &d); errors.Is(err, store.ErrNotFound) {
				return errorf(CodeDeviceNotFound, KindNotFound, "no device %q", deviceID)
			} else if err != nil {
				return err
			}
			if err := e.deviceAdmits(tx, &d, enr.Tenant, enr.User); err != nil {
				return err
			}
		}
		if err := tx.Create(kk, credID); errors.Is(err, store.ErrExists) {
			return errorf(CodeEnrollKeyRegistered, KindConflict, "this key is already registered")
		} else if err != nil {
			return err
		}
		d.Accounts = append(d.Accounts, account{Tenant: enr.Tenant, User: enr.User, Credential: credID})
		if err := tx.Put(dk, d); err != nil {
			return err
		}
		tdk := store.TenantDeviceKey(enr.Tenant, deviceID)
		if ok, err := tx.Has(tdk); err != nil {
			return err
		} else if !ok {
			if err := tx.Put(tdk, tenantDevice{}); err != nil {
				return err
			}
		}
		if err := tx.Put(store.CredentialKey(credID), cred); err != nil {
			return err
		}
		if err := tx.Put(store.UserCredentialKey(enr.Tenant, enr.User, credID), nil); err != nil {
			return err
		}
		if err := tx.PutEvidence(store.EvidenceKey(credID), rawEvidence); err != nil {
			return err
		}
		return e.audit(tx, enr.Tenant, enr.User, "enroll.completed", "", ActorPhone, map[string]string{
			"enrollment": enr.ID, "credential": credID, "device": deviceID, "format": req.Format, "root": verdict.Root,
		})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &cred, nil
}

// deviceAdmits applies the device rules to a new account (tenant, user)
// on an existing device d.
func (e *Engine) deviceAdmits(r store.Reader, d *device, tenant, user string) error {
	for _, a := range d.Accounts {
		if a.Tenant != tenant && !e.multiTenant {
			return errorf(CodeEnrollDeviceTenant, KindConflict, "device %q is registered in another tenant", d.ID)
		}
		if a.Tenant == tenant {
			if a.User == user {
				return errorf(CodeEnrollDeviceAccount, KindConflict, "user %q already has a phone sign-in credential on device %q", user, d.ID)
			}
			return errorf(CodeEnrollDeviceAccount, KindConflict, "device %q holds another account's phone sign-in credential", d.ID)
		}
	}
	var td tenantDevice
	if err := r.Get(store.TenantDeviceKey(tenant, d.ID), &td); err == nil && td.Disabled {
		return errorf(CodeDeviceDisabled, KindForbidden, "device %q is disabled", d.ID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// counterOf reads an integer fact.
func counterOf(v any) uint32 {
	switch n := v.(type) {
	case int:
		return uint32(n)
	case int64:
		return uint32(n)
	case uint32:
		return n
	case uint64:
		return uint32(n)
	case float64:
		return uint32(n)
	}
	return 0
}

// CredentialEvidence returns the attestation evidence a credential
// enrolled with. Codes: input.invalid, credential.not_found.
func (e *Engine) CredentialEvidence(ctx context.Context, tenant, id string) (Evidence, error) {
	if _, err := e.GetCredential(ctx, tenant, id); err != nil {
		return nil, err
	}
	raw, err := e.st.Evidence(store.EvidenceKey(id))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeCredentialNotFound, KindNotFound, "no evidence for credential %q", id)
		}
		return nil, storeError(err)
	}
	ev, err := decodeEvidence(raw)
	if err != nil {
		return nil, storeError(err)
	}
	return ev, nil
}

// ReverifyCredential verifies a credential's stored evidence again, under
// the tenant's current policy and trust anchors, at the time it enrolled:
// an audit after a policy change or a root's revocation. It returns the
// verdict or the refusal, and records the result in the audit log. Codes:
// input.invalid, credential.not_found, and the enrollment's verification
// codes.
func (e *Engine) ReverifyCredential(ctx context.Context, tenant, id string) (*attest.Verdict, error) {
	c, err := e.GetCredential(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	ev, err := e.CredentialEvidence(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	t, err := e.tenant(tenant)
	if err != nil {
		return nil, err
	}
	verdict, verr := e.verifyAttestation(ctx, t.Policy.Effective(), c.Format, ev, c.Challenge, c.CreatedAt)
	if verr == nil {
		spki, err := x509.MarshalPKIXPublicKey(verdict.PublicKey)
		if err != nil || string(spki) != string(c.PublicKey) {
			verr = errorf(CodeInternal, KindInternal, "the evidence attests another key than the credential's")
		}
	}
	e.st.Update(nil, func(tx *store.Tx) error {
		return e.audit(tx, tenant, c.User, "credential.reverified", CodeOf(verr), actorOf(ctx), map[string]string{"credential": id})
	})
	if verr != nil {
		return nil, verr
	}
	return verdict, nil
}
