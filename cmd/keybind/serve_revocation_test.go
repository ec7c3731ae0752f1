package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors/forge"
)

// TestServeAndroidRevocation runs keybind serve with an Android revocation
// list: an attestation whose chain holds a revoked certificate is refused
// over the API, one from another chain is accepted, a list that cannot be
// read stops the start, and a list that disappears fails readiness once the
// last one read is too old.
func TestServeAndroidRevocation(t *testing.T) {
	dir := t.TempDir()
	revokedCA, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	goodCA, err := forge.NewAndroidCA(forge.AndroidCAOptions{Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "root.pem")
	os.WriteFile(rootFile, append(revokedCA.RootPEM(), goodCA.RootPEM()...), 0o600)
	listFile := filepath.Join(dir, "status.json")
	os.WriteFile(listFile, forge.AndroidStatusList(forge.AndroidStatusEntry{
		Serial: revokedCA.Intermediates[0].SerialNumber, Status: "REVOKED", Reason: "KEY_COMPROMISE",
	}), 0o600)

	st, _, errOut := keybind(t, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--android-revocation", filepath.Join(dir, "none.json"))
	if st != 2 || !strings.Contains(errOut, "--android-revocation") {
		t.Errorf("start with an unreadable list: status %d, %q", st, errOut)
	}

	const operator = "operator-key-of-the-revocation-test"
	p := startServe(t, nil, "--operator-key", operator, "--root", "dev="+rootFile,
		"--android-revocation", listFile, "--android-revocation-refresh", "1s", "--android-revocation-max-age", "2s")
	ctx := context.Background()
	op := client.New(p.url, operator)
	pol := engine.Policy{Enabled: true, Target: engine.Target{AllUsers: true}, Attestation: engine.AttestationPolicy{Android: &engine.AndroidPolicy{ExtraRoots: []string{"dev"}}}}
	if _, err := op.CreateTenant(ctx, "contoso", "Contoso", pol); err != nil {
		t.Fatal(err)
	}
	mfa := true
	for _, upn := range []string{"alice@contoso.com", "bob@contoso.com"} {
		if _, err := op.CreateUser(ctx, "contoso", client.UserRequest{UPN: &upn, MFAPush: &mfa}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := op.CreateKey(ctx, "contoso", "auth_server", "idp")
	if err != nil {
		t.Fatal(err)
	}
	auth, phone := client.New(p.url, key.Key), client.New(p.url, "")
	enroll := func(upn string, ca *forge.AndroidCA) error {
		enr, err := auth.StartEnrollment(ctx, upn, true)
		if err != nil {
			t.Fatal(err)
		}
		att, err := ca.Attest(forge.AndroidKey{Challenge: enr.Challenge, UserAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = phone.Attest(ctx, enr.ID, "android-key", engine.Evidence{"chain": engine.JoinDER(att.Chain)}, "")
		return err
	}
	var prob *client.Problem
	if err := enroll("alice@contoso.com", revokedCA); !errors.As(err, &prob) || prob.Code != "chain.revoked" {
		t.Errorf("chain with a revoked intermediate: %v", err)
	}
	if err := enroll("bob@contoso.com", goodCA); err != nil {
		t.Errorf("chain without a revoked certificate: %v", err)
	}

	if code, body := p.do(t, "GET", "/readyz", "", nil); code != 200 {
		t.Fatalf("readyz with a fresh list: %d %s", code, body)
	}
	os.Remove(listFile)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := p.do(t, "GET", "/readyz", "", nil)
		if code == 503 && strings.Contains(string(body), "android-revocation") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz with no list for longer than its maximum age: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := enroll("bob@contoso.com", goodCA); !errors.As(err, &prob) || prob.Code != "chain.revocation_unavailable" {
		t.Errorf("enrollment without a usable list: %v", err)
	}
}
