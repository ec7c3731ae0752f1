package engine

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/testvectors/forge"
)

func TestEnrollAndroid(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "u1", "alice@contoso.com")
	enr, err := env.e.StartEnrollment(ctx, "contoso", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(enr.Challenge) != ChallengeSize || !enr.ExpiresAt.Equal(t0.Add(10*time.Minute)) || enr.State != enrollPending {
		t.Fatalf("enrollment %+v", enr)
	}
	ev, key := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	kid := sha256.Sum256(spki)
	switch {
	case cred.Tenant != "contoso" || cred.User != "u1" || cred.Device == "" || cred.Format != FormatAndroidKey:
		t.Errorf("credential %+v", cred)
	case !bytes.Equal(cred.PublicKey, spki) || !bytes.Equal(cred.KeyID, kid[:]):
		t.Error("credential key is not the attested key")
	case cred.Trust != "hardware" || cred.Root == "" || !bytes.Equal(cred.Challenge, enr.Challenge):
		t.Errorf("trust %q root %q", cred.Trust, cred.Root)
	}
	var facts map[string]any
	if err := json.Unmarshal(cred.Facts, &facts); err != nil || facts["security_level"] != "tee" || facts["package"] != forge.AndroidDefaultPackage {
		t.Errorf("facts %s %v", cred.Facts, err)
	}
	// Stored: the credential, the device in this tenant, the key id, the
	// evidence, the audit record.
	got, err := env.e.GetCredential(ctx, "contoso", cred.ID)
	if err != nil || got.ID != cred.ID {
		t.Fatalf("GetCredential: %v", err)
	}
	dev, err := env.e.GetDevice(ctx, "contoso", cred.Device)
	if err != nil || dev.Platform != PlatformAndroid || !slices.Equal(dev.Users, []string{"u1"}) || !slices.Equal(dev.Creds, []string{cred.ID}) {
		t.Fatalf("device %+v %v", dev, err)
	}
	stored, err := env.e.CredentialEvidence(ctx, "contoso", cred.ID)
	if err != nil || !bytes.Equal(stored["chain"], ev["chain"]) {
		t.Fatalf("evidence: %v", err)
	}
	var owner string
	if err := env.st.Get(store.KeyIDKey(kid[:]), &owner); err != nil || owner != cred.ID {
		t.Errorf("key id registration: %q %v", owner, err)
	}
	// The stored evidence verifies again (an audit after the fact).
	if v, err := env.e.ReverifyCredential(ctx, "contoso", cred.ID); err != nil || v.Format != FormatAndroidKey {
		t.Errorf("ReverifyCredential: %v", err)
	}
	// ... and fails under a policy it no longer meets.
	p := testPolicy()
	p.Attestation.Android.Packages = []string{"com.other.app"}
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	_, err = env.e.ReverifyCredential(ctx, "contoso", cred.ID)
	wantCode(t, err, Code(androidkey.CodePackage))
	ev2 := env.auditEvents("contoso", "u1")
	if !slices.Contains(ev2, "enroll.started") || !slices.Contains(ev2, "enroll.completed") || !slices.Contains(ev2, "credential.reverified:policy.package") {
		t.Errorf("audit %v", ev2)
	}
}

func TestEnrollAppAttest(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "u1", "alice@contoso.com")
	ph, err := env.enrollApple("contoso", "u1", "")
	if err != nil {
		t.Fatal(err)
	}
	c := ph.cred
	if c.Format != FormatAppAttest || c.AppID != testAppID || c.Counter != 0 || c.Trust != "hardware" {
		t.Errorf("credential %+v", c)
	}
	if d, _ := env.e.GetDevice(ctx, "contoso", c.Device); d == nil || d.Platform != PlatformIOS {
		t.Errorf("device %+v", d)
	}
	// The same key attested again is refused: a key id is registered once.
	enr, _ := env.e.StartEnrollment(ctx, "contoso", "u1")
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: env.appleEvidence(enr.Challenge, ph.apple)})
	wantCode(t, err, CodeEnrollKeyRegistered)
	// Even once the credential is deleted.
	if err := env.e.DeleteCredential(ctx, "contoso", c.ID); err != nil {
		t.Fatal(err)
	}
	enr, _ = env.e.StartEnrollment(ctx, "contoso", "u1")
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: env.appleEvidence(enr.Challenge, ph.apple)})
	wantCode(t, err, CodeEnrollKeyRegistered)
}

