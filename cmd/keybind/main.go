// Command keybind is the keybind server and its tools: it verifies hardware
// key attestations (Android Key Attestation, Apple App Attest, TPM, WebAuthn),
// binds each key to one user in one tenant, and verifies the signed approvals
// of passwordless phone sign-in.
//
// Usage:
//
//	keybind <command> [arguments]
//
// Run `keybind help` for the list of commands and `keybind <command> --help`
// for the flags of one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand of keybind.
type command struct {
	name    string
	summary string
	// run executes the command with the arguments after its name and returns
	// the process exit status.
	run func(env *env, args []string) int
}

// env is what a command may touch: its input and output streams. Tests run
// commands with buffers (a nil stdin reads as empty).
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
}

func (e *env) errorf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "keybind: "+format+"\n", args...)
}

func commands() []*command {
	return []*command{
		{name: "demo", summary: "run passwordless phone sign-in on this machine: a sign-in page and simulated phones", run: runDemo},
		{name: "vectors", summary: "run test vectors (the CI interface)", run: runVectors},
		{name: "attest", summary: "verify one attestation and print its verdict and facts", run: runAttest},
		{name: "serve", summary: "run the keybind server (the verify endpoint and operations routes)", run: runServe},
		{name: "bench", summary: "measure the verify endpoint against its performance bar", run: runBench},
		{name: "admin", summary: "administer a data directory (export, import)", run: runAdmin},
		{name: "device", summary: "a simulated phone: enroll it, list and answer its sign-ins", run: runDevice},
	}
}

func main() {
	os.Exit(run(&env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin}, os.Args[1:]))
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run(e, []string{args[1], "--help"})
		}
		usage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(e, args[1:])
		}
	}
	e.errorf("unknown command %q (run 'keybind help' for the list)", name)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "keybind: hardware-bound keys for passwordless phone sign-in\n\nUsage:\n\n\tkeybind <command> [arguments]\n\nCommands:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'keybind <command> --help' for the flags of a command.\n")
}

// newFlags returns a flag set for a (sub)command whose --help prints the
// usage line, a description and the flags.
func newFlags(e *env, usageLine, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(usageLine, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n%s\n", usageLine, strings.TrimSpace(description))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args. It returns the exit status to stop with, or -1 to
// go on: --help prints the usage to stdout and stops with 0, a bad flag stops
// with 2.
func parseFlags(e *env, fs *flag.FlagSet, args []string) int {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.stdout)
		fs.Usage()
		return 0
	case err != nil:
		e.errorf("%v", err)
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", commandPath(fs.Name()))
		return 2
	}
	return -1
}

// commandPath is the command of a usage line: its leading lower-case
// words ("keybind admin user get" of "keybind admin user get ID").
func commandPath(usageLine string) string {
	var words []string
	for _, w := range strings.Fields(usageLine) {
		if w == "" || w[0] < 'a' || w[0] > 'z' {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// subcommands dispatches a command with sub-commands of its own (such as
// "vectors run" or "attest android"). Each entry's run gets the arguments
// after the sub-command's name.
func subcommands(e *env, parent, description string, subs []*command, args []string) int {
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: keybind %s <command> [arguments]\n\n%s\n\nCommands:\n\n", parent, strings.TrimSpace(description))
		width := 10
		for _, c := range subs {
			width = max(width, len(c.name))
		}
		for _, c := range subs {
			fmt.Fprintf(w, "\t%-*s %s\n", width, c.name, c.summary)
		}
		fmt.Fprintf(w, "\nRun 'keybind %s <command> --help' for the flags of a command.\n", parent)
	}
	if len(args) == 0 {
		help(e.stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		help(e.stdout)
		return 0
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	e.errorf("unknown command %q for 'keybind %s'", args[0], parent)
	help(e.stderr)
	return 2
}
