package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/device"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/testvectors"
)

// `keybind device`: a simulated phone (package device) on the command
// line.

func runDevice(e *env, args []string) int {
	return subcommands(e, "device", `
A simulated phone that speaks keybind's real protocol: it enrolls a real
P-256 key with an Android Key Attestation chain or an Apple App Attest
object, lists the sign-ins waiting for it and answers them with signed
requests, as the phone app does.

Its attestations come from a development root, made once and kept next to
the phone's state (devroot/). No production trust store holds it: a server
accepts these phones only when started with --root NAME=devroot/root.pem,
and only for tenants whose policy names NAME in extra_roots.

The phone's state (credential, key, App Attest counter) is a JSON file,
--state (KEYBIND_DEVICE_STATE; default: keybind/device/phone.json in the
user's configuration directory). One process at a time may use it.`, deviceCommands(), args)
}

func deviceCommands() []*command {
	return []*command{
		{name: "init-root", summary: "create (or show) the development attestation root", run: runDeviceInitRoot},
		{name: "enroll", summary: "enroll a simulated phone (android or apple) for a user", run: runDeviceEnroll},
		{name: "pending", summary: "list the sign-ins waiting for the phone", run: runDevicePending},
		{name: "approve", summary: "approve a sign-in with its number", run: runDeviceApprove},
		{name: "deny", summary: "deny a sign-in", run: runDeviceDeny},
		{name: "fraud", summary: "deny a sign-in and report it as fraud", run: runDeviceFraud},
		{name: "interactive", summary: "show sign-ins as they come and answer them from the terminal", run: runDeviceInteractive},
	}
}

const defaultStateHelp = "keybind/device/phone.json in the user's configuration directory"

const deviceExitHelp = `
Exit status: 0 on success, 1 when the server refuses (its code and detail
are printed: "keybind: device approve: 403 signin.wrong_number: …") or
the state cannot be used, 2 for bad arguments.`

// deviceFlags are the flags every device command has.
type deviceFlags struct {
	state, rootDir, server *string
}

func addDeviceFlags(fs *flag.FlagSet, root bool) deviceFlags {
	f := deviceFlags{state: fs.String("state", "", "the phone's state `file` (KEYBIND_DEVICE_STATE; default "+defaultStateHelp+")")}
	if root {
		f.rootDir = fs.String("root-dir", "", "the development root's `folder` (default: devroot next to the state file)")
	}
	return f
}

// addTimeout adds --timeout, the bound of a command's requests.
func addTimeout(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", time.Minute, "how long to wait for the server")
}

// statePath returns the state file: --state, KEYBIND_DEVICE_STATE or the
// default.
func (f deviceFlags) statePath() (string, error) {
	if p := firstOf(*f.state, os.Getenv("KEYBIND_DEVICE_STATE")); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no state file: give --state (%v)", err)
	}
	return filepath.Join(dir, "keybind", "device", "phone.json"), nil
}

// rootPath returns the root's folder: --root-dir, or devroot next to the
// state file.
func (f deviceFlags) rootPath() (string, error) {
	if *f.rootDir != "" {
		return *f.rootDir, nil
	}
	state, err := f.statePath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(state), "devroot"), nil
}

// deviceRun runs a device command's body with a context that ends at the
// timeout (0: none) or on SIGINT/SIGTERM, and turns its error into the
// exit status.
func deviceRun(e *env, name string, timeout time.Duration, do func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err := do(ctx)
	var p *client.Problem
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		e.errorf("device %s: %v", name, err)
		fmt.Fprintf(e.stderr, "Run 'keybind device %s --help' for usage.\n", name)
		return 2
	case errors.As(err, &p):
		e.errorf("device %s: %d %s: %s", name, p.Status, p.Code, p.Detail)
	default:
		e.errorf("device %s: %v", name, err)
	}
	return 1
}

// parseNoArgs parses the flags of a command without positional
// arguments; the status is as parseFlags's.
func parseNoArgs(e *env, fs *flag.FlagSet, args []string) int {
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		e.errorf("%s: unexpected argument %q", strings.TrimPrefix(fs.Name(), "keybind "), fs.Arg(0))
		return 2
	}
	return -1
}

