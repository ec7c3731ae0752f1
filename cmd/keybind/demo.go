package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keybind/keybind/client"
	"github.com/keybind/keybind/cmd/keybind/internal/demo"
	"github.com/keybind/keybind/cmd/keybind/internal/device"
	"github.com/keybind/keybind/engine"
)

// demoRootName is the name the demo's server trusts the development root
// under; only the demo tenant's policy names it.
const demoRootName = "keybind-demo-dev"

// demoOptions are the settings of `keybind demo`.
type demoOptions struct {
	addr, apiAddr   string
	data            string
	attemptLifetime time.Duration
	logLevel        string
}

func demoFlags(e *env) (*flag.FlagSet, *demoOptions) {
	o := &demoOptions{}
	fs := newFlags(e, "keybind demo [flags]", `
Run passwordless phone sign-in on this machine: a keybind server on a
loopback port, a demo tenant, and a sign-in page beside the simulated
phones that answer it. Open the printed URL, type a username, and tap on
the phone panel the number the page shows.

The demo prepares, through the server's API and idempotently (the data
directory is reused from run to run): the tenant "demo" (phone sign-in for
everyone, three numbers to choose from on the phone), a development
attestation root that only this tenant trusts, an auth_server key for the
page's backend, and these users:

  alice@demo.test     an enrolled Android phone
  carol@demo.test     an enrolled iPhone (App Attest)
  pat@demo.test       no phone: "use your password instead"
  bob@federated.test  a federated domain: sent to its federation page

Every demo password is "demo". The page's backend calls the keybind
server as an auth server does (start the sign-in, long-poll its outcome,
cancel it for the password); the phones fetch their pending sign-in with
signed requests and sign their answers with their hardware-attested keys
(simulated under the development root).

Ctrl-C stops the demo gracefully.`)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "`address` of the sign-in page (port 0: a free port)")
	fs.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:0", "`address` of the keybind server's API (port 0: a free port)")
	fs.StringVar(&o.data, "data", defaultDemoData(), "data `directory`: the server's store, the development root and the phones (reused; delete it to start afresh)")
	fs.DurationVar(&o.attemptLifetime, "attempt-lifetime", engine.DefaultAttemptLifetime, "how long a sign-in can be answered on the phone (the policy's bounds: 30s to 10m)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the server's log level: debug, info, warn or error")
	return fs, o
}

// defaultDemoData is the demo's data directory: under the user's cache
// directory, or ./keybind-demo without one.
func defaultDemoData() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "keybind", "demo")
	}
	return "keybind-demo"
}

func runDemo(e *env, args []string) int {
	fs, o := demoFlags(e)
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		e.errorf("demo: unexpected argument %q", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, st, err := startDemo(ctx, e, o)
	if err != nil {
		e.errorf("demo: %v", err)
		return st
	}
	d.printWelcome(e.stdout)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(e.stdout, "\nkeybind demo: stopping…")
	case <-d.failed:
	}
	if err := d.stop(); err != nil {
		e.errorf("demo: %v", err)
		return 1
	}
	return 0
}

// runningDemo is a started demo: its URLs and how to stop it.
type runningDemo struct {
	pageURL, apiURL, data string
	operatorKey           string
	site                  *demo.Site
	// failed is closed when a server stopped by itself.
	failed chan struct{}
	stop   func() error
}

