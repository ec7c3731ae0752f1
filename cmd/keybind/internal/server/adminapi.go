package server

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/keybind/keybind/engine"
	"github.com/valyala/fasthttp"
)

// The administrators' routes. Every path names its tenant: a tenant admin
// key acts on its own tenant only (any other is answered as an absent
// one); the operator acts on any tenant, and alone creates tenants and
// exports the store.

// TenantRequest is the body of POST /v1/tenants and PATCH
// /v1/tenants/{tenant} (where absent members keep their value).
type TenantRequest struct {
	ID     string         `json:"id,omitempty"`
	Name   *string        `json:"name,omitempty"`
	Policy *engine.Policy `json:"policy,omitempty"`
}

// TenantPolicy is the answer of the policy routes: the policy as stored
// and with every default filled in.
type TenantPolicy struct {
	Tenant    string        `json:"tenant"`
	Policy    engine.Policy `json:"policy"`
	Effective engine.Policy `json:"effective"`
}

// UserRequest is the body of POST …/users (id optional: one is made) and
// PATCH …/users/{user} (absent members keep their value).
type UserRequest struct {
	ID          string    `json:"id,omitempty"`
	UPN         *string   `json:"upn,omitempty"`
	DisplayName *string   `json:"display_name,omitempty"`
	Groups      *[]string `json:"groups,omitempty"`
	MFAPush     *bool     `json:"mfa_push,omitempty"`
}

// Group is a group of a tenant with its members (user ids).
type Group struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// APIKeyRequest is the body of POST …/keys.
type APIKeyRequest struct {
	Role string `json:"role"`
	Name string `json:"name,omitempty"`
}

// NewAPIKey is the answer of POST …/keys: the record and the key, shown
// this once.
type NewAPIKey struct {
	engine.APIKey
	Key string `json:"key"`
}

func (a *engineAPI) registerAdmin() {
	h := func(method, path, name string, roles []Role, fn Handler) {
		a.handle(Route{Method: method, Path: path, Name: name, Roles: roles, Handler: fn})
	}
	h("GET", "/v1/tenants", "tenant.list", adminRoles, a.listTenants)
	h("POST", "/v1/tenants", "tenant.create", operatorRoles, a.createTenant)
	h("GET", "/v1/tenants/{tenant}", "tenant.get", adminRoles, a.getTenant)
	h("PATCH", "/v1/tenants/{tenant}", "tenant.update", adminRoles, a.updateTenant)
	h("GET", "/v1/tenants/{tenant}/policy", "policy.get", adminRoles, a.getPolicy)
	h("PUT", "/v1/tenants/{tenant}/policy", "policy.set", adminRoles, a.setPolicy)

	h("GET", "/v1/tenants/{tenant}/users", "user.list", adminRoles, a.listUsers)
	h("POST", "/v1/tenants/{tenant}/users", "user.create", adminRoles, a.createUser)
	h("GET", "/v1/tenants/{tenant}/users/{user}", "user.get", adminRoles, a.getUser)
	h("PATCH", "/v1/tenants/{tenant}/users/{user}", "user.update", adminRoles, a.updateUser)
	h("DELETE", "/v1/tenants/{tenant}/users/{user}", "user.delete", adminRoles, a.deleteUser)
	h("GET", "/v1/tenants/{tenant}/groups", "group.list", adminRoles, a.listGroups)

	h("GET", "/v1/tenants/{tenant}/devices", "device.list", adminRoles, a.listDevices)
	h("GET", "/v1/tenants/{tenant}/devices/{device}", "device.get", adminRoles, a.getDevice)
	h("POST", "/v1/tenants/{tenant}/devices/{device}/disable", "device.disable", adminRoles, a.setDeviceDisabled(true))
	h("POST", "/v1/tenants/{tenant}/devices/{device}/enable", "device.enable", adminRoles, a.setDeviceDisabled(false))
	h("DELETE", "/v1/tenants/{tenant}/devices/{device}", "device.delete", adminRoles, a.deleteDevice)

	h("GET", "/v1/tenants/{tenant}/credentials", "credential.list", adminRoles, a.listCredentials)
	h("GET", "/v1/tenants/{tenant}/credentials/{credential}", "credential.get", adminRoles, a.getCredential)
	h("POST", "/v1/tenants/{tenant}/credentials/{credential}/disable", "credential.disable", adminRoles, a.setCredentialDisabled(true))
	h("POST", "/v1/tenants/{tenant}/credentials/{credential}/enable", "credential.enable", adminRoles, a.setCredentialDisabled(false))
	h("POST", "/v1/tenants/{tenant}/credentials/{credential}/reverify", "credential.reverify", adminRoles, a.reverifyCredential)
	h("DELETE", "/v1/tenants/{tenant}/credentials/{credential}", "credential.delete", adminRoles, a.deleteCredential)

	h("GET", "/v1/tenants/{tenant}/keys", "key.list", adminRoles, a.listKeys)
	h("POST", "/v1/tenants/{tenant}/keys", "key.create", adminRoles, a.createKey)
	h("DELETE", "/v1/tenants/{tenant}/keys/{key}", "key.revoke", adminRoles, a.revokeKey)

	h("GET", "/v1/tenants/{tenant}/audit", "audit.query", adminRoles, a.audit)
	h("GET", "/v1/export", "export", operatorRoles, a.export)
}

