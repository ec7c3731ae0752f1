package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// The records below are the engine's data model. They are what its API
// returns (JSON field names are the HTTP form) and what the store keeps
// (CBOR, with the same field names).

// Tenant is an organisation with its phone sign-in policy.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Policy    Policy    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Number-matching modes.
const (
	// ModeType: the login page shows a 2-digit number and the person types
	// it on the phone; the phone never learns it (the default).
	ModeType = "type"
	// ModeChoose: the phone shows three numbers, one of them right.
	ModeChoose = "choose"
)

// Defaults and bounds of a Policy. A zero field means the default.
const (
	DefaultAttemptLifetime = 120 * time.Second
	MinAttemptLifetime     = 30 * time.Second
	MaxAttemptLifetime     = 10 * time.Minute
	DefaultMaxInstalls     = 5
	MaxMaxInstalls         = 100
	DefaultBackoffFree     = 2
	DefaultBackoffBase     = 30 * time.Second
	DefaultBackoffMax      = time.Hour
	// EnrollmentLifetime is how long an enrollment challenge can be used.
	EnrollmentLifetime = 10 * time.Minute
)

// Policy is a tenant's phone sign-in policy. Its zero value is the safe
// default: phone sign-in off, nobody targeted, no attestation format
// accepted, type mode, 120 s attempts, 5 installs per user.
type Policy struct {
	// Enabled turns phone sign-in on for the targeted users.
	Enabled bool   `json:"enabled"`
	Target  Target `json:"target"`
	// NumberMatching is ModeType (default) or ModeChoose.
	NumberMatching string `json:"number_matching,omitempty"`
	// AttemptLifetimeSeconds is how long a sign-in attempt can be answered
	// (default 120, between 30 and 600).
	AttemptLifetimeSeconds int `json:"attempt_lifetime_seconds,omitempty"`
	// MaxInstalls bounds a user's phone sign-in credentials (default 5).
	MaxInstalls int     `json:"max_installs,omitempty"`
	Backoff     Backoff `json:"backoff"`
	// Attestation says which formats can enroll and what each must prove.
	Attestation AttestationPolicy `json:"attestation"`
	Federation  Federation        `json:"federation"`
}

