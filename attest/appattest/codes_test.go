package appattest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybind/keybind/attest"
)

// allCodes lists every code this package returns.
var allCodes = []attest.Code{
	CodeKeyID, CodeClientDataHash, CodeAppIDs, CodeEnvironment, CodePublicKey,
	CodeObject, CodeFormat, CodeReceipt,
	CodeChainShape, CodeCertificate, CodeUntrustedRoot, CodeNotCA, CodeSignature, CodeNotYetValid, CodeExpired, CodeCriticalExtension, CodeKeyUsage,
	CodeNonceMissing, CodeNonceMalformed, CodeNonceMismatch,
	CodeCredentialKeyType, CodeKeyIDMismatch, CodeCredentialID, CodeCredentialKey, CodeCredentialKeyCOSE,
	CodeAppIDMismatch, CodeCounterNotZero, CodeAAGUID, CodeEnvironmentWrong, CodeAuthData, CodeAuthDataTrailing,
	CodeAssertionMalformed, CodeAssertionAuthData, CodeAssertionAppID, CodeAssertionCounter, CodeAssertionChallenge, CodeAssertionSignature,
}

// TestCodesAreDistinct checks that the codes are unique, in the documented
// families, and that none is a prefix of another, so that a vector naming a
// full code pins exactly one check.
func TestCodesAreDistinct(t *testing.T) {
	families := map[string]bool{"input": true, "asn1": true, "chain": true, "appattest": true, "assert": true}
	for i, a := range allCodes {
		if !families[a.Family()] {
			t.Errorf("%s: family %q", a, a.Family())
		}
		for j, b := range allCodes {
			if i != j && strings.HasPrefix(string(b), string(a)) {
				t.Errorf("%s is a prefix of %s", a, b)
			}
		}
	}
}

// TestEveryCheckHasAnInvalidVector reads the generated set and checks that
// each check has a vector expecting its code (the inputs the vector format
// cannot express, such as a missing app_ids, are tested here instead).
func TestEveryCheckHasAnInvalidVector(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testvectors", "appattest", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Vectors []struct {
			Expect struct{ Error string }
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range m.Vectors {
		seen[v.Expect.Error] = true
	}
	notInVectors := map[attest.Code]bool{CodeAppIDs: true, CodeEnvironment: true}
	for _, c := range append(allCodes, attest.CodeCBORMalformed, attest.CodeCBORTrailingBytes, attest.CodeCBORDuplicateKey, attest.CodeCBORIndefinite, attest.CodeCBORTag, attest.CodeCBORLimit, attest.CodeCBORType) {
		if !seen[string(c)] && !notInVectors[c] {
			t.Errorf("no vector expects %s", c)
		}
	}
}
