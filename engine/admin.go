package engine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/keybind/keybind/store"
)

// tenant reads a tenant (CodeTenantNotFound when absent).
func (e *Engine) tenant(id string) (*Tenant, error) {
	if err := checkID("tenant", id); err != nil {
		return nil, err
	}
	var t Tenant
	if err := e.st.Get(store.TenantKey(id), &t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeTenantNotFound, KindNotFound, "no tenant %q", id)
		}
		return nil, storeError(err)
	}
	return &t, nil
}

func (e *Engine) checkTenant(t *Tenant) error {
	if err := checkID("tenant id", t.ID); err != nil {
		return err
	}
	if err := checkText("tenant name", t.Name, MaxNameLength); err != nil {
		return err
	}
	return t.Policy.Effective().validate(e.roots)
}

// CreateTenant creates a tenant. Its policy is stored as given; zero
// fields take the defaults (see Policy). Codes: input.invalid,
// policy.invalid, tenant.exists.
func (e *Engine) CreateTenant(ctx context.Context, t Tenant) (*Tenant, error) {
	if err := e.checkTenant(&t); err != nil {
		return nil, err
	}
	now := e.now()
	t.CreatedAt, t.UpdatedAt = now, now
	k := store.TenantKey(t.ID)
	err := e.st.Update([]store.Key{k}, func(tx *store.Tx) error {
		if err := tx.Create(k, t); errors.Is(err, store.ErrExists) {
			return errorf(CodeTenantExists, KindConflict, "tenant %q exists", t.ID)
		} else if err != nil {
			return err
		}
		return e.audit(tx, t.ID, "", "tenant.created", "", actorOf(ctx), nil)
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &t, nil
}

// UpdateTenant replaces a tenant's name and policy. The new policy applies
// at once, to enrollments and to every sign-in. Codes: input.invalid,
// policy.invalid, tenant.not_found.
func (e *Engine) UpdateTenant(ctx context.Context, t Tenant) (*Tenant, error) {
	return e.ChangeTenant(ctx, t.ID, TenantChange{Name: &t.Name, Policy: &t.Policy})
}

// TenantChange is a partial update of a tenant: nil members keep their
// value.
type TenantChange struct {
	Name   *string
	Policy *Policy
}

// ChangeTenant applies a partial update to a tenant, atomically: the change
// is applied to the tenant as it is under its lock, so concurrent changes of
// different members are never lost. Codes: input.invalid, policy.invalid,
// tenant.not_found.
func (e *Engine) ChangeTenant(ctx context.Context, id string, ch TenantChange) (*Tenant, error) {
	if err := checkID("tenant id", id); err != nil {
		return nil, err
	}
	k := store.TenantKey(id)
	var out Tenant
	err := e.st.Update([]store.Key{k}, func(tx *store.Tx) error {
		if err := tx.Get(k, &out); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeTenantNotFound, KindNotFound, "no tenant %q", id)
		} else if err != nil {
			return err
		}
		if ch.Name != nil {
			out.Name = *ch.Name
		}
		if ch.Policy != nil {
			out.Policy = *ch.Policy
		}
		if err := e.checkTenant(&out); err != nil {
			return err
		}
		out.UpdatedAt = e.now()
		if err := tx.Put(k, out); err != nil {
			return err
		}
		return e.audit(tx, id, "", "tenant.updated", "", actorOf(ctx), nil)
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &out, nil
}

// GetTenant returns a tenant. Codes: input.invalid, tenant.not_found.
func (e *Engine) GetTenant(ctx context.Context, id string) (*Tenant, error) {
	return e.tenant(id)
}

// ListTenants returns every tenant, by id.
func (e *Engine) ListTenants(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	err := e.st.Scan(store.Prefix(store.KindTenant), func(k store.Key, v []byte) error {
		var t Tenant
		if err := store.Unmarshal(v, &t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, storeError(err)
}

func (e *Engine) checkUser(u *User) error {
	if err := checkID("user id", u.ID); err != nil {
		return err
	}
	if err := checkUPN(u.UPN); err != nil {
		return err
	}
	if err := checkText("display name", u.DisplayName, MaxNameLength); err != nil {
		return err
	}
	if len(u.Groups) > 256 {
		return invalid("a user has at most 256 groups")
	}
	for _, g := range u.Groups {
		if g == "" {
			return invalid("empty group name")
		}
		if err := checkText("group", g, MaxNameLength); err != nil {
			return err
		}
	}
	return nil
}

// CreateUser adds a user to a tenant. Codes: input.invalid,
// tenant.not_found, user.exists, user.upn_taken.
func (e *Engine) CreateUser(ctx context.Context, tenant string, u User) (*User, error) {
	u.Tenant = tenant
	if err := e.checkUser(&u); err != nil {
		return nil, err
	}
	if _, err := e.tenant(tenant); err != nil {
		return nil, err
	}
	now := e.now()
	u.CreatedAt, u.UpdatedAt, u.FraudReports = now, now, 0
	uk, nk := store.UserKey(tenant, u.ID), upnKey(tenant, u.UPN)
	err := e.st.Update([]store.Key{uk, nk}, func(tx *store.Tx) error {
		if err := tx.Create(uk, u); errors.Is(err, store.ErrExists) {
			return errorf(CodeUserExists, KindConflict, "user %q exists", u.ID)
		} else if err != nil {
			return err
		}
		if err := tx.Create(nk, u.ID); errors.Is(err, store.ErrExists) {
			return errorf(CodeUPNTaken, KindConflict, "another user has upn %q", u.UPN)
		} else if err != nil {
			return err
		}
		return e.audit(tx, tenant, u.ID, "user.created", "", actorOf(ctx), map[string]string{"upn": u.UPN})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &u, nil
}

// UpdateUser replaces a user's UPN, display name, groups and MFA push flag.
// Codes: input.invalid, user.not_found, user.upn_taken.
func (e *Engine) UpdateUser(ctx context.Context, tenant string, u User) (*User, error) {
	return e.ChangeUser(ctx, tenant, u.ID, UserChange{UPN: &u.UPN, DisplayName: &u.DisplayName, Groups: &u.Groups, MFAPush: &u.MFAPush})
}

// UserChange is a partial update of a user: nil members keep their value.
type UserChange struct {
	UPN         *string
	DisplayName *string
	Groups      *[]string
	MFAPush     *bool
}

// ChangeUser applies a partial update to a user, atomically: the change is
// applied to the user as it is under its lock (and under the locks of its
// old and new UPN), so concurrent changes of different members are never
// lost. Codes: input.invalid, user.not_found, user.upn_taken.
func (e *Engine) ChangeUser(ctx context.Context, tenant, id string, ch UserChange) (*User, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	uk := store.UserKey(tenant, id)
	for {
		cur, err := e.user(tenant, id)
		if err != nil {
			return nil, err
		}
		newUPN := cur.UPN
		if ch.UPN != nil {
			newUPN = *ch.UPN
		}
		oldName, newName := upnKey(tenant, cur.UPN), upnKey(tenant, newUPN)
		var out User
		retry := false
		err = e.st.Update([]store.Key{uk, oldName, newName}, func(tx *store.Tx) error {
			if err := tx.Get(uk, &out); errors.Is(err, store.ErrNotFound) {
				return errorf(CodeUserNotFound, KindNotFound, "no user %q", id)
			} else if err != nil {
				return err
			}
			if out.UPN != cur.UPN {
				retry = true // renamed meanwhile: lock the new name
				return nil
			}
			if ch.UPN != nil {
				out.UPN = *ch.UPN
			}
			if ch.DisplayName != nil {
				out.DisplayName = *ch.DisplayName
			}
			if ch.Groups != nil {
				out.Groups = *ch.Groups
			}
			if ch.MFAPush != nil {
				out.MFAPush = *ch.MFAPush
			}
			if err := e.checkUser(&out); err != nil {
				return err
			}
			if string(oldName) != string(newName) {
				if err := tx.Create(newName, id); errors.Is(err, store.ErrExists) {
					return errorf(CodeUPNTaken, KindConflict, "another user has upn %q", out.UPN)
				} else if err != nil {
					return err
				}
				if err := tx.Delete(oldName); err != nil {
					return err
				}
			}
			out.UpdatedAt = e.now()
			if err := tx.Put(uk, out); err != nil {
				return err
			}
			return e.audit(tx, tenant, id, "user.updated", "", actorOf(ctx), map[string]string{"upn": out.UPN})
		})
		if err != nil {
			return nil, storeError(err)
		}
		if !retry {
			return &out, nil
		}
	}
}

func (e *Engine) user(tenant, id string) (*User, error) {
	if err := checkID("user id", id); err != nil {
		return nil, err
	}
	var u User
	if err := e.st.Get(store.UserKey(tenant, id), &u); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeUserNotFound, KindNotFound, "no user %q in tenant %q", id, tenant)
		}
		return nil, storeError(err)
	}
	return &u, nil
}

// GetUser returns a user. Codes: input.invalid, user.not_found.
func (e *Engine) GetUser(ctx context.Context, tenant, id string) (*User, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	return e.user(tenant, id)
}

// UserByUPN finds a user by UPN, ignoring case. Codes: input.invalid,
// user.not_found.
func (e *Engine) UserByUPN(ctx context.Context, tenant, upn string) (*User, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkUPN(upn); err != nil {
		return nil, err
	}
	var id string
	if err := e.st.Get(upnKey(tenant, upn), &id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeUserNotFound, KindNotFound, "no user %q in tenant %q", upn, tenant)
		}
		return nil, storeError(err)
	}
	return e.user(tenant, id)
}

// ListUsers returns the users of a tenant, by id. Codes: input.invalid,
// tenant.not_found.
func (e *Engine) ListUsers(ctx context.Context, tenant string) ([]User, error) {
	if _, err := e.tenant(tenant); err != nil {
		return nil, err
	}
	var out []User
	err := e.st.Scan(store.Prefix(store.KindUser, tenant), func(k store.Key, v []byte) error {
		var u User
		if err := store.Unmarshal(v, &u); err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	return out, storeError(err)
}

// DeleteUser deletes a user with every credential they hold (their device
// accounts too) and their sign-in state. Codes: input.invalid,
// user.not_found.
func (e *Engine) DeleteUser(ctx context.Context, tenant, id string) error {
	if err := checkID("tenant", tenant); err != nil {
		return err
	}
	for {
		u, err := e.user(tenant, id)
		if err != nil {
			return err
		}
		creds, err := e.userCredentials(tenant, id)
		if err != nil {
			return err
		}
		locks := []store.Key{store.UserKey(tenant, id), upnKey(tenant, u.UPN), store.SignInStateKey(tenant, id)}
		for _, c := range creds {
			locks = append(locks, store.CredentialKey(c.ID), store.DeviceKey(c.Device))
		}
		retry := false
		err = e.st.Update(locks, func(tx *store.Tx) error {
			var now User
			if err := tx.Get(store.UserKey(tenant, id), &now); errors.Is(err, store.ErrNotFound) {
				return errorf(CodeUserNotFound, KindNotFound, "no user %q", id)
			} else if err != nil {
				return err
			}
			again, err := e.userCredentialIDs(tx, tenant, id)
			if err != nil {
				return err
			}
			if now.UPN != u.UPN || !sameIDs(again, creds) {
				retry = true
				return nil
			}
			for _, c := range creds {
				if err := e.deleteCredential(tx, &c); err != nil {
					return err
				}
			}
			for _, k := range locks[:3] {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return e.audit(tx, tenant, id, "user.deleted", "", actorOf(ctx), map[string]string{"credentials": strconv.Itoa(len(creds))})
		})
		if err != nil {
			return storeError(err)
		}
		if !retry {
			return nil
		}
	}
}

func sameIDs(ids []string, creds []Credential) bool {
	if len(ids) != len(creds) {
		return false
	}
	for i := range ids {
		if ids[i] != creds[i].ID {
			return false
		}
	}
	return true
}

// userCredentialIDs lists a user's credential ids from the index.
func (e *Engine) userCredentialIDs(r store.Reader, tenant, user string) ([]string, error) {
	var ids []string
	err := r.Scan(store.Prefix(store.KindUserCredential, tenant, user), func(k store.Key, _ []byte) error {
		ids = append(ids, store.LastComponent(k))
		return nil
	})
	return ids, err
}

func (e *Engine) userCredentials(tenant, user string) ([]Credential, error) {
	ids, err := e.userCredentialIDs(e.st, tenant, user)
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]Credential, 0, len(ids))
	for _, id := range ids {
		var c Credential
		if err := e.st.Get(store.CredentialKey(id), &c); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			}
			return nil, storeError(err)
		}
		out = append(out, c)
	}
	return out, nil
}

// deleteCredential removes a credential, its index entry and evidence,
// and its account on the device (the device itself when no account is
// left). The key id stays registered: a key is registered once, ever.
// The caller holds the credential's and the device's locks.
func (e *Engine) deleteCredential(tx *store.Tx, c *Credential) error {
	for _, k := range []store.Key{store.CredentialKey(c.ID), store.UserCredentialKey(c.Tenant, c.User, c.ID), store.EvidenceKey(c.ID), store.RequestCounterKey(c.ID)} {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	dk := store.DeviceKey(c.Device)
	var d device
	if err := tx.Get(dk, &d); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	d.Accounts = slices.DeleteFunc(d.Accounts, func(a account) bool { return a.Credential == c.ID })
	if !slices.ContainsFunc(d.Accounts, func(a account) bool { return a.Tenant == c.Tenant }) {
		if err := tx.Delete(store.TenantDeviceKey(c.Tenant, c.Device)); err != nil {
			return err
		}
	}
	if len(d.Accounts) == 0 {
		return tx.Delete(dk)
	}
	return tx.Put(dk, d)
}

// ListCredentials returns the credentials of a user (all users when user
// is empty) of a tenant. Codes: input.invalid, tenant.not_found,
// user.not_found.
func (e *Engine) ListCredentials(ctx context.Context, tenant, user string) ([]Credential, error) {
	if _, err := e.tenant(tenant); err != nil {
		return nil, err
	}
	if user != "" {
		if _, err := e.user(tenant, user); err != nil {
			return nil, err
		}
		return e.userCredentials(tenant, user)
	}
	var ids []string
	err := e.st.Scan(store.Prefix(store.KindUserCredential, tenant), func(k store.Key, _ []byte) error {
		ids = append(ids, store.LastComponent(k))
		return nil
	})
	if err != nil {
		return nil, storeError(err)
	}
	var out []Credential
	for _, id := range ids {
		var c Credential
		if err := e.st.Get(store.CredentialKey(id), &c); err == nil {
			out = append(out, c)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, storeError(err)
		}
	}
	return out, nil
}

// credential reads a credential of tenant (CodeCredentialNotFound when
// absent or in another tenant).
func (e *Engine) credential(tenant, id string) (*Credential, error) {
	if err := checkID("credential", id); err != nil {
		return nil, err
	}
	var c Credential
	if err := e.st.Get(store.CredentialKey(id), &c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeCredentialNotFound, KindNotFound, "no credential %q", id)
		}
		return nil, storeError(err)
	}
	if tenant != "" && c.Tenant != tenant {
		return nil, errorf(CodeCredentialNotFound, KindNotFound, "no credential %q in tenant %q", id, tenant)
	}
	return &c, nil
}