func TestEnrollPolicyRefusals(t *testing.T) {
	env := newEnv(t)
	off := testPolicy()
	off.Enabled = false
	env.tenant("off", off)
	groups := testPolicy()
	groups.Target = Target{Groups: []string{"sales"}, ExcludeGroups: []string{"contractors"}}
	env.tenant("groups", groups)
	env.tenant("contoso", testPolicy())
	env.user("off", "u1", "a@off.example")
	env.user("groups", "seller", "s@g.example", "sales")
	env.user("groups", "temp", "t@g.example", "sales", "contractors")
	env.user("groups", "hr", "h@g.example", "hr")
	if _, err := env.e.CreateUser(ctx, "contoso", User{ID: "nomfa", UPN: "n@contoso.com"}); err != nil {
		t.Fatal(err)
	}

	_, err := env.e.StartEnrollment(ctx, "off", "u1")
	wantCode(t, err, CodeEnrollDisabled)
	if KindOf(err) != KindForbidden {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.StartEnrollment(ctx, "contoso", "nomfa")
	wantCode(t, err, CodeEnrollMFARequired)
	_, err = env.e.StartEnrollment(ctx, "groups", "hr")
	wantCode(t, err, CodeEnrollNotTargeted)
	_, err = env.e.StartEnrollment(ctx, "groups", "temp")
	wantCode(t, err, CodeEnrollNotTargeted)
	if _, err := env.enrollAndroid("groups", "seller", ""); err != nil {
		t.Errorf("targeted user: %v", err)
	}
	_, err = env.e.StartEnrollment(ctx, "nowhere", "u1")
	wantCode(t, err, CodeTenantNotFound)
	_, err = env.e.StartEnrollment(ctx, "contoso", "ghost")
	wantCode(t, err, CodeUserNotFound)
	if ev := env.auditEvents("groups", "hr"); !slices.Equal(ev, []string{"user.created", "enroll.refused:enroll.not_targeted"}) {
		t.Errorf("audit of the refusal: %v", ev)
	}

	// The policy is checked again when the phone completes: a user removed
	// from the target meanwhile cannot finish.
	env.user("contoso", "u2", "b@contoso.com", "staff")
	enr, err := env.e.StartEnrollment(ctx, "contoso", "u2")
	if err != nil {
		t.Fatal(err)
	}
	p := testPolicy()
	p.Target = Target{AllUsers: true, ExcludeGroups: []string{"staff"}}
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	ev, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
	wantCode(t, err, CodeEnrollNotTargeted)
}

func TestEnrollChallenge(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "u1", "alice@contoso.com")
	enr, _ := env.e.StartEnrollment(ctx, "contoso", "u1")
	ev, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	req := EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev}
	if _, err := env.e.CompleteEnrollment(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Single use.
	_, err := env.e.CompleteEnrollment(ctx, req)
	wantCode(t, err, CodeEnrollUsed)
	// Consumed even by a failed attempt: a wrong attestation then the
	// right one.
	enr, _ = env.e.StartEnrollment(ctx, "contoso", "u1")
	wrong, _ := env.androidEvidence([]byte("another challenge"), forge.AndroidKey{UserAuth: true})
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: wrong})
	wantCode(t, err, Code(androidkey.CodeChallengeMismatch))
	right, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: right})
	wantCode(t, err, CodeEnrollUsed)
	// Ten minutes.
	enr, _ = env.e.StartEnrollment(ctx, "contoso", "u1")
	env.clock.Advance(EnrollmentLifetime - time.Second)
	enr2, _ := env.e.StartEnrollment(ctx, "contoso", "u1")
	env.clock.Advance(time.Second)
	ev, _ = env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
	wantCode(t, err, CodeEnrollExpired)
	if KindOf(err) != KindGone {
		t.Errorf("kind %v", KindOf(err))
	}
	ev, _ = env.androidEvidence(enr2.Challenge, forge.AndroidKey{UserAuth: true})
	if _, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr2.ID, Format: FormatAndroidKey, Evidence: ev}); err != nil {
		t.Errorf("enrollment within its ten minutes: %v", err)
	}
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: "no-such-enrollment", Format: FormatAndroidKey, Evidence: ev})
	wantCode(t, err, CodeEnrollNotFound)
}