// adminTenant checks the query and body rules of a route and returns the
// tenant the caller may act on.
func adminTenant(c *Ctx, hasBody bool, query ...string) (string, error) {
	if err := checkQuery(c, query...); err != nil {
		return "", err
	}
	if !hasBody {
		if err := noBody(c); err != nil {
			return "", err
		}
	}
	return tenantOf(c)
}

func (a *engineAPI) listTenants(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	if c.Principal.Role != RoleOperator {
		t, err := a.e.GetTenant(c.Context(), c.Principal.Tenant)
		if engine.CodeOf(err) == engine.CodeTenantNotFound {
			return ok(c, map[string]any{"tenants": []engine.Tenant{}})
		} else if err != nil {
			return err
		}
		return ok(c, map[string]any{"tenants": []engine.Tenant{*t}})
	}
	list, err := a.e.ListTenants(c.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []engine.Tenant{}
	}
	return ok(c, map[string]any{"tenants": list})
}

func (a *engineAPI) createTenant(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	var req TenantRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	t := engine.Tenant{ID: req.ID}
	if req.Name != nil {
		t.Name = *req.Name
	}
	if req.Policy != nil {
		t.Policy = *req.Policy
	}
	out, err := a.e.CreateTenant(a.actorCtx(c), t)
	if err != nil {
		return err
	}
	return created(c, out)
}

