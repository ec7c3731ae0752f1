package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/testvectors"
)

// appleMaxInput bounds what `keybind attest apple…` reads from a file.
const appleMaxInput = 16 << 20

// appleFlags are the flags of an App Attest attestation check, shared by
// both commands (the assertion command verifies an attestation first when
// it is given one instead of a public key).
type appleFlags struct {
	attestation    string
	keyID          string
	clientDataHash string
	appIDs         appIDFlag
	environment    string
	time           string
	roots          string
}

func (f *appleFlags) register(fs *flag.FlagSet, attestationUsage string) {
	fs.StringVar(&f.attestation, "attestation", "", attestationUsage)
	fs.StringVar(&f.keyID, "key-id", "", "the key id the app reported (a value: b64:…, hex:…)")
	fs.StringVar(&f.clientDataHash, "client-data-hash", "", "exactly the bytes the app passed to attestKey, usually SHA-256 of the server challenge (a value)")
	fs.Var(&f.appIDs, "app-id", "an accepted App ID, TEAMID.bundle.id (repeat for several)")
	fs.StringVar(&f.environment, "environment", "production", "accepted environment: production, development or any")
	fs.StringVar(&f.time, "time", "", "validation time, RFC 3339 (default now)")
	fs.StringVar(&f.roots, "roots", "", "PEM file of trusted roots (default: the built-in Apple App Attestation Root CA)")
}

// appIDFlag is a repeatable --app-id.
type appIDFlag []string

func (a *appIDFlag) String() string { return strings.Join(*a, ",") }
func (a *appIDFlag) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty App ID")
	}
	*a = append(*a, s)
	return nil
}

// verify reads the attestation flags and verifies the attestation. A
// problem with the arguments is returned as usageErr; a rejection as err.
func (f *appleFlags) verify() (att *appattest.Attestation, usageErr, err error) {
	if f.attestation == "" || f.keyID == "" || f.clientDataHash == "" || len(f.appIDs) == 0 {
		return nil, fmt.Errorf("--attestation, --key-id, --client-data-hash and --app-id are required"), nil
	}
	object, err := appleReadInput(f.attestation)
	if err != nil {
		return nil, fmt.Errorf("--attestation: %v", err), nil
	}
	keyID, err := testvectors.DecodeValue(f.keyID, ".")
	if err != nil {
		return nil, fmt.Errorf("--key-id: %v", err), nil
	}
	opts := appattest.AttestationOptions{AppIDs: f.appIDs}
	if opts.ClientDataHash, err = testvectors.DecodeValue(f.clientDataHash, "."); err != nil {
		return nil, fmt.Errorf("--client-data-hash: %v", err), nil
	}
	if opts.Environment, err = appattest.ParseEnvironment(f.environment); err != nil {
		return nil, fmt.Errorf("--environment: %q is not production, development or any", f.environment), nil
	}
	if f.time != "" {
		if opts.Time, err = time.Parse(time.RFC3339Nano, f.time); err != nil {
			return nil, fmt.Errorf("--time: not RFC 3339: %v", err), nil
		}
	}
	if f.roots != "" {
		if opts.Roots, err = appleReadRoots(f.roots); err != nil {
			return nil, fmt.Errorf("--roots: %v", err), nil
		}
	}
	att, err = appattest.NewVerifier().VerifyAttestation(object, keyID, opts)
	return att, nil, err
}

func runAttestApple(e *env, args []string) int {
	fs := newFlags(e, "keybind attest apple --attestation FILE --key-id VALUE --client-data-hash VALUE --app-id ID [flags]", `
Verify an Apple App Attest attestation object, as Apple documents the
checks: the strict CBOR object, the certificate chain to the Apple App
Attestation Root CA at the validation time, the nonce, the key id, the App
ID, the counter and the environment. Print the verdict and every fact
(environment, app_id, counter, key_id, public_key, os_version, receipt, and
the iOS 27 bundle_version and validation_category) as JSON.

VALUE arguments use the test-vector value syntax: hex:…, b64:…, b64url:…,
text:… or file:PATH. Exit status: 0 accepted, 1 rejected (the JSON names
the error code), 2 bad arguments.`)
	var f appleFlags
	f.register(fs, "FILE holding the attestation object as the app sent it (CBOR; - for standard input)")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		e.errorf("attest apple: unexpected argument %q", fs.Arg(0))
		return 2
	}
	att, usageErr, err := f.verify()
	if usageErr != nil {
		e.errorf("attest apple: %v", usageErr)
		return 2
	}
	if err != nil {
		return printVerdict(e, nil, err)
	}
	return printVerdict(e, att.Verdict, nil)
}