func runDeviceInitRoot(e *env, args []string) int {
	fs := newFlags(e, "keybind device init-root [--root-dir DIR] [--name NAME]", `
Create the development attestation root, or show the one already made: a
P-384 CA whose key (root-key.pem, mode 0600) signs the Android chains and
App Attest chains of the simulated phones, and its certificate (root.pem)
to give the server. enroll creates the root as well when there is none.

The root is for development only. Trust it in a server with
  keybind serve --root NAME=<folder>/root.pem
and in the policy of the tenants that may enroll simulated phones:
  "attestation": {"android": {"packages": ["`+device.DefaultPackage+`"], "extra_roots": ["NAME"]},
                  "apple_appattest": {"app_ids": ["`+device.DefaultAppID+`"], "extra_roots": ["NAME"]}}
Tenants that name no extra root (production ones) refuse these phones.`+deviceExitHelp)
	f := addDeviceFlags(fs, true)
	name := fs.String("name", "dev", "the `name` to trust the root under, in the printed hints")
	if st := parseNoArgs(e, fs, args); st >= 0 {
		return st
	}
	return deviceRun(e, "init-root", 0, func(context.Context) error {
		dir, err := f.rootPath()
		if err != nil {
			return err
		}
		r, err := device.OpenRoot(dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "development root: %s\n", r.Cert.Subject.CommonName)
		fmt.Fprintf(e.stdout, "sha256:           %s\n", r.Fingerprint())
		fmt.Fprintf(e.stdout, "certificate:      %s\n", r.CertFile)
		fmt.Fprintf(e.stdout, "trust it:         keybind serve --root %s=%s\n", *name, r.CertFile)
		fmt.Fprintf(e.stdout, "tenant policy:    \"extra_roots\": [%q] in attestation.android and attestation.apple_appattest\n", *name)
		return nil
	})
}

func runDeviceEnroll(e *env, args []string) int {
	fs := newFlags(e, "keybind device enroll --server URL (--key KEY --user USER | --enrollment ID --challenge VALUE) [--kind android|apple] [--state FILE]", `
Enroll a new simulated phone: make a P-256 key, attest it under the
development root (created when missing), send the attestation to the
server and write the phone's state file.

The enrollment is opened either with an API key of the tenant's auth
server (--key, or KEYBIND_KEY) for --user (a UPN when it holds "@", else a
user id), as the auth server does after the person signed in; or it is
one an administrator opened: --enrollment and --challenge (the challenge
as the API gives it, base64, or a value: hex:…, b64:…, b64url:…).

--kind android attests a TEE key of a verified, locked device, usable only
after a biometric or PIN, for the package --app (default `+device.DefaultPackage+`);
--kind apple attests an App Attest key of the App ID --app (default
`+device.DefaultAppID+`).

An existing state file is not replaced without --force.`+deviceExitHelp)
	f := addDeviceFlags(fs, true)
	timeout := addTimeout(fs)
	server := fs.String("server", "", "the server's `URL` (KEYBIND_SERVER; default http://127.0.0.1:8443)")
	key := fs.String("key", "", "an auth server (or admin) API `key` of the tenant (KEYBIND_KEY)")
	user := fs.String("user", "", "the `user` to enroll the phone for (UPN or user id), with --key")
	enrollment := fs.String("enrollment", "", "an enrollment `id` an administrator opened")
	challenge := fs.String("challenge", "", "the enrollment's challenge (base64, or a `value`: hex:…, b64:…, b64url:…)")
	kind := fs.String("kind", device.KindAndroid, "the phone: android or apple")
	app := fs.String("app", "", "the Android package or App Attest App ID to attest")
	dev := fs.String("device", "", "the device `id` of an earlier enrollment of this phone")
	force := fs.Bool("force", false, "replace an existing state file")
	if st := parseNoArgs(e, fs, args); st >= 0 {
		return st
	}
	return deviceRun(e, "enroll", *timeout, func(ctx context.Context) error {
		base, err := serverURL(*server)
		if err != nil {
			return err
		}
		opts := device.EnrollOptions{Server: base, Kind: *kind, User: *user, Enrollment: *enrollment, App: *app, Device: *dev}
		switch *kind {
		case device.KindAndroid, device.KindApple:
		default:
			return usageError(fmt.Sprintf("--kind %q: android or apple", *kind))
		}
		if *enrollment != "" {
			if *key != "" || *user != "" {
				return usageError("--enrollment and --challenge, or --key and --user, not both")
			}
			if *challenge == "" {
				return usageError("--enrollment needs its --challenge")
			}
			c, err := decodeChallenge(*challenge)
			if err != nil {
				return usageError("--challenge: " + err.Error())
			}
			opts.Challenge = c
		} else {
			if opts.APIKey = firstOf(*key, os.Getenv("KEYBIND_KEY")); opts.APIKey == "" {
				return usageError("give an auth server key (KEYBIND_KEY or --key) and --user, or --enrollment and --challenge")
			}
			if *user == "" {
				return usageError("--user is required with an API key")
			}
			if *challenge != "" {
				return usageError("--challenge goes with --enrollment")
			}
		}
		state, err := f.statePath()
		if err != nil {
			return err
		}
		if _, err := os.Stat(state); err == nil && !*force {
			return fmt.Errorf("%s already holds a phone: give another --state, or --force to replace it (its credential stays enrolled on the server)", state)
		}
		rootDir, err := f.rootPath()
		if err != nil {
			return err
		}
		root, err := device.OpenRoot(rootDir)
		if err != nil {
			return err
		}
		opts.State = state
		ph, err := device.Enroll(ctx, root, opts)
		if err != nil {
			return err
		}
		st := ph.State()
		fmt.Fprintf(e.stdout, "enrolled %s phone: credential %s, device %s, user %s of tenant %s\n", st.Kind, st.Credential, st.Device, st.User, st.Tenant)
		fmt.Fprintf(e.stdout, "state: %s\n", state)
		return nil
	})
}

