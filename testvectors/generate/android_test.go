package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors"
)

// TestAndroidSetCoversEveryCheck reads the committed android set and checks
// that every check of the verifier has a vector failing it with its exact
// code, and that every policy field has an accepted and a rejected vector.
func TestAndroidSetCoversEveryCheck(t *testing.T) {
	m, err := testvectors.LoadManifest(filepath.Join("..", "android", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	rejected := map[attest.Code]bool{}
	fields := map[string]map[string]bool{}
	for _, v := range m.Vectors {
		if v.Expect.Verdict == "reject" {
			rejected[attest.Code(v.Expect.Error)] = true
		}
		var params struct {
			Policy map[string]json.RawMessage `json:"policy"`
		}
		if err := json.Unmarshal(v.Params, &params); err != nil {
			t.Fatal(err)
		}
		for f := range params.Policy {
			if fields[f] == nil {
				fields[f] = map[string]bool{}
			}
			fields[f][v.Expect.Verdict] = true
		}
	}
	for _, c := range androidkey.Codes() {
		switch c {
		case androidkey.CodePolicy, androidkey.CodeRevocationUnavailable:
			// A vector's policy is parsed before verifying (a bad one
			// makes the vector unusable); an unreadable list is the
			// StatusSource's, tested in its package.
			continue
		}
		if !rejected[c] {
			t.Errorf("no vector rejects with %s", c)
		}
	}
	for _, f := range []string{"min_security_level", "require_verified_boot", "require_device_locked", "require_user_auth", "packages", "signing_digests", "min_os_patch_level", "expiry"} {
		if !fields[f]["accept"] || !fields[f]["reject"] {
			t.Errorf("policy field %s: accepted %v, rejected %v; want both", f, fields[f]["accept"], fields[f]["reject"])
		}
	}
}