// GetCredential returns a credential of a tenant. Codes: input.invalid,
// credential.not_found.
func (e *Engine) GetCredential(ctx context.Context, tenant, id string) (*Credential, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	return e.credential(tenant, id)
}

// SetCredentialDisabled disables (or enables again) a credential: a
// disabled credential gets no sign-ins and its answers are refused. Codes:
// input.invalid, credential.not_found.
func (e *Engine) SetCredentialDisabled(ctx context.Context, tenant, id string, disabled bool) (*Credential, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("credential", id); err != nil {
		return nil, err
	}
	k := store.CredentialKey(id)
	var out Credential
	err := e.st.Update([]store.Key{k}, func(tx *store.Tx) error {
		if err := tx.Get(k, &out); errors.Is(err, store.ErrNotFound) || err == nil && out.Tenant != tenant {
			return errorf(CodeCredentialNotFound, KindNotFound, "no credential %q in tenant %q", id, tenant)
		} else if err != nil {
			return err
		}
		out.Disabled = disabled
		if err := tx.Put(k, out); err != nil {
			return err
		}
		event := "credential.enabled"
		if disabled {
			event = "credential.disabled"
		}
		return e.audit(tx, tenant, out.User, event, "", actorOf(ctx), map[string]string{"credential": id})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &out, nil
}

// DeleteCredential deletes a credential (its key id stays registered, so
// the same key can never enroll again). Codes: input.invalid,
// credential.not_found.
func (e *Engine) DeleteCredential(ctx context.Context, tenant, id string) error {
	c, err := e.GetCredential(ctx, tenant, id)
	if err != nil {
		return err
	}
	locks := []store.Key{store.CredentialKey(id), store.DeviceKey(c.Device), store.UserKey(tenant, c.User)}
	err = e.st.Update(locks, func(tx *store.Tx) error {
		var now Credential
		if err := tx.Get(locks[0], &now); errors.Is(err, store.ErrNotFound) {
			return errorf(CodeCredentialNotFound, KindNotFound, "no credential %q", id)
		} else if err != nil {
			return err
		}
		if err := e.deleteCredential(tx, &now); err != nil {
			return err
		}
		return e.audit(tx, tenant, now.User, "credential.deleted", "", actorOf(ctx), map[string]string{"credential": id, "device": now.Device})
	})
	return storeError(err)
}

// tenantDeviceView builds a tenant's view of a device.
func (e *Engine) tenantDeviceView(tenant string, d *device, td tenantDevice) Device {
	out := Device{ID: d.ID, Tenant: tenant, Platform: d.Platform, Disabled: td.Disabled, CreatedAt: d.CreatedAt, Users: []string{}, Creds: []string{}}
	for _, a := range d.Accounts {
		if a.Tenant == tenant {
			out.Users = append(out.Users, a.User)
			out.Creds = append(out.Creds, a.Credential)
		}
	}
	return out
}

// deviceOf reads a device and its state in tenant (CodeDeviceNotFound when
// the device is not registered in tenant).
func (e *Engine) deviceOf(r store.Reader, tenant, id string) (*device, tenantDevice, error) {
	var td tenantDevice
	if err := r.Get(store.TenantDeviceKey(tenant, id), &td); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, td, errorf(CodeDeviceNotFound, KindNotFound, "no device %q in tenant %q", id, tenant)
		}
		return nil, td, err
	}
	var d device
	if err := r.Get(store.DeviceKey(id), &d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, td, errorf(CodeDeviceNotFound, KindNotFound, "no device %q", id)
		}
		return nil, td, err
	}
	return &d, td, nil
}