// decodeChallenge reads a challenge: base64 as the API shows it, or a
// prefixed value.
func decodeChallenge(s string) ([]byte, error) {
	if strings.Contains(s, ":") {
		return testvectors.DecodeValue(s, ".")
	}
	return base64.StdEncoding.WithPadding(base64.NoPadding).Strict().DecodeString(strings.TrimRight(s, "="))
}

// addServerFlag adds --server to a command of an enrolled phone.
func (f *deviceFlags) addServerFlag(fs *flag.FlagSet) {
	f.server = fs.String("server", "", "the server's `URL`, when it moved (default: the one the phone enrolled with)")
}

// openPhone opens the phone of the state flags, pointed at --server when
// given.
func openPhone(f deviceFlags) (*device.Phone, error) {
	path, err := f.statePath()
	if err != nil {
		return nil, err
	}
	ph, err := device.Open(path)
	if err != nil {
		return nil, err
	}
	if f.server != nil && *f.server != "" {
		base, err := serverURL(*f.server)
		if err != nil {
			return nil, err
		}
		ph.SetServer(base)
	}
	return ph, nil
}

func runDevicePending(e *env, args []string) int {
	fs := newFlags(e, "keybind device pending [--state FILE] [--json]", `
List the sign-ins waiting for the phone: the attempt, who signs in, the
context the server gives (app, IP, location), the three numbers to choose
from (choose mode) or the request to type the sign-in page's number (type
mode), and the expiry. --json prints them as the server gives them.`+deviceExitHelp)
	f := addDeviceFlags(fs, false)
	f.addServerFlag(fs)
	timeout := addTimeout(fs)
	asJSON := fs.Bool("json", false, "print the pending sign-ins as JSON")
	if st := parseNoArgs(e, fs, args); st >= 0 {
		return st
	}
	return deviceRun(e, "pending", *timeout, func(ctx context.Context) error {
		ph, err := openPhone(f)
		if err != nil {
			return err
		}
		list, err := ph.Pending(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []client.PendingSignIn{}
			}
			b, err := json.MarshalIndent(map[string]any{"attempts": list}, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		}
		device.WritePending(e.stdout, list, time.Now())
		return nil
	})
}

