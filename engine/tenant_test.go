package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
)

func TestTenants(t *testing.T) {
	env := newEnv(t)
	created, err := env.e.CreateTenant(ctx, Tenant{ID: "contoso", Name: "Contoso", Policy: testPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	if !created.CreatedAt.Equal(t0) {
		t.Errorf("created at %v", created.CreatedAt)
	}
	_, err = env.e.CreateTenant(ctx, Tenant{ID: "contoso"})
	wantCode(t, err, CodeTenantExists)
	if KindOf(err) != KindConflict {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.GetTenant(ctx, "fabrikam")
	wantCode(t, err, CodeTenantNotFound)
	if KindOf(err) != KindNotFound {
		t.Errorf("kind %v", KindOf(err))
	}
	_, err = env.e.UpdateTenant(ctx, Tenant{ID: "fabrikam"})
	wantCode(t, err, CodeTenantNotFound)

	p := testPolicy()
	p.NumberMatching = ModeChoose
	env.clock.Advance(time.Minute)
	up, err := env.e.UpdateTenant(ctx, Tenant{ID: "contoso", Name: "Contoso Ltd", Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := env.e.GetTenant(ctx, "contoso")
	if got.Name != "Contoso Ltd" || got.Policy.NumberMatching != ModeChoose || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(up.UpdatedAt) {
		t.Errorf("after update: %+v", got)
	}
	env.tenant("adatum", Policy{})
	list, err := env.e.ListTenants(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "adatum" || list[1].ID != "contoso" {
		t.Errorf("ListTenants: %v %v", list, err)
	}
	if ev := env.auditEvents("contoso", ""); !slices.Equal(ev, []string{"tenant.created", "tenant.updated"}) {
		t.Errorf("audit: %v", ev)
	}

	for _, id := range []string{"", "has space", "sl/ash", strings.Repeat("x", MaxIDLength+1), "ünï"} {
		_, err := env.e.CreateTenant(ctx, Tenant{ID: id})
		wantCode(t, err, CodeInvalid)
		if KindOf(err) != KindInvalid {
			t.Errorf("kind %v", KindOf(err))
		}
	}
	_, err = env.e.CreateTenant(ctx, Tenant{ID: "ok", Name: "bad\x00name"})
	wantCode(t, err, CodeInvalid)
}

func TestPolicyDefaults(t *testing.T) {
	var zero Policy
	if zero.Enabled || zero.Target.AllUsers || zero.Target.Includes([]string{"any"}) {
		t.Error("the zero policy targets someone")
	}
	if _, ok := zero.Attestation.section(FormatAndroidKey); ok {
		t.Error("the zero policy accepts Android")
	}
	eff := Policy{Attestation: AttestationPolicy{Android: &AndroidPolicy{}, AppAttest: &AppAttestPolicy{AppIDs: []string{"a.b"}}}}.Effective()
	a := eff.Attestation.Android
	switch {
	case eff.NumberMatching != ModeType:
		t.Errorf("mode %q", eff.NumberMatching)
	case eff.attemptLifetime() != 120*time.Second:
		t.Errorf("lifetime %v", eff.attemptLifetime())
	case eff.MaxInstalls != 5:
		t.Errorf("installs %d", eff.MaxInstalls)
	case eff.Backoff != Backoff{Free: 2, BaseSeconds: 30, MaxSeconds: 3600}:
		t.Errorf("backoff %+v", eff.Backoff)
	case !*a.RequireUserAuth || !*a.RequireVerifiedBoot || !*a.RequireDeviceLocked || a.MinSecurityLevel != "tee" || a.Expiry != "google":
		t.Errorf("android defaults %+v", a)
	case eff.Attestation.AppAttest.Environment != "production":
		t.Errorf("app attest environment %q", eff.Attestation.AppAttest.Environment)
	}
	vp, err := a.verifierPolicy()
	if err != nil || !vp.RequireUserAuth || vp.AllowUnverifiedBoot || vp.AllowUnlockedDevice {
		t.Errorf("verifier policy %+v %v", vp, err)
	}
	// Effective does not change the policy it is called on.
	orig := &AndroidPolicy{}
	Policy{Attestation: AttestationPolicy{Android: orig}}.Effective()
	if orig.RequireUserAuth != nil || orig.MinSecurityLevel != "" {
		t.Error("Effective changed the policy's Android section")
	}
}

func TestTargets(t *testing.T) {
	tg := Target{Groups: []string{"sales", "it"}, ExcludeGroups: []string{"contractors"}}
	for _, c := range []struct {
		groups []string
		want   bool
	}{
		{nil, false}, {[]string{"sales"}, true}, {[]string{"hr"}, false},
		{[]string{"it", "contractors"}, false}, {[]string{"contractors"}, false},
	} {
		if got := tg.Includes(c.groups); got != c.want {
			t.Errorf("groups %v: %v", c.groups, got)
		}
	}
	all := Target{AllUsers: true, ExcludeGroups: []string{"guests"}}
	if !all.Includes(nil) || all.Includes([]string{"guests"}) {
		t.Error("all users minus guests")
	}
}

func TestPolicyValidation(t *testing.T) {
	env := newEnv(t)
	bad := map[string]func(*Policy){
		"mode":               func(p *Policy) { p.NumberMatching = "shout" },
		"lifetime too short": func(p *Policy) { p.AttemptLifetimeSeconds = 5 },
		"lifetime too long":  func(p *Policy) { p.AttemptLifetimeSeconds = 3600 },
		"installs":           func(p *Policy) { p.MaxInstalls = -1 },
		"too many installs":  func(p *Policy) { p.MaxInstalls = 1000 },
		"backoff":            func(p *Policy) { p.Backoff = Backoff{BaseSeconds: 100, MaxSeconds: 10} },
		"android level":      func(p *Policy) { p.Attestation.Android.MinSecurityLevel = "cloud" },
		"android digest":     func(p *Policy) { p.Attestation.Android.SigningDigests = []string{"hex:abcd"} },
		"android expiry":     func(p *Policy) { p.Attestation.Android.Expiry = "never" },
		"android patch":      func(p *Policy) { p.Attestation.Android.MinOSPatchLevel = 202413 },
		"unknown root":       func(p *Policy) { p.Attestation.Android.ExtraRoots = []string{"nobody's"} },
		"tpm unknown root":   func(p *Policy) { p.Attestation.TPM = &TPMPolicy{ExtraRoots: []string{"x"}} },
		"app ids":            func(p *Policy) { p.Attestation.AppAttest.AppIDs = nil },
		"environment":        func(p *Policy) { p.Attestation.AppAttest.Environment = "staging" },
		"federation url":     func(p *Policy) { p.Federation = Federation{Domains: []string{"fed.example"}, HonorLoginHint: true} },
		"federation domain":  func(p *Policy) { p.Federation = Federation{Domains: []string{"Fed.Example"}} },
		"empty group":        func(p *Policy) { p.Target.Groups = []string{""} },
	}
	for name, edit := range bad {
		p := testPolicy()
		edit(&p)
		_, err := env.e.CreateTenant(ctx, Tenant{ID: "t", Policy: p})
		if CodeOf(err) != CodePolicyInvalid || KindOf(err) != KindInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A valid policy with every field set.
	p := testPolicy()
	p.NumberMatching, p.AttemptLifetimeSeconds, p.MaxInstalls = ModeChoose, 60, 3
	p.Backoff = Backoff{Free: 3, BaseSeconds: 10, MaxSeconds: 600}
	p.Attestation.Android.SigningDigests = []string{"hex:" + strings.Repeat("ab", 32)}
	p.Attestation.Android.MinOSPatchLevel = 202401
	p.Federation = Federation{Domains: []string{"fed.example"}, SignInURL: "https://sts.fed.example/adfs/ls", HonorLoginHint: true}
	if _, err := env.e.CreateTenant(ctx, Tenant{ID: "t", Policy: p}); err != nil {
		t.Fatal(err)
	}
}

func TestUsers(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	u, err := env.e.CreateUser(ctx, "contoso", User{ID: "u1", UPN: "Alice@Contoso.com", DisplayName: "Alice", Groups: []string{"sales"}, MFAPush: true, FraudReports: 9})
	if err != nil {
		t.Fatal(err)
	}
	if u.FraudReports != 0 || u.Tenant != "contoso" {
		t.Errorf("created %+v", u)
	}
	_, err = env.e.CreateUser(ctx, "contoso", User{ID: "u1", UPN: "other@contoso.com"})
	wantCode(t, err, CodeUserExists)
	_, err = env.e.CreateUser(ctx, "contoso", User{ID: "u2", UPN: "alice@CONTOSO.com"})
	wantCode(t, err, CodeUPNTaken)
	_, err = env.e.CreateUser(ctx, "nowhere", User{ID: "u2", UPN: "bob@contoso.com"})
	wantCode(t, err, CodeTenantNotFound)
	for _, upn := range []string{"", "alice", "@contoso.com", "alice@", "al ice@contoso.com"} {
		_, err := env.e.CreateUser(ctx, "contoso", User{ID: "u3", UPN: upn})
		wantCode(t, err, CodeInvalid)
	}
	// UPNs match regardless of case.
	byName, err := env.e.UserByUPN(ctx, "contoso", "ALICE@contoso.COM")
	if err != nil || byName.ID != "u1" {
		t.Fatalf("UserByUPN: %v %v", byName, err)
	}
	_, err = env.e.UserByUPN(ctx, "contoso", "nobody@contoso.com")
	wantCode(t, err, CodeUserNotFound)
	// Renaming frees the old name and takes the new one.
	env.user("contoso", "u2", "bob@contoso.com")
	_, err = env.e.UpdateUser(ctx, "contoso", User{ID: "u1", UPN: "bob@contoso.com", MFAPush: true})
	wantCode(t, err, CodeUPNTaken)
	if _, err := env.e.UpdateUser(ctx, "contoso", User{ID: "u1", UPN: "alice.smith@contoso.com", Groups: []string{"it"}, MFAPush: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.UserByUPN(ctx, "contoso", "alice@contoso.com"); CodeOf(err) != CodeUserNotFound {
		t.Errorf("old name still resolves: %v", err)
	}
	got, err := env.e.UserByUPN(ctx, "contoso", "alice.smith@contoso.com")
	if err != nil || got.MFAPush || !slices.Equal(got.Groups, []string{"it"}) || got.DisplayName != "" {
		t.Errorf("after update: %+v %v", got, err)
	}
	env.user("contoso", "u3", "alice@contoso.com") // the old name is free
	_, err = env.e.UpdateUser(ctx, "contoso", User{ID: "ghost", UPN: "ghost@contoso.com"})
	wantCode(t, err, CodeUserNotFound)
	users, err := env.e.ListUsers(ctx, "contoso")
	if err != nil || len(users) != 3 {
		t.Errorf("ListUsers: %d %v", len(users), err)
	}
	if err := env.e.DeleteUser(ctx, "contoso", "u3"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, env.e.DeleteUser(ctx, "contoso", "u3"), CodeUserNotFound)
	_, err = env.e.GetUser(ctx, "contoso", "u3")
	wantCode(t, err, CodeUserNotFound)
	if _, err := env.e.UserByUPN(ctx, "contoso", "alice@contoso.com"); CodeOf(err) != CodeUserNotFound {
		t.Errorf("deleted user's name still resolves: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	// Attestation refusals keep their code; their kind follows the family.
	for code, kind := range map[attest.Code]Kind{
		"chain.expired": KindForbidden, "policy.user_auth": KindForbidden, "android.challenge_mismatch": KindForbidden,
		"cbor.malformed": KindInvalid, "asn1.certificate": KindInvalid, "input.evidence": KindInvalid,
	} {
		err := attestationError(attest.Errorf(code, "x"))
		var ae *attest.Error
		if CodeOf(err) != Code(code) || KindOf(err) != kind || !errors.As(err, &ae) || !errors.Is(err, code.Err()) {
			t.Errorf("%s: %v kind %v", code, err, KindOf(err))
		}
	}
	if KindOf(errors.New("plain")) != KindInternal || CodeOf(nil) != "" {
		t.Error("KindOf/CodeOf of foreign errors")
	}
	for k := KindInternal; k <= KindUnavailable; k++ {
		if k.String() == "" {
			t.Errorf("kind %d has no name", k)
		}
	}
}

// TestConcurrentChanges checks that partial changes of different members,
// made at once, are all kept: each is applied under the record's lock to the
// record as it is then, never to a copy read before.
func TestConcurrentChanges(t *testing.T) {
	env := newEnv(t)
	env.tenant("contoso", testPolicy())
	env.user("contoso", "u1", "alice@contoso.com")
	const rounds = 50
	var wg sync.WaitGroup
	run := func(f func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := f(i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	run(func(i int) error {
		name := fmt.Sprintf("Alice %d", i)
		_, err := env.e.ChangeUser(ctx, "contoso", "u1", UserChange{DisplayName: &name})
		return err
	})
	run(func(i int) error {
		groups := []string{fmt.Sprintf("g%d", i)}
		_, err := env.e.ChangeUser(ctx, "contoso", "u1", UserChange{Groups: &groups})
		return err
	})
	run(func(i int) error {
		upn := fmt.Sprintf("alice%d@contoso.com", i)
		_, err := env.e.ChangeUser(ctx, "contoso", "u1", UserChange{UPN: &upn})
		return err
	})
	run(func(i int) error {
		name := fmt.Sprintf("Contoso %d", i)
		_, err := env.e.ChangeTenant(ctx, "contoso", TenantChange{Name: &name})
		return err
	})
	run(func(i int) error {
		p := testPolicy()
		p.MaxInstalls = i + 1
		_, err := env.e.ChangeTenant(ctx, "contoso", TenantChange{Policy: &p})
		return err
	})
	wg.Wait()
	u, err := env.e.GetUser(ctx, "contoso", "u1")
	last := rounds - 1
	if err != nil || u.DisplayName != fmt.Sprintf("Alice %d", last) || !slices.Equal(u.Groups, []string{fmt.Sprintf("g%d", last)}) ||
		u.UPN != fmt.Sprintf("alice%d@contoso.com", last) || !u.MFAPush {
		t.Errorf("user after concurrent changes: %+v %v", u, err)
	}
	if byName, err := env.e.UserByUPN(ctx, "contoso", u.UPN); err != nil || byName.ID != "u1" {
		t.Errorf("the final UPN does not resolve: %v", err)
	}
	if _, err := env.e.UserByUPN(ctx, "contoso", "alice@contoso.com"); CodeOf(err) != CodeUserNotFound {
		t.Errorf("the first UPN still resolves: %v", err)
	}
	tn, err := env.e.GetTenant(ctx, "contoso")
	if err != nil || tn.Name != fmt.Sprintf("Contoso %d", last) || tn.Policy.MaxInstalls != rounds {
		t.Errorf("tenant after concurrent changes: name %q, max installs %d, %v", tn.Name, tn.Policy.MaxInstalls, err)
	}
	// A change that breaks a rule changes nothing.
	bad := ""
	_, err = env.e.ChangeUser(ctx, "contoso", "u1", UserChange{UPN: &bad})
	wantCode(t, err, CodeInvalid)
	if again, _ := env.e.GetUser(ctx, "contoso", "u1"); again.UPN != u.UPN {
		t.Errorf("refused change altered the user: %q", again.UPN)
	}
}