func TestEnrollAttestationRefusals(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	noApple := testPolicy()
	noApple.Attestation.AppAttest = nil
	env.tenant("android-only", noApple)
	prod := testPolicy()
	prod.Attestation.Android.ExtraRoots = nil // Google's roots only
	prod.Attestation.AppAttest.ExtraRoots = nil
	env.tenant("production", prod)
	env.user("contoso", "u1", "alice@contoso.com")
	env.user("android-only", "u1", "alice@a.example")
	env.user("production", "u1", "alice@p.example")

	try := func(tenant string, k forge.AndroidKey) error {
		enr, err := env.e.StartEnrollment(ctx, tenant, "u1")
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := env.androidEvidence(enr.Challenge, k)
		_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
		return err
	}
	// The engine's default demands user authentication.
	err := try("contoso", forge.AndroidKey{})
	wantCode(t, err, Code(androidkey.CodeUserAuth))
	if KindOf(err) != KindForbidden {
		t.Errorf("kind %v", KindOf(err))
	}
	wantCode(t, try("contoso", forge.AndroidKey{UserAuth: true, Package: "com.evil"}), Code(androidkey.CodePackage))
	wantCode(t, try("contoso", forge.AndroidKey{UserAuth: true, Level: "software"}), Code(androidkey.CodeSecurityLevel))
	wantCode(t, try("contoso", forge.AndroidKey{UserAuth: true, Unlocked: true}), Code(androidkey.CodeDeviceLocked))
	// A production tenant does not trust the development root.
	wantCode(t, try("production", forge.AndroidKey{UserAuth: true}), Code(androidkey.CodeUntrustedRoot))

	enr, _ := env.e.StartEnrollment(ctx, "production", "u1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: env.appleEvidence(enr.Challenge, key)})
	wantCode(t, err, Code(appattest.CodeUntrustedRoot))

	// A format the tenant's policy has no section for.
	enr, _ = env.e.StartEnrollment(ctx, "android-only", "u1")
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAppAttest, Evidence: env.appleEvidence(enr.Challenge, key)})
	wantCode(t, err, CodeEnrollFormat)
	// A TPM activation for a tenant without a tpm section; a tpm
	// certification before any activation (the enrollment stays open).
	enr, _ = env.e.StartEnrollment(ctx, "android-only", "u1")
	_, err = env.e.StartTPMActivation(ctx, TPMActivationRequest{Enrollment: enr.ID, AK: TPMAKParameters{Public: []byte{1}, CreateData: []byte{1}, CreateAttestation: []byte{1}, CreateSignature: []byte{1}}})
	wantCode(t, err, CodeEnrollFormat)
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatTPM, Evidence: Evidence{"public": {1}}})
	wantCode(t, err, CodeTPMNotActivated)
	ev, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	if _, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev}); err != nil {
		t.Errorf("the enrollment was consumed by a tpm certification before activation: %v", err)
	}

	// Malformed evidence: its own code, nothing stored.
	for name, ev := range map[string]Evidence{
		"unknown part":  {"chain": {0x30, 0}, "extra": {1}},
		"missing chain": {"certs": {1}},
		"not DER":       {"chain": []byte("not a certificate")},
	} {
		enr, _ := env.e.StartEnrollment(ctx, "contoso", "u1")
		_, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
		if CodeOf(err) != Code(CodeEvidence) || KindOf(err) != KindInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	enr, _ = env.e.StartEnrollment(ctx, "contoso", "u1")
	for name, req := range map[string]EnrollRequest{
		"format":       {Enrollment: enr.ID, Format: "u2f", Evidence: Evidence{"x": {1}}},
		"no evidence":  {Enrollment: enr.ID, Format: FormatAndroidKey},
		"big evidence": {Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: Evidence{"chain": make([]byte, MaxEvidence+1)}},
		"enrollment":   {Enrollment: "", Format: FormatAndroidKey, Evidence: Evidence{"chain": {1}}},
		"device":       {Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: Evidence{"chain": {1}}, Device: "bad device"},
	} {
		_, err := env.e.CompleteEnrollment(ctx, req)
		if CodeOf(err) != CodeInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Input errors did not consume the enrollment.
	ev, _ = env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true})
	if _, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev}); err != nil {
		t.Errorf("after refused inputs: %v", err)
	}
	creds, _ := env.e.ListCredentials(ctx, "contoso", "u1")
	if len(creds) != 1 {
		t.Errorf("%d credentials after the refusals, want 1", len(creds))
	}
}

