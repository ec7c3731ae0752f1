package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keybind/keybind/engine"
)

// The auth server's calls (roles auth_server and admin); the tenant is the
// key's.

// SignInRequest starts a sign-in.
type SignInRequest struct {
	Username  string               `json:"username"`
	LoginHint string               `json:"login_hint,omitempty"`
	Context   engine.SignInContext `json:"context"`
}

// SignInStart is how the person signs in: federate, password or phone
// (with the attempt, the number to show and its expiry).
type SignInStart struct {
	engine.SignInStart
	PollIntervalSeconds int `json:"poll_interval_seconds,omitempty"`
}

// Outcome is an attempt's state; while pending, PollIntervalSeconds says
// when to ask again.
type Outcome struct {
	engine.Outcome
	PollIntervalSeconds int `json:"poll_interval_seconds,omitempty"`
}

// Enrollment is an open enrollment: the phone attests a new key over
// Challenge and sends it to ID.
type Enrollment struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	Challenge []byte    `json:"challenge"`
	ExpiresAt time.Time `json:"expires_at"`
}

// StartSignIn starts a sign-in (POST /v1/signins).
func (c *Client) StartSignIn(ctx context.Context, req SignInRequest) (*SignInStart, error) {
	var out SignInStart
	if err := c.Do(ctx, "POST", "/v1/signins", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SignInOutcome reads an attempt's outcome (GET /v1/signins/{attempt}).
// With wait > 0 it is a long poll: the server answers as soon as the
// attempt is no longer pending, or after wait (capped by the server) with
// the pending outcome.
func (c *Client) SignInOutcome(ctx context.Context, attempt string, wait time.Duration) (*Outcome, error) {
	path := "/v1/signins/" + esc(attempt)
	if wait > 0 {
		path += "?wait=" + strconv.Itoa(int((wait+time.Second-1)/time.Second))
	}
	var out Outcome
	if err := c.Do(ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelSignIn cancels a pending attempt: "use your password instead"
// (POST /v1/signins/{attempt}/cancel).
func (c *Client) CancelSignIn(ctx context.Context, attempt string) (*Outcome, error) {
	var out Outcome
	if err := c.Do(ctx, "POST", "/v1/signins/"+esc(attempt)+"/cancel", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartEnrollment opens an enrollment for a user the auth server has just
// authenticated, named by id or, when byUPN, by UPN (POST /v1/enrollments).
func (c *Client) StartEnrollment(ctx context.Context, user string, byUPN bool) (*Enrollment, error) {
	body := map[string]string{"user": user}
	if byUPN {
		body = map[string]string{"username": user}
	}
	var out Enrollment
	if err := c.Do(ctx, "POST", "/v1/enrollments", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// The enrolling device's calls: no API key (the enrollment id names the
// challenge).

// Credential is an enrolled credential as the API shows it.
type Credential struct {
	ID            string          `json:"id"`
	Tenant        string          `json:"tenant"`
	User          string          `json:"user"`
	Device        string          `json:"device"`
	Format        string          `json:"format"`
	Trust         string          `json:"trust"`
	Root          string          `json:"root,omitempty"`
	PublicKey     []byte          `json:"public_key"`
	KeyID         []byte          `json:"key_id"`
	AppID         string          `json:"app_id,omitempty"`
	Statement     string          `json:"statement,omitempty"`
	WebAuthnID    []byte          `json:"webauthn_id,omitempty"`
	COSEAlgorithm int64           `json:"cose_algorithm,omitempty"`
	Counter       uint32          `json:"counter,omitempty"`
	Facts         json.RawMessage `json:"facts,omitempty"`
	Disabled      bool            `json:"disabled"`
	CreatedAt     time.Time       `json:"created_at"`
	LastUsedAt    time.Time       `json:"last_used_at,omitzero"`
}

// Attest sends an enrollment's attestation (POST
// /v1/enrollments/{enrollment}/attestation): the format, its evidence
// parts (engine.Evidence) and the device id of a previous enrollment of the
// device ("" for a new device). It returns the new credential.
func (c *Client) Attest(ctx context.Context, enrollment, format string, evidence engine.Evidence, device string) (*Credential, error) {
	body := map[string]any{"format": format, "evidence": map[string][]byte(evidence)}
	if device != "" {
		body["device"] = device
	}
	var out Credential
	if err := c.Do(ctx, "POST", "/v1/enrollments/"+esc(enrollment)+"/attestation", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TPMActivationRequest is a PC's EK and new AK (see
// engine.TPMActivationRequest).
type TPMActivationRequest struct {
	EKCertificate []byte                 `json:"ek_certificate,omitempty"`
	EKIssuers     [][]byte               `json:"ek_issuers,omitempty"`
	EKPublic      []byte                 `json:"ek_public,omitempty"`
	AK            engine.TPMAKParameters `json:"ak"`
}

// StartTPMActivation sends a PC's EK and AK for an enrollment and returns
// the activation challenge (POST /v1/enrollments/{enrollment}/tpm/activation).
func (c *Client) StartTPMActivation(ctx context.Context, enrollment string, req TPMActivationRequest) (*engine.TPMActivation, error) {
	var out engine.TPMActivation
	if err := c.Do(ctx, "POST", "/v1/enrollments/"+esc(enrollment)+"/tpm/activation", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CompleteTPMActivation sends the secret the TPM recovered (POST
// /v1/enrollments/{enrollment}/tpm/activation/answer).
func (c *Client) CompleteTPMActivation(ctx context.Context, enrollment string, secret []byte) error {
	return c.Do(ctx, "POST", "/v1/enrollments/"+esc(enrollment)+"/tpm/activation/answer", map[string][]byte{"secret": secret}, nil)
}

// The administrators' calls (an admin key of the tenant, or the operator's
// key).

func tenantPath(tenant string, rest ...string) string {
	p := "/v1/tenants/" + esc(tenant)
	for _, r := range rest {
		p += "/" + esc(r)
	}
	return p
}

// CreateTenant creates a tenant (operator).
func (c *Client) CreateTenant(ctx context.Context, id, name string, policy engine.Policy) (*engine.Tenant, error) {
	var out engine.Tenant
	err := c.Do(ctx, "POST", "/v1/tenants", map[string]any{"id": id, "name": name, "policy": policy}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTenant reads a tenant.
func (c *Client) GetTenant(ctx context.Context, tenant string) (*engine.Tenant, error) {
	var out engine.Tenant
	if err := c.Do(ctx, "GET", tenantPath(tenant), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPolicy replaces a tenant's policy.
func (c *Client) SetPolicy(ctx context.Context, tenant string, policy engine.Policy) error {
	return c.Do(ctx, "PUT", tenantPath(tenant, "policy"), policy, nil)
}

// UserRequest creates or changes a user (nil members: unchanged, or the
// zero value at creation).
type UserRequest struct {
	ID          string    `json:"id,omitempty"`
	UPN         *string   `json:"upn,omitempty"`
	DisplayName *string   `json:"display_name,omitempty"`
	Groups      *[]string `json:"groups,omitempty"`
	MFAPush     *bool     `json:"mfa_push,omitempty"`
}

// CreateUser creates a user of a tenant.
func (c *Client) CreateUser(ctx context.Context, tenant string, u UserRequest) (*engine.User, error) {
	var out engine.User
	if err := c.Do(ctx, "POST", tenantPath(tenant, "users"), u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, tenant, user string, u UserRequest) (*engine.User, error) {
	var out engine.User
	if err := c.Do(ctx, "PATCH", tenantPath(tenant, "users", user), u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCredentials lists a tenant's credentials (of one user when user is
// not empty).
func (c *Client) ListCredentials(ctx context.Context, tenant, user string) ([]Credential, error) {
	path := tenantPath(tenant, "credentials")
	if user != "" {
		path += "?user=" + url.QueryEscape(user)
	}
	var out struct {
		Credentials []Credential `json:"credentials"`
	}
	if err := c.Do(ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	return out.Credentials, nil
}

// NewAPIKey is a created API key: its record and the key, shown once.
type NewAPIKey struct {
	engine.APIKey
	Key string `json:"key"`
}

// CreateKey creates an API key of a tenant with a role (auth_server,
// admin, verify).
func (c *Client) CreateKey(ctx context.Context, tenant, role, name string) (*NewAPIKey, error) {
	var out NewAPIKey
	if err := c.Do(ctx, "POST", tenantPath(tenant, "keys"), map[string]string{"role": role, "name": name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists a tenant's API keys (their records; never the keys).
func (c *Client) ListKeys(ctx context.Context, tenant string) ([]engine.APIKey, error) {
	var out struct {
		Keys []engine.APIKey `json:"keys"`
	}
	if err := c.Do(ctx, "GET", tenantPath(tenant, "keys"), nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey revokes an API key of a tenant.
func (c *Client) RevokeKey(ctx context.Context, tenant, id string) error {
	return c.Do(ctx, "DELETE", tenantPath(tenant, "keys", id), nil, nil)
}

// AuditQuery selects audit records: a user (or all), a time range
// (Since <= time < Until; zero: open), a page size and the cursor of the
// previous page.
type AuditQuery struct {
	User         string
	Since, Until time.Time
	Limit        int
	Cursor       string
}

// Audit reads a page of a tenant's audit log.
func (c *Client) Audit(ctx context.Context, tenant string, q AuditQuery) (*engine.AuditPage, error) {
	v := url.Values{}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	path := tenantPath(tenant, "audit")
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out engine.AuditPage
	if err := c.Do(ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Export streams a consistent snapshot of the server's store into w
// (operator; the format of `keybind admin export`) and returns the bytes
// written.
func (c *Client) Export(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(c.BaseURL, "/")+"/v1/export", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	hc := *c.http()
	hc.Timeout = 0 // an export takes as long as it takes; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, problemOf(resp, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("export cut short: %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}
