package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/store"
)

func TestAdminCredentialsAndDevices(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.tenant("fabrikam", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	env.user("contoso", "bob", "bob@contoso.com")
	a1 := env.mustEnroll("contoso", "alice")
	a2, err := env.enrollApple("contoso", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	b1 := env.mustEnroll("contoso", "bob")

	creds, err := env.e.ListCredentials(ctx, "contoso", "alice")
	if err != nil || len(creds) != 2 {
		t.Fatalf("alice's credentials: %d %v", len(creds), err)
	}
	all, _ := env.e.ListCredentials(ctx, "contoso", "")
	if len(all) != 3 {
		t.Errorf("tenant's credentials: %d", len(all))
	}
	if none, _ := env.e.ListCredentials(ctx, "fabrikam", ""); len(none) != 0 {
		t.Errorf("fabrikam sees %d credentials", len(none))
	}
	_, err = env.e.ListCredentials(ctx, "contoso", "ghost")
	wantCode(t, err, CodeUserNotFound)
	_, err = env.e.GetCredential(ctx, "fabrikam", a1.cred.ID)
	wantCode(t, err, CodeCredentialNotFound)
	devices, err := env.e.ListDevices(ctx, "contoso")
	if err != nil || len(devices) != 3 {
		t.Fatalf("devices: %d %v", len(devices), err)
	}

	// Disable a credential: no sign-in goes to it, its answers are refused.
	if _, err := env.e.SetCredentialDisabled(ctx, "contoso", a1.cred.ID, true); err != nil {
		t.Fatal(err)
	}
	s := env.start("contoso", "alice@contoso.com")
	_, err = env.e.PendingSignIn(ctx, a1.cred.ID)
	wantCode(t, err, CodeCredentialDisabled)
	if p, err := env.e.PendingSignIn(ctx, a2.cred.ID); err != nil || p.Attempt != s.Attempt {
		t.Fatalf("the other credential: %v", err)
	}
	_, err = env.e.SetCredentialDisabled(ctx, "fabrikam", a1.cred.ID, true)
	wantCode(t, err, CodeCredentialNotFound)
	// Disable alice's other device: no usable credential, password.
	if _, err := env.e.SetDeviceDisabled(ctx, "contoso", a2.cred.Device, true); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.PendingSignIn(ctx, a2.cred.ID)
	wantCode(t, err, CodeDeviceDisabled)
	if s := env.start("contoso", "alice@contoso.com"); s.Method != MethodPassword || s.Reason != ReasonNoCredential {
		t.Errorf("all disabled: %+v", s)
	}
	_, err = env.e.SetDeviceDisabled(ctx, "fabrikam", a2.cred.Device, true)
	wantCode(t, err, CodeDeviceNotFound)
	// Enable again.
	env.e.SetCredentialDisabled(ctx, "contoso", a1.cred.ID, false)
	env.e.SetDeviceDisabled(ctx, "contoso", a2.cred.Device, false)
	if s := env.start("contoso", "alice@contoso.com"); s.Method != MethodPhone {
		t.Errorf("enabled again: %+v", s)
	}

	// Delete a device: its credential goes, the key id stays registered.
	if err := env.e.DeleteDevice(ctx, "contoso", b1.cred.Device); err != nil {
		t.Fatal(err)
	}
	_, err = env.e.GetDevice(ctx, "contoso", b1.cred.Device)
	wantCode(t, err, CodeDeviceNotFound)
	_, err = env.e.GetCredential(ctx, "contoso", b1.cred.ID)
	wantCode(t, err, CodeCredentialNotFound)
	if ok, _ := env.st.Has(store.KeyIDKey(b1.cred.KeyID)); !ok {
		t.Error("the deleted credential's key id is no longer registered")
	}
	if ok, _ := env.st.Has(store.EvidenceKey(b1.cred.ID)); ok {
		t.Error("evidence of a deleted credential kept")
	}
	wantCode(t, env.e.DeleteDevice(ctx, "contoso", b1.cred.Device), CodeDeviceNotFound)
	// The same device id cannot be reused once deleted.
	_, err = env.enrollAndroid("contoso", "bob", b1.cred.Device)
	wantCode(t, err, CodeDeviceNotFound)
	// Delete a credential.
	if err := env.e.DeleteCredential(ctx, "contoso", a2.cred.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, env.e.DeleteCredential(ctx, "contoso", a2.cred.ID), CodeCredentialNotFound)
	if creds, _ := env.e.ListCredentials(ctx, "contoso", "alice"); len(creds) != 1 || creds[0].ID != a1.cred.ID {
		t.Errorf("after delete: %v", creds)
	}
	// Deleting a user takes their credentials and devices.
	if err := env.e.DeleteUser(ctx, "contoso", "alice"); err != nil {
		t.Fatal(err)
	}
	if devices, _ := env.e.ListDevices(ctx, "contoso"); len(devices) != 0 {
		t.Errorf("devices after deleting everyone's: %+v", devices)
	}
	if left := countKeys(t, env.st, store.KindCredential) + countKeys(t, env.st, store.KindUserCredential) + countKeys(t, env.st, store.KindDevice) + countKeys(t, env.st, store.KindEvidence); left != 0 {
		t.Errorf("%d credential, index, device or evidence records left", left)
	}
	ev := env.auditEvents("contoso", "")
	for _, want := range []string{"credential.disabled", "credential.enabled", "device.disabled", "device.enabled", "device.deleted", "credential.deleted", "user.deleted"} {
		if !slices.Contains(ev, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}

func countKeys(t *testing.T, s *store.Store, kind store.Kind) int {
	n := 0
	if err := s.Scan(store.Prefix(kind), func(store.Key, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditHoldsNoSecrets runs enrollments and sign-ins, then searches the
// whole audit log for the challenges, nonces, numbers, keys and signatures
// they used.
func TestAuditHoldsNoSecrets(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	var secrets []string
	add := func(b []byte) {
		secrets = append(secrets, hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), string(b))
	}
	enr, _ := env.e.StartEnrollment(ctx, "contoso", "alice")
	add(enr.Challenge)
	ph := env.mustEnroll("contoso", "alice")
	add(ph.cred.PublicKey)
	for i := range 5 {
		s := env.start("contoso", "alice@contoso.com")
		p, _ := env.e.PendingSignIn(ctx, ph.cred.ID)
		add(p.Nonce)
		secrets = append(secrets, "number="+strconv.Itoa(s.Number))
		number := s.Number
		if i == 3 {
			number++ // a wrong number
		}
		sig := ph.sign(t, p, DecisionApprove, number)
		add(sig)
		env.e.AnswerSignIn(ctx, Answer{Attempt: p.Attempt, Credential: ph.cred.ID, Decision: DecisionApprove, Number: number, Signature: sig})
		env.clock.Advance(time.Minute)
	}
	page, err := env.e.Audit(ctx, AuditQuery{Tenant: "contoso"})
	if err != nil || len(page.Records) < 10 {
		t.Fatalf("audit: %d records, %v", len(page.Records), err)
	}
	for _, r := range page.Records {
		var text strings.Builder
		text.WriteString(r.Event + " " + r.Code + " " + r.Actor)
		for k, v := range r.Details {
			text.WriteString(" " + k + "=" + v)
			if k == "number" {
				t.Errorf("record %d has a number", r.Seq)
			}
		}
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(text.String(), s) {
				t.Errorf("record %d (%s) holds a secret", r.Seq, r.Event)
			}
		}
	}
}

func TestAuditQueryByUserAndTime(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	env.clock.Advance(time.Hour)
	env.user("contoso", "bob", "bob@contoso.com")
	env.clock.Advance(time.Hour)
	env.e.UpdateUser(ctx, "contoso", User{ID: "alice", UPN: "alice@contoso.com", DisplayName: "A", MFAPush: true})

	page, err := env.e.Audit(ctx, AuditQuery{Tenant: "contoso", User: "alice"})
	if err != nil || len(page.Records) != 2 || page.Records[0].Event != "user.created" || page.Records[1].Event != "user.updated" {
		t.Fatalf("alice: %+v %v", page.Records, err)
	}
	page, _ = env.e.Audit(ctx, AuditQuery{Tenant: "contoso", From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute)})
	if len(page.Records) != 1 || page.Records[0].User != "bob" {
		t.Errorf("range: %+v", page.Records)
	}
	page, _ = env.e.Audit(ctx, AuditQuery{Tenant: "contoso", Limit: 1})
	if len(page.Records) != 1 || page.Next == "" {
		t.Fatalf("first page: %+v", page)
	}
	page, _ = env.e.Audit(ctx, AuditQuery{Tenant: "contoso", Limit: 10, After: page.Next})
	if len(page.Records) != 3 || page.Next != "" {
		t.Errorf("second page: %+v", page)
	}
	_, err = env.e.Audit(ctx, AuditQuery{Tenant: "contoso", After: "garbage"})
	wantCode(t, err, CodeInvalid)
	_, err = env.e.Audit(ctx, AuditQuery{Tenant: ""})
	wantCode(t, err, CodeInvalid)
	if page, err := env.e.Audit(ctx, AuditQuery{Tenant: "nobody"}); err != nil || page.Records == nil || len(page.Records) != 0 {
		t.Errorf("empty log: %+v %v", page, err)
	}
}

func TestSweep(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	ph := env.mustEnroll("contoso", "alice")
	s := env.start("contoso", "alice@contoso.com")
	env.answer(ph, DecisionApprove, s.Number)
	env.e.StartEnrollment(ctx, "contoso", "alice")
	if n, _ := env.e.Sweep(ctx, 100); n != 0 {
		t.Errorf("swept %d records right away", n)
	}
	// Outcomes stay readable for the retention period.
	env.clock.Advance(DefaultAttemptRetention)
	if o, err := env.e.SignInOutcome(ctx, "contoso", s.Attempt); err != nil || o.State != StateApproved {
		t.Errorf("outcome within retention: %+v %v", o, err)
	}
	env.clock.Advance(EnrollmentLifetime + time.Second)
	n, err := env.e.Sweep(ctx, 100)
	if err != nil || n != 3 { // the attempt and two enrollments
		t.Errorf("swept %d, %v; want 3", n, err)
	}
	_, err = env.e.SignInOutcome(ctx, "contoso", s.Attempt)
	wantCode(t, err, CodeSignInNotFound)
	// The credential is not swept, and sign-in goes on.
	if s := env.start("contoso", "alice@contoso.com"); s.Method != MethodPhone {
		t.Errorf("after the sweep: %+v", s)
	}
}

func TestClosedStore(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.st.Close()
	_, err := env.e.GetTenant(ctx, "contoso")
	wantCode(t, err, CodeStorage)
	if KindOf(err) != KindUnavailable {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.CreateTenant(ctx, Tenant{ID: "x"})
	wantCode(t, err, CodeStorage)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source failed") }

// TestInjectedRandomness: ids, challenges and numbers come from Config.Rand;
// when it fails, the engine refuses with engine.internal and writes nothing.
func TestInjectedRandomness(t *testing.T) {
	env := newEnv(t, func(c *Config) { c.Rand = failingReader{} })
	env.tenant("contoso", testPolicy())
	env.user("contoso", "alice", "alice@contoso.com")
	_, err := env.e.StartEnrollment(ctx, "contoso", "alice")
	wantCode(t, err, CodeInternal)
	if n := countKeys(t, env.st, store.KindEnrollment); n != 0 {
		t.Errorf("%d enrollments written", n)
	}
	// A deterministic source gives deterministic challenges.
	var challenges [][]byte
	for range 2 {
		env := newEnv(t, func(c *Config) { c.Rand = bytes.NewReader(bytes.Repeat([]byte{7, 1, 2, 3}, 64)) })
		env.tenant("contoso", testPolicy())
		env.user("contoso", "alice", "alice@contoso.com")
		enr, err := env.e.StartEnrollment(ctx, "contoso", "alice")
		if err != nil {
			t.Fatal(err)
		}
		challenges = append(challenges, enr.Challenge)
	}
	if !bytes.Equal(challenges[0], challenges[1]) {
		t.Error("the same randomness gave different challenges")
	}
}

// Identifiers never begin with '-' or '_', whatever the randomness, so that
// a shell command never takes one for a flag.
func TestIDNeverLooksLikeAFlag(t *testing.T) {
	for _, fill := range []byte{0xff, 0xfb, 0xf8, 0x00} {
		e := &Engine{rand: bytes.NewReader(bytes.Repeat([]byte{fill}, 16))}
		id, err := e.newID()
		if err != nil {
			t.Fatal(err)
		}
		if id[0] == '-' || id[0] == '_' {
			t.Errorf("random bytes %#x: id %q begins with %q", fill, id, id[0])
		}
		if len(id) != 22 {
			t.Errorf("id %q: length %d, want 22", id, len(id))
		}
	}
}
