package main

import (
	"encoding/json"
	"fmt"

	"github.com/keybind/keybind/attest"
)

func runAttest(e *env, args []string) int {
	return subcommands(e, "attest", `
Verify one attestation and print the verdict and every extracted fact as
JSON on standard output. On rejection the JSON carries the stable error code
of the check that failed, and the exit status is 1 (2 for bad arguments).`, attestCommands(), args)
}

// attestCommands lists the formats `keybind attest` verifies.
func attestCommands() []*command {
	return []*command{
		androidCommand(),
		{name: "apple", summary: "verify an Apple App Attest attestation object", run: runAttestApple},
		{name: "apple-assertion", summary: "verify an Apple App Attest assertion", run: runAttestAppleAssertion},
		{name: "tpm", summary: "verify a key certified by a TPM attestation key (go-attestation)", run: runAttestTPM},
		{name: "webauthn", summary: "verify a WebAuthn registration (attestation object and clientDataJSON)", run: runAttestWebAuthn},
	}
}

// attestOutput is what `keybind attest …` prints.
type attestOutput struct {
	Verdict string         `json:"verdict"` // "accept" or "reject"
	Format  string         `json:"format,omitempty"`
	Trust   attest.Trust   `json:"trust,omitempty"`
	Root    string         `json:"root,omitempty"`
	Error   attest.Code    `json:"error,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Facts   map[string]any `json:"facts,omitempty"`
}

// printVerdict prints the verdict or the rejection as JSON and returns the
// exit status: 0 on accept, 1 on reject.
func printVerdict(e *env, v *attest.Verdict, err error) int {
	out := attestOutput{Verdict: "accept"}
	status := 0
	if err != nil {
		out = attestOutput{Verdict: "reject", Error: attest.CodeOf(err), Reason: err.Error()}
		status = 1
	} else {
		out.Format, out.Trust, out.Root, out.Facts = v.Format, v.Trust, v.Root, v.Facts
	}
	b, merr := json.MarshalIndent(out, "", "  ")
	if merr != nil {
		e.errorf("encoding the verdict: %v", merr)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	if err != nil {
		e.errorf("rejected: %v", err)
	}
	return status
}
