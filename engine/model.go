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
	WebAuthn  *WebAuthnPolicy  `json:"webauthn,omitempty"`
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

// How a TPMPolicy trusts endorsement keys (EKTrust).
const (
	// EKTrustCertificate: the EK certificate the PC sends chains to a TPM
	// vendor root: the server's (Config.TPMVendorRoots) or one the section's
	// ExtraRoots names (the default).
	EKTrustCertificate = "certificate"
	// EKTrustAllowList: the SHA-256 of the EK's SubjectPublicKeyInfo is on
	// EKAllowList (TPMs registered beforehand, such as virtual TPMs without
	// an EK certificate).
	EKTrustAllowList = "allow_list"
)

// MaxEKAllowList bounds a TPM policy's EK allow-list.
const MaxEKAllowList = 4096

// TPMPolicy is the policy of PCs that enroll with their TPM: which
// endorsement keys (EKs) are trusted to belong to a genuine TPM, and so
// which TPMs may enroll an attestation key by credential activation. The
// zero value trusts EK certificates that chain to a configured TPM vendor
// root, and with none configured, no TPM.
type TPMPolicy struct {
	// EKTrust is EKTrustCertificate (default) or EKTrustAllowList.
	EKTrust string `json:"ek_trust,omitempty"`
	// EKAllowList holds the SHA-256 of each trusted EK's
	// SubjectPublicKeyInfo (DER), in lower-case hex, for EKTrustAllowList.
	EKAllowList []string `json:"ek_allow_list,omitempty"`
	// ExtraRoots names configured roots EK certificates may chain to,
	// besides Config.TPMVendorRoots.
	ExtraRoots []string `json:"extra_roots,omitempty"`
}

// WebAuthnPolicy is the policy of WebAuthn registrations (passkeys made by
// a browser or platform authenticator: Windows Hello, Android, iPhone
// apps). RPID and Origins are required. Every other zero value is the safe
// default: hardware-backed keys only (format none refused), user
// verification required, android-key statements under the default Android
// policy, apple-appattest statements refused.
type WebAuthnPolicy struct {
	// RPID is the relying party ID credentials are scoped to ("example.com").
	RPID string `json:"rp_id"`
	// Origins are the origins registrations and assertions may come from,
	// compared exactly ("https://login.example.com", or an Android app's
	// "android:apk-key-hash:…").
	Origins []string `json:"origins"`
	// AllowSoftwareKeys accepts registrations that prove nothing about where
	// the key lives (format none, or an android-key statement of a software
	// keystore the Android policy allows), enrolled with trust "none".
	AllowSoftwareKeys bool `json:"allow_software_keys,omitempty"`
	// RequireUserVerification (default true) wants the UV flag at
	// registration and in every answer: the person unlocked the key with a
	// biometric or PIN. App Attest does not attest it, so it refuses
	// apple-appattest statements.
	RequireUserVerification *bool `json:"require_user_verification,omitempty"`
	// Android is the policy of android-key statements (nil: the defaults
	// of AndroidPolicy); its ExtraRoots are their extra roots.
	Android *AndroidPolicy `json:"android,omitempty"`
	// AppAttest accepts apple-appattest statements of these apps (nil:
	// refused); its ExtraRoots are their extra roots.
	AppAttest *AppAttestPolicy `json:"apple_appattest,omitempty"`
	// TPMExtraRoots names configured roots the AIK certificates of tpm
	// statements may chain to, besides the built-in Microsoft TPM Root
	// Certificate Authority 2014.
	TPMExtraRoots []string `json:"tpm_extra_roots,omitempty"`
}

// userVerification reports whether the policy requires user verification.
func (w *WebAuthnPolicy) userVerification() bool {
	return w.RequireUserVerification == nil || *w.RequireUserVerification
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
	if a := p.Attestation.TPM; a != nil {
		c := *a
		if c.EKTrust == "" {
			c.EKTrust = EKTrustCertificate
		}
		p.Attestation.TPM = &c
	}
	if a := p.Attestation.WebAuthn; a != nil {
		c := *a
		if c.RequireUserVerification == nil {
			t := true
			c.RequireUserVerification = &t
		}
		android := AndroidPolicy{}
		if c.Android != nil {
			android = *c.Android
		}
		android = android.withDefaults()
		c.Android = &android
		if c.AppAttest != nil {
			app := *c.AppAttest
			if app.Environment == "" {
				app.Environment = "production"
			}
			c.AppAttest = &app
		}
		p.Attestation.WebAuthn = &c
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

// Platforms of devices, from the attestation format (for WebAuthn, from
// its statement's format).
const (
	PlatformAndroid = "android"
	PlatformIOS     = "ios"
	PlatformWindows = "windows"
	// PlatformUnknown: a WebAuthn authenticator whose registration does not
	// say what it is (format none).
	PlatformUnknown = "unknown"
)

// Attestation formats the engine knows.
const (
	FormatAndroidKey = "android-key"
	FormatAppAttest  = "apple-appattest"
	FormatTPM        = "tpm"
	// FormatWebAuthn is a WebAuthn registration (attestation object and
	// clientDataJSON) of any statement format the tenant accepts: tpm,
	// android-key, apple-appattest, none.
	FormatWebAuthn = "webauthn"
)

// platformOf returns the platform of a format; for FormatWebAuthn, of the
// statement format.
func platformOf(format, statement string) string {
	switch format {
	case FormatAndroidKey:
		return PlatformAndroid
	case FormatAppAttest:
		return PlatformIOS
	case FormatTPM:
		return PlatformWindows
	case FormatWebAuthn:
		switch statement {
		case "tpm":
			return PlatformWindows
		case FormatAndroidKey:
			return PlatformAndroid
		case FormatAppAttest:
			return PlatformIOS
		}
		return PlatformUnknown
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
	// Statement is the attestation statement format of a WebAuthn
	// credential (tpm, android-key, apple-appattest, none).
	Statement string `json:"statement,omitempty"`
	// WebAuthnID is a WebAuthn credential's id, which a browser names in
	// allowCredentials to sign with it; COSEAlgorithm its COSE algorithm
	// (ES256 -7, EdDSA -8, RS256 -257, …), which its assertions sign with.
	WebAuthnID    []byte `json:"webauthn_id,omitempty"`
	COSEAlgorithm int64  `json:"cose_algorithm,omitempty"`
	// Counter is the signature counter of the last answer (App Attest, and
	// WebAuthn authenticators that keep one).
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
	// TPMAK is the attestation key a PC's TPM proved for this enrollment
	// by credential activation (StartTPMActivation, CompleteTPMActivation):
	// a tpm enrollment completes with a key this AK certifies.
	TPMAK *TPMAK `json:"tpm_ak,omitempty"`
}

// TPMAK is an attestation key (AK) accepted by credential activation: the
// PC's TPM proved it holds both the AK and an EK the tenant trusts.
type TPMAK struct {
	Enrollment string `json:"enrollment"`
	// Public is the AK's TPMT_PUBLIC.
	Public []byte `json:"public"`
	// EKSHA256 is the SHA-256 of the EK's SubjectPublicKeyInfo.
	EKSHA256 []byte `json:"ek_sha256"`
	// Root names what vouched for the EK: the root of its certificate
	// chain, or "ek-allowlist".
	Root        string    `json:"root"`
	ActivatedAt time.Time `json:"activated_at"`
	// Evidence is what the activation proved (the EK and AK parts of the
	// request and the AK record); it joins the credential's evidence. It is
	// stored, not returned.
	Evidence Evidence `cbor:"evidence" json:"-"`
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