func (a *engineAPI) getTenant(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	t, err := a.e.GetTenant(c.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(c, t)
}

func (a *engineAPI) updateTenant(c *Ctx) error {
	tenant, err := adminTenant(c, true)
	if err != nil {
		return err
	}
	var req TenantRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if req.ID != "" && req.ID != tenant {
		return Problemf(fasthttp.StatusBadRequest, string(engine.CodeInvalid), "a tenant's id cannot change")
	}
	out, err := a.e.ChangeTenant(a.actorCtx(c), tenant, engine.TenantChange{Name: req.Name, Policy: req.Policy})
	if err != nil {
		return err
	}
	return ok(c, out)
}

func policyOf(t *engine.Tenant) TenantPolicy {
	return TenantPolicy{Tenant: t.ID, Policy: t.Policy, Effective: t.Policy.Effective()}
}

func (a *engineAPI) getPolicy(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	t, err := a.e.GetTenant(c.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(c, policyOf(t))
}

func (a *engineAPI) setPolicy(c *Ctx) error {
	tenant, err := adminTenant(c, true)
	if err != nil {
		return err
	}
	var p engine.Policy
	if err := decodeBody(c, &p, false); err != nil {
		return err
	}
	out, err := a.e.ChangeTenant(a.actorCtx(c), tenant, engine.TenantChange{Policy: &p})
	if err != nil {
		return err
	}
	return ok(c, policyOf(out))
}

func (a *engineAPI) listUsers(c *Ctx) error {
	tenant, err := adminTenant(c, false, "upn", "group")
	if err != nil {
		return err
	}
	if upn := c.query("upn"); upn != "" {
		u, err := a.e.UserByUPN(c.Context(), tenant, upn)
		if engine.CodeOf(err) == engine.CodeUserNotFound {
			if _, err := a.e.GetTenant(c.Context(), tenant); err != nil {
				return err
			}
			return ok(c, map[string]any{"users": []engine.User{}})
		} else if err != nil {
			return err
		}
		return ok(c, map[string]any{"users": []engine.User{*u}})
	}
	list, err := a.e.ListUsers(c.Context(), tenant)
	if err != nil {
		return err
	}
	out := []engine.User{}
	group := c.query("group")
	for _, u := range list {
		if group == "" || slices.Contains(u.Groups, group) {
			out = append(out, u)
		}
	}
	return ok(c, map[string]any{"users": out})
}

func (a *engineAPI) createUser(c *Ctx) error {
	tenant, err := adminTenant(c, true)
	if err != nil {
		return err
	}
	var req UserRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	u := engine.User{ID: req.ID}
	if u.ID == "" {
		var b [12]byte
		rand.Read(b[:])
		u.ID = "u_" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	if req.UPN != nil {
		u.UPN = *req.UPN
	}
	if req.DisplayName != nil {
		u.DisplayName = *req.DisplayName
	}
	if req.Groups != nil {
		u.Groups = *req.Groups
	}
	if req.MFAPush != nil {
		u.MFAPush = *req.MFAPush
	}
	out, err := a.e.CreateUser(a.actorCtx(c), tenant, u)
	if err != nil {
		return err
	}
	return created(c, out)
}

func (a *engineAPI) getUser(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	u, err := a.e.GetUser(c.Context(), tenant, c.Param("user"))
	if err != nil {
		return err
	}
	return ok(c, u)
}

func (a *engineAPI) updateUser(c *Ctx) error {
	tenant, err := adminTenant(c, true)
	if err != nil {
		return err
	}
	var req UserRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	id := c.Param("user")
	if req.ID != "" && req.ID != id {
		return Problemf(fasthttp.StatusBadRequest, string(engine.CodeInvalid), "a user's id cannot change")
	}
	out, err := a.e.ChangeUser(a.actorCtx(c), tenant, id, engine.UserChange{UPN: req.UPN, DisplayName: req.DisplayName, Groups: req.Groups, MFAPush: req.MFAPush})
	if err != nil {
		return err
	}
	return ok(c, out)
}

func (a *engineAPI) deleteUser(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	id := c.Param("user")
	creds, err := a.e.ListCredentials(c.Context(), tenant, id)
	if err != nil {
		return err
	}
	if err := a.e.DeleteUser(a.actorCtx(c), tenant, id); err != nil {
		return err
	}
	for _, cr := range creds {
		a.invalidate(cr.ID)
	}
	return noContent(c)
}

func (a *engineAPI) listGroups(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	users, err := a.e.ListUsers(c.Context(), tenant)
	if err != nil {
		return err
	}
	members := map[string][]string{}
	for _, u := range users {
		for _, g := range u.Groups {
			members[g] = append(members[g], u.ID)
		}
	}
	out := make([]Group, 0, len(members))
	for name, m := range members {
		out = append(out, Group{Name: name, Members: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return ok(c, map[string]any{"groups": out})
}

func (a *engineAPI) listDevices(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	list, err := a.e.ListDevices(c.Context(), tenant)
	if err != nil {
		return err
	}
	if list == nil {
		list = []engine.Device{}
	}
	return ok(c, map[string]any{"devices": list})
}

func (a *engineAPI) getDevice(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	d, err := a.e.GetDevice(c.Context(), tenant, c.Param("device"))
	if err != nil {
		return err
	}
	return ok(c, d)
}

func (a *engineAPI) setDeviceDisabled(disabled bool) Handler {
	return func(c *Ctx) error {
		tenant, err := adminTenant(c, false)
		if err != nil {
			return err
		}
		d, err := a.e.SetDeviceDisabled(a.actorCtx(c), tenant, c.Param("device"), disabled)
		if err != nil {
			return err
		}
		a.invalidate(d.Creds...)
		return ok(c, d)
	}
}

func (a *engineAPI) deleteDevice(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	d, err := a.e.GetDevice(c.Context(), tenant, c.Param("device"))
	if err != nil {
		return err
	}
	if err := a.e.DeleteDevice(a.actorCtx(c), tenant, d.ID); err != nil {
		return err
	}
	a.invalidate(d.Creds...)
	return noContent(c)
}

func (a *engineAPI) listCredentials(c *Ctx) error {
	tenant, err := adminTenant(c, false, "user")
	if err != nil {
		return err
	}
	list, err := a.e.ListCredentials(c.Context(), tenant, c.query("user"))
	if err != nil {
		return err
	}
	out := make([]credentialView, len(list))
	for i := range list {
		out[i] = viewCredential(&list[i])
	}
	return ok(c, map[string]any{"credentials": out})
}

func (a *engineAPI) getCredential(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	cr, err := a.e.GetCredential(c.Context(), tenant, c.Param("credential"))
	if err != nil {
		return err
	}
	return ok(c, viewCredential(cr))
}

func (a *engineAPI) setCredentialDisabled(disabled bool) Handler {
	return func(c *Ctx) error {
		tenant, err := adminTenant(c, false)
		if err != nil {
			return err
		}
		cr, err := a.e.SetCredentialDisabled(a.actorCtx(c), tenant, c.Param("credential"), disabled)
		if err != nil {
			return err
		}
		a.invalidate(cr.ID)
		return ok(c, viewCredential(cr))
	}
}

// Reverified is the answer of a re-verification: the verdict of the
// credential's stored evidence under the tenant's current policy.
type Reverified struct {
	Credential string         `json:"credential"`
	Valid      bool           `json:"valid"`
	Code       string         `json:"code,omitempty"`
	Detail     string         `json:"detail,omitempty"`
	Format     string         `json:"format,omitempty"`
	Trust      string         `json:"trust,omitempty"`
	Root       string         `json:"root,omitempty"`
	Facts      map[string]any `json:"facts,omitempty"`
}

// reverifyCredential verifies a credential's evidence again. A refusal of
// the evidence is the answer (200, valid false, its code), not an error of
// the request.
func (a *engineAPI) reverifyCredential(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	id := c.Param("credential")
	if _, err := a.e.GetCredential(c.Context(), tenant, id); err != nil {
		return err
	}
	v, err := a.e.ReverifyCredential(a.actorCtx(c), tenant, id)
	switch kind := engine.KindOf(err); {
	case err == nil:
		return ok(c, Reverified{Credential: id, Valid: true, Format: v.Format, Trust: string(v.Trust), Root: v.Root, Facts: v.Facts})
	case kind == engine.KindForbidden || kind == engine.KindInvalid:
		detail := err.Error()
		var ee *engine.Error
		if errors.As(err, &ee) {
			detail = ee.Reason
		}
		return ok(c, Reverified{Credential: id, Code: string(engine.CodeOf(err)), Detail: detail})
	default:
		return err
	}
}

func (a *engineAPI) deleteCredential(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	id := c.Param("credential")
	if err := a.e.DeleteCredential(a.actorCtx(c), tenant, id); err != nil {
		return err
	}
	a.invalidate(id)
	return noContent(c)
}

func (a *engineAPI) listKeys(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	list, err := a.e.ListAPIKeys(c.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"keys": list})
}

func (a *engineAPI) createKey(c *Ctx) error {
	tenant, err := adminTenant(c, true)
	if err != nil {
		return err
	}
	var req APIKeyRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	rec, key, err := a.e.CreateAPIKey(a.actorCtx(c), tenant, req.Role, req.Name, actor(c))
	if err != nil {
		return err
	}
	return created(c, NewAPIKey{APIKey: *rec, Key: key})
}

func (a *engineAPI) revokeKey(c *Ctx) error {
	tenant, err := adminTenant(c, false)
	if err != nil {
		return err
	}
	rec, err := a.e.RevokeAPIKey(a.actorCtx(c), tenant, c.Param("key"), actor(c))
	if err != nil {
		return err
	}
	if a.keys != nil {
		a.keys.Forget(rec.ID)
	}
	return noContent(c)
}

// audit answers a page of the tenant's audit log: ?user= (one user),
// ?since= and ?until= (RFC 3339; since <= time < until), ?limit= (1 to
// 1000, default 100), ?cursor= (the previous page's next).
func (a *engineAPI) audit(c *Ctx) error {
	tenant, err := adminTenant(c, false, "user", "since", "until", "limit", "cursor")
	if err != nil {
		return err
	}
	since, err := queryTime(c, "since")
	if err != nil {
		return err
	}
	until, err := queryTime(c, "until")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return Problemf(fasthttp.StatusBadRequest, CodeQuery, "limit: 1 to 1000")
	}
	page, err := a.e.Audit(c.Context(), engine.AuditQuery{Tenant: tenant, User: c.query("user"), From: since, To: until, Limit: limit, After: c.query("cursor")})
	if err != nil {
		return err
	}
	return ok(c, page)
}

// export streams a consistent snapshot of the store (the format of
// `keybind admin export`). The snapshot is written to a temporary file
// first, so that a slow client holds a file, not the store.
func (a *engineAPI) export(c *Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	f, err := os.CreateTemp("", "keybind-export-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // the open file stays readable
	w := bufio.NewWriterSize(f, 256<<10)
	n, err := a.st.Export(w)
	if err == nil {
		err = w.Flush()
	}
	var size int64
	if err == nil {
		size, err = f.Seek(0, 1)
	}
	if err == nil {
		_, err = f.Seek(0, 0)
	}
	if err != nil {
		f.Close()
		return engineProblem(storeErr(err))
	}
	c.Logger().Info("export", "records", n, "bytes", size, "by", actor(c))
	c.rc.SetStatusCode(fasthttp.StatusOK)
	c.rc.SetContentType("application/zstd")
	c.rc.Response.Header.Set("Cache-Control", "no-store")
	c.rc.Response.Header.Set("Content-Disposition", `attachment; filename="keybind-export.zst"`)
	c.rc.SetWriteDeadline(time.Now().Add(15 * time.Minute))
	c.rc.SetBodyStream(f, int(size)) // closed by fasthttp once sent
	return nil
}

// storeErr classifies an error of the store for the client.
func storeErr(err error) error {
	return &engine.Error{Code: engine.CodeStorage, Kind: engine.KindUnavailable, Reason: err.Error(), Err: err}
}