func TestInstallLimit(t *testing.T) {
	env := newEnv(t)
	p := testPolicy()
	p.MaxInstalls = 2
	env.tenant("contoso", p)
	env.user("contoso", "u1", "alice@contoso.com")
	for range 2 {
		if _, err := env.enrollAndroid("contoso", "u1", ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err := env.e.StartEnrollment(ctx, "contoso", "u1")
	wantCode(t, err, CodeEnrollInstallLimit)
	// Checked again at completion: two enrollments opened at one install
	// below the limit cannot both complete.
	p.MaxInstalls = 3
	env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Policy: p})
	a, _ := env.e.StartEnrollment(ctx, "contoso", "u1")
	b, err := env.e.StartEnrollment(ctx, "contoso", "u1")
	if err != nil {
		t.Fatal(err)
	}
	evA, _ := env.androidEvidence(a.Challenge, forge.AndroidKey{UserAuth: true})
	evB, _ := env.androidEvidence(b.Challenge, forge.AndroidKey{UserAuth: true})
	if _, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: a.ID, Format: FormatAndroidKey, Evidence: evA}); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: b.ID, Format: FormatAndroidKey, Evidence: evB})
	wantCode(t, err, CodeEnrollInstallLimit)
	// The default is 5.
	env.tenant("dflt", testPolicy())
	env.user("dflt", "u1", "a@d.example")
	for range 5 {
		if _, err := env.enrollAndroid("dflt", "u1", ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err = env.enrollAndroid("dflt", "u1", "")
	wantCode(t, err, CodeEnrollInstallLimit)
}

func TestDeviceRules(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.tenant("fabrikam", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	env.user("contoso", "bob", "bob@contoso.com")
	env.user("fabrikam", "carol", "carol@fabrikam.com")
	ph := env.mustEnroll("contoso", "alice")
	dev := ph.cred.Device

	// One account per device: bob on alice's device, alice again.
	_, err := env.enrollAndroid("contoso", "bob", dev)
	wantCode(t, err, CodeEnrollDeviceAccount)
	if KindOf(err) != KindConflict {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.enrollAndroid("contoso", "alice", dev)
	wantCode(t, err, CodeEnrollDeviceAccount)
	// One tenant per device.
	_, err = env.enrollAndroid("fabrikam", "carol", dev)
	wantCode(t, err, CodeEnrollDeviceTenant)
	// A device id that does not exist.
	_, err = env.enrollAndroid("contoso", "bob", "no-such-device")
	wantCode(t, err, CodeDeviceNotFound)
	if ev := env.auditEvents("fabrikam", "carol"); !slices.Contains(ev, "enroll.refused:enroll.device_other_tenant") {
		t.Errorf("audit %v", ev)
	}
	// Bob on his own device is fine.
	if _, err := env.enrollAndroid("contoso", "bob", ""); err != nil {
		t.Fatal(err)
	}

	// The server setting for several tenants per device: carol's tenant may
	// use alice's device, still one account per tenant.
	multi := newEnv(t, func(c *Config) { c.MultiTenantDevices = true })
	multi.tenant("contoso", testPolicy())
	multi.tenant("fabrikam", testPolicy())
	multi.user("contoso", "alice", "alice@contoso.com")
	multi.user("contoso", "bob", "bob@contoso.com")
	multi.user("fabrikam", "carol", "carol@fabrikam.com")
	multi.user("fabrikam", "dave", "dave@fabrikam.com")
	mph := multi.mustEnroll("contoso", "alice")
	carol, err := multi.enrollAndroid("fabrikam", "carol", mph.cred.Device)
	if err != nil {
		t.Fatalf("second tenant on a multi-tenant device: %v", err)
	}
	_, err = multi.enrollAndroid("fabrikam", "dave", mph.cred.Device)
	wantCode(t, err, CodeEnrollDeviceAccount)
	_, err = multi.enrollAndroid("contoso", "bob", mph.cred.Device)
	wantCode(t, err, CodeEnrollDeviceAccount)
	// Each tenant sees only its own account on the device.
	d, _ := multi.e.GetDevice(ctx, "fabrikam", mph.cred.Device)
	if !slices.Equal(d.Users, []string{"carol"}) || !slices.Equal(d.Creds, []string{carol.cred.ID}) {
		t.Errorf("fabrikam's view %+v", d)
	}
	// Disabling it in one tenant leaves the other alone.
	if _, err := multi.e.SetDeviceDisabled(ctx, "fabrikam", mph.cred.Device, true); err != nil {
		t.Fatal(err)
	}
	if d, _ := multi.e.GetDevice(ctx, "contoso", mph.cred.Device); d.Disabled {
		t.Error("disabled in the other tenant too")
	}
	// A disabled device takes no new enrollment in that tenant.
	if err := multi.e.DeleteCredential(ctx, "fabrikam", carol.cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := multi.e.GetDevice(ctx, "fabrikam", mph.cred.Device); CodeOf(err) != CodeDeviceNotFound {
		t.Errorf("device still in fabrikam after its last credential there was deleted: %v", err)
	}
}

func TestRSAAndEd25519Keys(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	for i, alg := range []string{"rsa-2048", "ed25519", "ecdsa-p384"} {
		user := "u" + strings.Repeat("x", i)
		env.user("contoso", user, user+"@contoso.com")
		enr, _ := env.e.StartEnrollment(ctx, "contoso", user)
		ev, key := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true, Algorithm: alg})
		cred, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		ph := &phone{cred: cred, key: key}
		s := env.start("contoso", user+"@contoso.com")
		out, err := env.answer(ph, DecisionApprove, s.Number)
		if err != nil || out.State != StateApproved {
			t.Errorf("%s: %v %v", alg, out, err)
		}
	}
	// A key that cannot sign answers is refused at enrollment.
	env.user("contoso", "mldsa", "m@contoso.com")
	enr, _ := env.e.StartEnrollment(ctx, "contoso", "mldsa")
	ev, _ := env.androidEvidence(enr.Challenge, forge.AndroidKey{UserAuth: true, Algorithm: "ml-dsa-65"})
	_, err := env.e.CompleteEnrollment(ctx, EnrollRequest{Enrollment: enr.ID, Format: FormatAndroidKey, Evidence: ev})
	if err == nil {
		t.Error("an ML-DSA key was enrolled")
	}
}