// startDemo starts the keybind server and the sign-in site, and prepares
// the demo tenant. It returns the exit status to stop with on error.
func startDemo(ctx context.Context, e *env, o *demoOptions) (*runningDemo, int, error) {
	if o.attemptLifetime < engine.MinAttemptLifetime || o.attemptLifetime > engine.MaxAttemptLifetime || o.attemptLifetime%time.Second != 0 {
		return nil, 2, fmt.Errorf("--attempt-lifetime %v: want whole seconds from %v to %v", o.attemptLifetime, engine.MinAttemptLifetime, engine.MaxAttemptLifetime)
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, 1, err
	}
	root, err := device.OpenRoot(filepath.Join(o.data, "devroot"))
	if err != nil {
		return nil, 1, fmt.Errorf("the development root: %v", err)
	}
	opKey, err := randomKey()
	if err != nil {
		return nil, 1, err
	}
	log, err := newLogger(e, o.logLevel, "text")
	if err != nil {
		return nil, 2, err
	}

	// The server of `keybind serve`, with its defaults, on the demo's
	// store, trusting the development root under a name only the demo
	// tenant's policy uses.
	sfs, so := serveFlags(&env{stdout: io.Discard, stderr: io.Discard})
	if err := sfs.Parse(nil); err != nil {
		return nil, 1, err
	}
	so.addr = o.apiAddr
	so.data = filepath.Join(o.data, "store")
	so.roots = stringList{demoRootName + "=" + root.CertFile}
	so.operatorKey = opKey
	so.pollInterval = time.Second
	so.shutdownTimeout = 10 * time.Second
	b, err := buildServer(so, log)
	if err != nil {
		if b.status == 1 {
			err = fmt.Errorf("%v (is another keybind demo running on %s?)", err, o.data)
		}
		return nil, b.status, err
	}
	apiAddr, err := b.srv.Listen()
	if err != nil {
		b.close()
		return nil, 1, listenError("--api-addr", o.apiAddr, err)
	}
	pageLn, err := net.Listen("tcp", o.addr)
	if err != nil {
		b.close()
		return nil, 1, listenError("--addr", o.addr, err)
	}
	d := &runningDemo{
		pageURL: "http://" + pageLn.Addr().String(), apiURL: "http://" + apiAddr.String(),
		data: o.data, operatorKey: opKey, failed: make(chan struct{}),
	}
	var failOnce sync.Once
	fail := func() { failOnce.Do(func() { close(d.failed) }) }

	serveCtx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- b.srv.Serve(serveCtx)
		fail()
	}()
	stopAPI := func() error {
		stopServer()
		return <-served
	}

	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	site, err := demo.Setup(setupCtx, demo.SetupConfig{
		Server: d.apiURL, OperatorKey: opKey, Root: root, RootName: demoRootName,
		PhoneDir: filepath.Join(o.data, "phones"), FederationURL: d.pageURL + "/federation",
		AttemptLifetime: o.attemptLifetime,
	})
	if err != nil {
		pageLn.Close()
		stopAPI()
		return nil, 1, fmt.Errorf("preparing the demo tenant: %v", err)
	}
	d.site = site
	page, err := demo.NewPage(demo.PageConfig{
		Keybind:   client.New(d.apiURL, site.AuthKey),
		Phones:    site.Phones,
		Passwords: site.Passwords,
		Logger:    log,
	})
	if err != nil {
		pageLn.Close()
		stopAPI()
		return nil, 1, err
	}
	// The page's requests end when the demo stops: long polls included.
	pageCtx, stopPage := context.WithCancel(context.Background())
	hs := &http.Server{
		Handler:           page,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return pageCtx },
	}
	pageDone := make(chan error, 1)
	go func() {
		err := hs.Serve(pageLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			fail()
		}
		pageDone <- err
	}()
	d.stop = func() error {
		stopPage()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		perr := hs.Shutdown(sctx)
		if perr == nil {
			perr = <-pageDone
		}
		return errors.Join(perr, stopAPI())
	}
	return d, 0, nil
}

// listenError explains an address that cannot be listened on.
func listenError(flagName, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s: the address is already in use (another program listens there); choose another with %s, or port 0 for a free one", flagName, addr, flagName)
	}
	return fmt.Errorf("%s %s: %v", flagName, addr, err)
}

// randomKey returns a new random key of 32 bytes, base64url.
func randomKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// printWelcome prints the URLs and what to try.
func (d *runningDemo) printWelcome(w io.Writer) {
	fmt.Fprintf(w, "keybind demo: passwordless phone sign-in is running.\n\n")
	fmt.Fprintf(w, "  Sign-in page  %s/\n", d.pageURL)
	fmt.Fprintf(w, "  Phones        %s/phone   (also beside the sign-in form)\n", d.pageURL)
	fmt.Fprintf(w, "  keybind API   %s   (tenant %q)\n\n", d.apiURL, demo.Tenant)
	fmt.Fprintf(w, "Type one of these on the sign-in page (every password is %q):\n", demo.Password)
	for _, u := range demo.Users() {
		fmt.Fprintf(w, "  %-20s %s\n", u.UPN, u.About)
	}
	fmt.Fprintf(w, "  %-20s %s\n\n", demo.FederatedUser, "federated domain: sent to its federation server's page")
	if len(d.site.Enrolled) > 0 {
		fmt.Fprintf(w, "Enrolled just now through the enrollment API: the phone of %s.\n", strings.Join(d.site.Enrolled, ", "))
	}
	fmt.Fprintf(w, "Data: %s (kept for the next run; delete it to start afresh)\n", d.data)
	fmt.Fprintf(w, "Its audit log, while it runs (the operator's key changes every run):\n  KEYBIND_KEY=%s go run ./cmd/keybind admin audit --server %s --tenant %s\n", d.operatorKey, d.apiURL, demo.Tenant)
	fmt.Fprintf(w, "Ctrl-C stops the demo.\n")
}