func runAttestAppleAssertion(e *env, args []string) int {
	fs := newFlags(e, "keybind attest apple-assertion --assertion FILE --client-data VALUE (--public-key VALUE | --attestation FILE --key-id VALUE --client-data-hash VALUE) --app-id ID [flags]", `
Verify an Apple App Attest assertion: the strict CBOR {signature,
authenticatorData}, the App ID, the counter (greater than
--previous-counter), the challenge when given, and the ECDSA P-256
signature over SHA-256(authenticatorData ‖ SHA-256(client data)). Print the
verdict and its facts (counter, and the iOS 27 values) as JSON.

The key is --public-key (PKIX DER or an X9.62 point), or the key of an
attestation verified first with the attestation flags.

VALUE arguments use the test-vector value syntax: hex:…, b64:…, b64url:…,
text:… or file:PATH. Exit status: 0 accepted, 1 rejected (the JSON names
the error code), 2 bad arguments.`)
	var f appleFlags
	f.register(fs, "FILE holding the attestation whose key made the assertion (instead of --public-key; - for standard input)")
	assertionFile := fs.String("assertion", "", "FILE holding the assertion as the app sent it (CBOR; - for standard input)")
	clientData := fs.String("client-data", "", "the client data the app signed (a value)")
	publicKey := fs.String("public-key", "", "the key's public key, PKIX DER or X9.62 point (a value)")
	previous := fs.String("previous-counter", "0", "the counter stored for the key; the assertion's must be greater")
	challenge := fs.String("challenge", "", "a challenge the client data must contain (a value; optional)")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	usage := func(format string, args ...any) int {
		e.errorf("attest apple-assertion: "+format, args...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *assertionFile == "" || *clientData == "" || len(f.appIDs) == 0 {
		return usage("--assertion, --client-data and --app-id are required")
	}
	if (*publicKey == "") == (f.attestation == "") {
		return usage("give either --public-key or --attestation (with --key-id and --client-data-hash)")
	}
	if *assertionFile == "-" && f.attestation == "-" {
		return usage("only one of --assertion and --attestation can be standard input")
	}
	assertion, err := appleReadInput(*assertionFile)
	if err != nil {
		return usage("--assertion: %v", err)
	}
	cd, err := testvectors.DecodeValue(*clientData, ".")
	if err != nil {
		return usage("--client-data: %v", err)
	}
	opts := appattest.AssertionOptions{AppIDs: f.appIDs}
	n, err := strconv.ParseUint(*previous, 10, 32)
	if err != nil || n > math.MaxUint32 {
		return usage("--previous-counter: %q is not a counter (0 to %d)", *previous, uint32(math.MaxUint32))
	}
	opts.PreviousCounter = uint32(n)
	if *challenge != "" {
		if opts.Challenge, err = testvectors.DecodeValue(*challenge, "."); err != nil {
			return usage("--challenge: %v", err)
		}
	}
	var pub *ecdsa.PublicKey
	if *publicKey != "" {
		b, err := testvectors.DecodeValue(*publicKey, ".")
		if err != nil {
			return usage("--public-key: %v", err)
		}
		if pub, err = appattest.ParsePublicKey(b); err != nil {
			return printVerdict(e, nil, err)
		}
	} else {
		att, usageErr, err := f.verify()
		if usageErr != nil {
			return usage("%v", usageErr)
		}
		if err != nil {
			return printVerdict(e, nil, err)
		}
		pub = att.PublicKey
	}
	res, err := appattest.VerifyAssertion(assertion, cd, pub, opts)
	if err != nil {
		return printVerdict(e, nil, err)
	}
	return printVerdict(e, &attest.Verdict{Format: "apple-appattest-assertion", PublicKey: pub, Facts: res.Facts()}, nil)
}

// appleReadInput reads a file argument ("-" is standard input), up to
// appleMaxInput bytes.
func appleReadInput(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, appleMaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > appleMaxInput {
		return nil, fmt.Errorf("larger than %d bytes", appleMaxInput)
	}
	return b, nil
}

// appleReadRoots reads a PEM file of certificates.
func appleReadRoots(name string) ([]*x509.Certificate, error) {
	b, err := appleReadInput(name)
	if err != nil {
		return nil, err
	}
	roots, err := attest.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return roots, nil
}
