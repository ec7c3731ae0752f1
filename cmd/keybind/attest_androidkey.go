package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/testvectors"
)

// The file is attest_androidkey.go, not attest_android.go: Go builds a file
// whose name ends in _android.go only for GOOS=android.

func androidCommand() *command {
	return &command{name: "android", summary: "verify an Android Key Attestation certificate chain", run: runAttestAndroid}
}

// fileList is a repeatable flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error { *f = append(*f, s); return nil }

func runAttestAndroid(e *env, args []string) int {
	fs := newFlags(e, "keybind attest android --chain FILE --challenge VALUE [flags]", `
Verify an Android Key Attestation chain (the certificates an app gets from
KeyStore for an attested key, leaf first) and print the verdict and every
fact as JSON. Exit status: 0 accepted, 1 rejected (the JSON names the error
code of the check that failed), 2 bad arguments.

Byte values (--challenge) use the test-vector syntax: hex:..., b64:...,
b64url:..., text:... or file:PATH.

The policy is a JSON file (or the JSON itself) with any of:
  min_security_level     "software" | "tee" | "strongbox"       (default "tee")
  require_verified_boot  true | false                          (default true)
  require_device_locked  true | false                          (default true)
  require_user_auth      true | false                          (default false)
  packages               ["com.example.app", ...]              (default any)
  signing_digests        ["hex:<sha-256>", ...]                (default any)
  min_os_patch_level     YYYYMM                                (default none)
  expiry                 "google" | "strict" | "ignore"        (default "google")
Unknown fields are an error.`)
	var chainFiles fileList
	fs.Var(&chainFiles, "chain", "the chain: a PEM file of certificates, leaf first (or a DER certificate); repeat for one file per certificate")
	challengeFlag := fs.String("challenge", "", "the expected attestation challenge, as a byte value (required)")
	timeFlag := fs.String("time", "", "validation time, RFC 3339 (default: now)")
	policyFlag := fs.String("policy", "", "policy: a JSON file, or the JSON object itself (default: the safe default policy)")
	rootsFlag := fs.String("roots", "", "PEM file of roots to trust instead of Google's hardware attestation roots")
	revocationFlag := fs.String("revocation", "", "revocation status list: a file or an http(s) URL (Google's: "+androidkey.GoogleStatusURL+"); a list that cannot be read rejects")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	usageErr := func(format string, a ...any) int {
		e.errorf("attest android: "+format, a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if len(chainFiles) == 0 {
		return usageErr("--chain is required")
	}
	if *challengeFlag == "" {
		return usageErr("--challenge is required")
	}
	var chain [][]byte
	for _, name := range chainFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			return usageErr("--chain: %v", err)
		}
		certs, err := attest.SplitCertificates(b)
		if err != nil {
			return usageErr("--chain %s: %v", name, err)
		}
		chain = append(chain, certs...)
	}
	opts := androidkey.Options{}
	var err error
	if opts.Challenge, err = testvectors.DecodeValue(*challengeFlag, "."); err != nil {
		return usageErr("--challenge: %v", err)
	}
	if *timeFlag != "" {
		if opts.Time, err = time.Parse(time.RFC3339Nano, *timeFlag); err != nil {
			return usageErr("--time: %v", err)
		}
	}
	if p := *policyFlag; p != "" {
		data := []byte(p)
		if !strings.HasPrefix(strings.TrimSpace(p), "{") {
			if data, err = os.ReadFile(p); err != nil {
				return usageErr("--policy: %v", err)
			}
		}
		if opts.Policy, err = androidkey.ParsePolicy(data); err != nil {
			return usageErr("--policy: %v", err)
		}
	}
	if *rootsFlag != "" {
		b, err := os.ReadFile(*rootsFlag)
		if err != nil {
			return usageErr("--roots: %v", err)
		}
		if opts.Roots, err = androidkey.ParseRootsPEM(b); err != nil {
			return usageErr("--roots %s: %v", *rootsFlag, err)
		}
	}
	if *revocationFlag != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A configured list that cannot be read rejects: fail closed.
		list, err := androidkey.NewStatusSource(*revocationFlag).List(ctx)
		if err != nil {
			return printVerdict(e, nil, err)
		}
		opts.Revocation = list
	}
	res, err := androidkey.NewVerifier().Verify(chain, opts)
	if err != nil {
		return printVerdict(e, nil, err)
	}
	return printVerdict(e, res.Verdict, nil)
}