func runDeviceApprove(e *env, args []string) int {
	return deviceAnswer(e, args, "approve", "keybind device approve --number N [--attempt ID] [--state FILE]", `
Approve the sign-in waiting for the phone (or --attempt) with --number: the
number the sign-in page shows (type mode), or the one of the three choices
it shows (choose mode). A wrong number is refused (signin.wrong_number) and
the server denies the sign-in.`)
}

func runDeviceDeny(e *env, args []string) int {
	return deviceAnswer(e, args, "deny", "keybind device deny [--attempt ID] [--state FILE]", `
Deny the sign-in waiting for the phone (or --attempt): the person did not
try to sign in.`)
}

func runDeviceFraud(e *env, args []string) int {
	return deviceAnswer(e, args, "fraud", "keybind device fraud [--attempt ID] [--state FILE]", `
Deny the sign-in waiting for the phone (or --attempt) and report it as
fraud.`)
}

// deviceAnswer runs approve, deny and fraud.
func deviceAnswer(e *env, args []string, decision, usageLine, description string) int {
	fs := newFlags(e, usageLine, description+"\n"+deviceExitHelp)
	f := addDeviceFlags(fs, false)
	f.addServerFlag(fs)
	timeout := addTimeout(fs)
	attempt := fs.String("attempt", "", "the sign-in `id` (default: the one waiting)")
	var number int
	if decision == "approve" {
		fs.IntVar(&number, "number", 0, "the `number` the sign-in page shows (required)")
	}
	if st := parseNoArgs(e, fs, args); st >= 0 {
		return st
	}
	return deviceRun(e, decision, *timeout, func(ctx context.Context) error {
		if decision == "approve" && !setFlags(fs)["number"] {
			return usageError("--number is required")
		}
		if number < 0 {
			return usageError("--number: not a number the sign-in page shows")
		}
		ph, err := openPhone(f)
		if err != nil {
			return err
		}
		s, err := ph.Attempt(ctx, *attempt)
		if err != nil {
			return err
		}
		answer := map[string]func() (*engine.Outcome, error){
			"approve": func() (*engine.Outcome, error) { return ph.Approve(ctx, s, number) },
			"deny":    func() (*engine.Outcome, error) { return ph.Deny(ctx, s) },
			"fraud":   func() (*engine.Outcome, error) { return ph.Fraud(ctx, s) },
		}[decision]
		out, err := answer()
		if err != nil {
			return err
		}
		line := out.State
		if out.Reason != "" {
			line += " (" + string(out.Reason) + ")"
		}
		_, err = fmt.Fprintf(e.stdout, "sign-in %s: %s\n", s.Attempt, line)
		return err
	})
}

func runDeviceInteractive(e *env, args []string) int {
	fs := newFlags(e, "keybind device interactive [--state FILE] [--poll DURATION]", `
The phone's screen in a terminal: ask the server for sign-ins every --poll,
show each new one (who, app, IP, location, the numbers, the time left) and
read the answer from standard input, one line: the number approves with
it, d denies, f reports fraud, q quits. A line typed while nothing waits is
ignored, never kept for a later sign-in. Standard input may be a pipe:
  echo 42 | keybind device interactive
answers the sign-in waiting and ends with the input.`+deviceExitHelp)
	f := addDeviceFlags(fs, false)
	f.addServerFlag(fs)
	poll := fs.Duration("poll", time.Second, "how often to ask the server for sign-ins")
	if st := parseNoArgs(e, fs, args); st >= 0 {
		return st
	}
	if *poll < 10*time.Millisecond {
		e.errorf("device interactive: --poll %v: at least 10ms", *poll)
		return 2
	}
	return deviceRun(e, "interactive", 0, func(ctx context.Context) error {
		ph, err := openPhone(f)
		if err != nil {
			return err
		}
		in := e.stdin
		if in == nil {
			in = strings.NewReader("")
		}
		err = ph.Interact(ctx, in, e.stdout, device.InteractOptions{Poll: *poll})
		if errors.Is(err, context.Canceled) {
			return nil // interrupted: the person left
		}
		return err
	})
}