// Target says who phone sign-in is for: every user (AllUsers) or the
// members of Groups, minus the members of ExcludeGroups.
type Target struct {
	AllUsers      bool     `json:"all_users,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	ExcludeGroups []string `json:"exclude_groups,omitempty"`
}

// Includes reports whether a user with these groups is targeted.
func (t Target) Includes(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(t.ExcludeGroups, g) {
			return false
		}
	}
	if t.AllUsers {
		return true
	}
	for _, g := range groups {
		if slices.Contains(t.Groups, g) {
			return true
		}
	}
	return false
}

// Backoff limits push bombing: after Free unanswered attempts in a row, the
// next attempt must wait Base, then twice as long after each further
// unanswered one, up to Max. An answer from the phone (approve, deny,
// fraud) resets the count, as does a quiet period of Max.
type Backoff struct {
	Free        int `json:"free,omitempty"`         // default 2
	BaseSeconds int `json:"base_seconds,omitempty"` // default 30
	MaxSeconds  int `json:"max_seconds,omitempty"`  // default 3600
}

// Federation sends users of federated domains to their federation server.
type Federation struct {
	// Domains are the federated domains (lower case).
	Domains []string `json:"domains,omitempty"`
	// SignInURL is the federation server's sign-in URL.
	SignInURL string `json:"sign_in_url,omitempty"`
	// HonorLoginHint: a sign-in whose login_hint is in a federated domain
	// goes to SignInURL and skips phone sign-in.
	HonorLoginHint bool `json:"honor_login_hint,omitempty"`
}

// AttestationPolicy holds one section per attestation format; a format
// can enroll only when its section is present. ExtraRoots in a section
// names trust anchors configured on the server (Config.Roots), such as a
// development root for a demo tenant; production tenants name none.
type AttestationPolicy struct {
	Android   *AndroidPolicy   `json:"android,omitempty"`
	AppAttest *AppAttestPolicy `json:"apple_appattest,omitempty"`
	TPM       *TPMPolicy       `json:"tpm,omitempty"`
}

// AndroidPolicy is the Android Key Attestation policy, in the JSON form of
// androidkey.ParsePolicy (the field names of the test-vector format), plus
// ExtraRoots. Nil booleans take their defaults:
// require_verified_boot and require_device_locked true, and, unlike the
// verifier's own default, require_user_auth true (the key must need the
// person's biometric or PIN).
type AndroidPolicy struct {
	MinSecurityLevel    string   `json:"min_security_level,omitempty"` // software|tee|strongbox (default tee)
	RequireVerifiedBoot *bool    `json:"require_verified_boot,omitempty"`
	RequireDeviceLocked *bool    `json:"require_device_locked,omitempty"`
	RequireUserAuth     *bool    `json:"require_user_auth,omitempty"`
	Packages            []string `json:"packages,omitempty"`
	SigningDigests      []string `json:"signing_digests,omitempty"`    // hex SHA-256 of the app's signing certificates
	MinOSPatchLevel     int      `json:"min_os_patch_level,omitempty"` // YYYYMM
	Expiry              string   `json:"expiry,omitempty"`             // google (default)|strict|ignore
	ExtraRoots          []string `json:"extra_roots,omitempty"`
}

// AppAttestPolicy is the Apple App Attest policy: the apps allowed
// (TEAMID.bundle.id) and the environment.
type AppAttestPolicy struct {
	AppIDs      []string `json:"app_ids"`
	Environment string   `json:"environment,omitempty"` // production (default)|development|any
	ExtraRoots  []string `json:"extra_roots,omitempty"`
}

// TPMPolicy is the TPM policy: the roots an attestation key's certificate
// chain may end in beyond the built-in TPM vendor roots, and whether such a
// certificate is required.
type TPMPolicy struct {
	RequireAKCertificate bool     `json:"require_ak_certificate,omitempty"`
	ExtraRoots           []string `json:"extra_roots,omitempty"`
}

// Effective returns the policy with every default filled in.
func (p Policy) Effective() Policy {
	if p.NumberMatching == "" {
		p.NumberMatching = ModeType
	}
	if p.AttemptLifetimeSeconds == 0 {
		p.AttemptLifetimeSeconds = int(DefaultAttemptLifetime / time.Second)
	}
	if p.MaxInstalls == 0 {
		p.MaxInstalls = DefaultMaxInstalls
	}
	if p.Backoff.Free == 0 {
		p.Backoff.Free = DefaultBackoffFree
	}
	if p.Backoff.BaseSeconds == 0 {
		p.Backoff.BaseSeconds = int(DefaultBackoffBase / time.Second)
	}
	if p.Backoff.MaxSeconds == 0 {
		p.Backoff.MaxSeconds = int(DefaultBackoffMax / time.Second)
	}
	if a := p.Attestation.Android; a != nil {
		c := a.withDefaults()
		p.Attestation.Android = &c
	}
	if a := p.Attestation.AppAttest; a != nil {
		c := *a
		if c.Environment == "" {
			c.Environment = "production"
		}
		p.Attestation.AppAttest = &c
	}
	return p
}

// withDefaults returns the Android policy with every default filled in.
func (a AndroidPolicy) withDefaults() AndroidPolicy {
	t := true
	if a.MinSecurityLevel == "" {
		a.MinSecurityLevel = "tee"
	}
	if a.RequireVerifiedBoot == nil {
		a.RequireVerifiedBoot = &t
	}
	if a.RequireDeviceLocked == nil {
		a.RequireDeviceLocked = &t
	}
	if a.RequireUserAuth == nil {
		a.RequireUserAuth = &t
	}
	if a.Expiry == "" {
		a.Expiry = "google"
	}
	return a
}

func (p Policy) attemptLifetime() time.Duration {
	return time.Duration(p.AttemptLifetimeSeconds) * time.Second
}

// federates reports whether loginHint is in a federated domain the tenant
// honours.
func (f Federation) federates(loginHint string) bool {
	if !f.HonorLoginHint || f.SignInURL == "" {
		return false
	}
	at := strings.LastIndexByte(loginHint, '@')
	if at < 0 {
		return false
	}
	return slices.Contains(f.Domains, strings.ToLower(loginHint[at+1:]))
}

// User is a person of a tenant.
type User struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	// UPN is the user's sign-in name (user@domain), unique in the tenant
	// regardless of case.
	UPN         string   `json:"upn"`
	DisplayName string   `json:"display_name,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	// MFAPush: the user has registered for multi-factor push; only such
	// users can enroll.
	MFAPush bool `json:"mfa_push"`
	// FraudReports counts sign-ins the user reported as fraud.
	FraudReports int       `json:"fraud_reports,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Platforms of devices, from the attestation format.
const (
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
	PlatformWindows = "windows"
)

// Attestation formats the engine knows.
const (
	FormatAndroidKey = "android-key"
	FormatAppAttest  = "apple-appattest"
	FormatTPM        = "tpm"
)

func platformOf(format string) string {
	switch format {
	case FormatAndroidKey:
		return PlatformAndroid
	case FormatAppAttest:
		return PlatformIOS
	case FormatTPM:
		return PlatformWindows
	}
	return ""
}

// device is the stored, global record of a device: the accounts (at most
// one per tenant, and one in all unless Config.MultiTenantDevices) that
// hold a credential on it.
type device struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform"`
	Accounts  []account `json:"accounts"`
	CreatedAt time.Time `json:"created_at"`
}