// GetDevice returns a device as tenant sees it. Codes: input.invalid,
// device.not_found.
func (e *Engine) GetDevice(ctx context.Context, tenant, id string) (*Device, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("device", id); err != nil {
		return nil, err
	}
	d, td, err := e.deviceOf(e.st, tenant, id)
	if err != nil {
		return nil, storeError(err)
	}
	v := e.tenantDeviceView(tenant, d, td)
	return &v, nil
}

// ListDevices returns the devices registered in a tenant. Codes:
// input.invalid, tenant.not_found.
func (e *Engine) ListDevices(ctx context.Context, tenant string) ([]Device, error) {
	if _, err := e.tenant(tenant); err != nil {
		return nil, err
	}
	var ids []string
	err := e.st.Scan(store.Prefix(store.KindTenantDevice, tenant), func(k store.Key, _ []byte) error {
		ids = append(ids, store.LastComponent(k))
		return nil
	})
	if err != nil {
		return nil, storeError(err)
	}
	var out []Device
	for _, id := range ids {
		d, td, err := e.deviceOf(e.st, tenant, id)
		if CodeOf(err) == CodeDeviceNotFound {
			continue
		} else if err != nil {
			return nil, storeError(err)
		}
		out = append(out, e.tenantDeviceView(tenant, d, td))
	}
	return out, nil
}