type account struct {
	Tenant     string `json:"tenant"`
	User       string `json:"user"`
	Credential string `json:"credential"`
}

// tenantDevice is the per-tenant state of a device (the value of its
// tenant-device index entry).
type tenantDevice struct {
	Disabled bool `json:"disabled,omitempty"`
}

// Device is a device as one tenant sees it.
type Device struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Platform  string    `json:"platform"`
	Disabled  bool      `json:"disabled"`
	Users     []string  `json:"users"`       // the tenant's users with a credential on it
	Creds     []string  `json:"credentials"` // their credentials
	CreatedAt time.Time `json:"created_at"`
}

// Credential is a hardware-bound key registered to one user of one tenant
// on one device.
type Credential struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	User   string `json:"user"`
	Device string `json:"device"`
	// Format is the attestation format that proved the key; Trust and Root
	// are from the verdict.
	Format string `json:"format"`
	Trust  string `json:"trust"`
	Root   string `json:"root,omitempty"`
	// PublicKey is the key (PKIX DER); KeyID is its SHA-256.
	PublicKey []byte `json:"public_key"`
	KeyID     []byte `json:"key_id"`
	// AppID is the App Attest app that holds the key.
	AppID string `json:"app_id,omitempty"`
	// Counter is the App Attest signature counter of the last answer.
	Counter uint32 `json:"counter,omitempty"`
	// Facts is the verdict's facts as JSON.
	Facts json.RawMessage `json:"facts,omitempty"`
	// Challenge is the enrollment challenge the attestation answered (kept
	// to re-verify the stored evidence).
	Challenge  []byte    `json:"challenge"`
	Disabled   bool      `json:"disabled"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Enrollment states.
const (
	enrollPending = "pending"
	enrollUsed    = "used"
)

// Enrollment is an open enrollment: the challenge the phone's attestation
// must answer, usable once, until ExpiresAt.
type Enrollment struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	Challenge []byte    `json:"challenge"`
	ExpiresAt time.Time `json:"expires_at"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
}

// Sign-in attempt states (Outcome.State).
const (
	StatePending   = "pending"
	StateApproved  = "approved"
	StateDenied    = "denied"
	StateExpired   = "expired"
	StateCancelled = "cancelled"
	StateFraud     = "fraud"
)

// SignInContext is what the login page knows about the sign-in, shown on
// the phone so the person can judge it.
type SignInContext struct {
	App      string `json:"app,omitempty"`
	IP       string `json:"ip,omitempty"`
	Location string `json:"location,omitempty"`
}

// attempt is the stored sign-in attempt.
type attempt struct {
	ID          string        `json:"id"`
	Tenant      string        `json:"tenant"`
	User        string        `json:"user"`
	UPN         string        `json:"upn"`
	Credentials []string      `json:"credentials"` // those that may answer
	Mode        string        `json:"mode"`
	Number      int           `json:"number"`
	Choices     []int         `json:"choices,omitempty"`
	Nonce       []byte        `json:"nonce"`
	Context     SignInContext `json:"context"`
	CreatedAt   time.Time     `json:"created_at"`
	ExpiresAt   time.Time     `json:"expires_at"`
	State       string        `json:"state"`
	Reason      Code          `json:"reason,omitempty"`
	AnsweredBy  string        `json:"answered_by,omitempty"`
	DecidedAt   time.Time     `json:"decided_at,omitzero"`
}

// signInState is a user's sign-in bookkeeping: the pending attempt and the
// back-off count.
type signInState struct {
	Pending    string    `json:"pending,omitempty"`
	Unanswered int       `json:"unanswered"`
	LastStart  time.Time `json:"last_start"`
}