// SetDeviceDisabled disables (or enables again) a device in a tenant: its
// credentials in the tenant get no sign-ins and no new enrollment may use
// it. Codes: input.invalid, device.not_found.
func (e *Engine) SetDeviceDisabled(ctx context.Context, tenant, id string, disabled bool) (*Device, error) {
	if err := checkID("tenant", tenant); err != nil {
		return nil, err
	}
	if err := checkID("device", id); err != nil {
		return nil, err
	}
	var out Device
	err := e.st.Update([]store.Key{store.DeviceKey(id)}, func(tx *store.Tx) error {
		d, td, err := e.deviceOf(tx, tenant, id)
		if err != nil {
			return err
		}
		td.Disabled = disabled
		if err := tx.Put(store.TenantDeviceKey(tenant, id), td); err != nil {
			return err
		}
		out = e.tenantDeviceView(tenant, d, td)
		event := "device.enabled"
		if disabled {
			event = "device.disabled"
		}
		return e.audit(tx, tenant, "", event, "", actorOf(ctx), map[string]string{"device": id})
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &out, nil
}

// DeleteDevice removes a device from a tenant with every credential of
// the tenant on it. Codes: input.invalid, device.not_found.
func (e *Engine) DeleteDevice(ctx context.Context, tenant, id string) error {
	for {
		d, err := e.GetDevice(ctx, tenant, id)
		if err != nil {
			return err
		}
		locks := []store.Key{store.DeviceKey(id)}
		for i, c := range d.Creds {
			locks = append(locks, store.CredentialKey(c), store.UserKey(tenant, d.Users[i]))
		}
		retry := false
		err = e.st.Update(locks, func(tx *store.Tx) error {
			now, _, err := e.deviceOf(tx, tenant, id)
			if err != nil {
				return err
			}
			v := e.tenantDeviceView(tenant, now, tenantDevice{})
			if !slices.Equal(v.Creds, d.Creds) {
				retry = true // enrolled or deleted meanwhile: lock the new set
				return nil
			}
			for _, cid := range v.Creds {
				var c Credential
				if err := tx.Get(store.CredentialKey(cid), &c); errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				if err := e.deleteCredential(tx, &c); err != nil {
					return err
				}
			}
			if err := tx.Delete(store.TenantDeviceKey(tenant, id)); err != nil {
				return err
			}
			return e.audit(tx, tenant, "", "device.deleted", "", actorOf(ctx), map[string]string{"device": id, "credentials": strings.Join(v.Creds, ",")})
		})
		if err != nil {
			return storeError(err)
		}
		if !retry {
			return nil
		}
	}
}

// AuditQuery selects audit records; see store.AuditQuery.
type AuditQuery = store.AuditQuery

// AuditRecord is one audit entry; see store.AuditRecord.
type AuditRecord = store.AuditRecord

// AuditPage is a page of audit records; see store.AuditPage.
type AuditPage = store.AuditPage

// Audit returns audit records of a tenant (optionally one user) in a time
// range, oldest first, a page at a time. Codes: input.invalid.
func (e *Engine) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if err := checkID("tenant", q.Tenant); err != nil {
		return AuditPage{}, err
	}
	if q.User != "" {
		if err := checkID("user", q.User); err != nil {
			return AuditPage{}, err
		}
	}
	page, err := e.st.Audit(q)
	if errors.Is(err, store.ErrKey) {
		return AuditPage{}, invalid("bad audit cursor")
	}
	if page.Records == nil {
		page.Records = []AuditRecord{}
	}
	return page, storeError(err)
}
