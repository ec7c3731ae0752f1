package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/androidkey"
	"github.com/keybind/keybind/cmd/keybind/internal/server"
	"github.com/keybind/keybind/engine"
	"github.com/keybind/keybind/store"
	"github.com/keybind/keybind/verify"
)

// version is the build's version, reported by /healthz.
var version = "dev"

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// serveOptions are the settings of `keybind serve`.
type serveOptions struct {
	addr                         string
	tlsCert, tlsKey              string
	readTimeout, writeTimeout    time.Duration
	idleTimeout, shutdownTimeout time.Duration
	maxConns, maxConnsPerIP      int
	bodyLimit, verifyBodyLimit   int
	verifyMaxItems               int
	workers, batchSize, maxQueue int
	batchWait                    time.Duration
	keyCache                     int
	keys                         stringList
	keysFile                     string
	data                         string
	operatorKey                  string
	roots                        stringList
	tpmVendorRoots               string
	androidRevocation            string
	revocationRefresh            time.Duration
	revocationMaxAge             time.Duration
	multiTenantDevices           bool
	rateLimit, verifyRateLimit   float64
	phoneRateLimit               float64
	phoneRateBurst               int
	rateBurst, verifyRateBurst   int
	pollInterval, maxWait        time.Duration
	requestWindow                time.Duration
	phoneBodyLimit               int
	logLevel, logFormat          string
	config                       string
}

func serveFlags(e *env) (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := newFlags(e, "keybind serve [flags]", `
Start the keybind server on its data directory (--data, a Pebble database,
created when absent): the API of auth servers (sign-ins, enrollments), of
phones (attestations, signed requests, answers) and of administrators
(tenants, policies, users, groups, devices, credentials, API keys, audit,
export), the stateless verify endpoint (POST /v1/verify) and the
operations routes (/healthz, /readyz, /metrics, /v1/openapi.json). It stops
on SIGINT or SIGTERM: it stops accepting, lets the requests in flight
finish, then closes its resources, the store last (a second signal stops
it at once).

Every flag can also be set by an environment variable, KEYBIND_ followed
by the flag's name in capitals with dashes as underscores (KEYBIND_ADDR,
KEYBIND_DATA, …), or in a JSON config file (--config) whose members are the
flags' names ({"addr": "0.0.0.0:8443", "keys-file": "keys.txt"}). A flag
wins over the environment, which wins over the file.

The operator's key (--operator-key KEY, or sha256:HEX to configure only
its SHA-256) creates tenants and their first API keys and administers every
tenant (keybind admin --help). Tenants' API keys are made through the API
and stored hashed. Static keys (--key, repeatable; KEYBIND_KEYS,
comma-separated; --keys-file, one per line; all of them count) have the form
TENANT:ROLE:KEY, or TENANT:ROLE:sha256:HEX; ROLE is verify (POST /v1/verify
only), auth_server or admin. A request presents its key as "Authorization:
Bearer KEY". Each key may make --rate-limit requests per second (bursts of
--rate-burst); POST /v1/verify has its own --verify-rate-limit (0: none,
the default; the pipeline refuses work past --max-queue).

A tenant's attestation policy may name extra trust anchors configured here
(--root NAME=FILE.pem, repeatable; KEYBIND_ROOTS, comma-separated), such as
a development root for a demo tenant. --tpm-vendor-roots is a PEM file of
the TPM vendors' EK roots trusted for every tenant that trusts EK
certificates (keybind embeds none).

--android-revocation names Google's revocation status list of Android
attestation certificates: a file, or the URL Google publishes it at
(https://android.googleapis.com/attestation/status). keybind reads it at
start (and refuses to start when it cannot), reads it again every
--android-revocation-refresh, and keeps using the last list read for at most
--android-revocation-max-age when it cannot be refreshed; past that, Android
attestations are refused (chain.revocation_unavailable) and /readyz fails,
until the list can be read again. Every certificate of every android-key
chain, WebAuthn android-key statements included, is checked against it.

Serve TLS with --tls-cert and --tls-key; without them the server speaks
plain HTTP, which is only safe on loopback or behind a TLS proxy.`)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8443", "`address` to listen on (port 0 picks a free port)")
	fs.StringVar(&o.data, "data", "keybind-data", "data `directory` (Pebble; created when absent; one process at a time)")
	fs.StringVar(&o.operatorKey, "operator-key", "", "the operator's `key` (at least 16 characters) or sha256:HEX")
	fs.Var(&o.roots, "root", "a named trust anchor `NAME=FILE.pem` tenants' policies may name in extra_roots (repeatable)")
	fs.StringVar(&o.tpmVendorRoots, "tpm-vendor-roots", "", "PEM `file` of TPM vendor EK roots trusted for every tenant")
	fs.StringVar(&o.androidRevocation, "android-revocation", "", "Android attestation revocation status list: a `file` or an http(s) URL (none by default)")
	fs.DurationVar(&o.revocationRefresh, "android-revocation-refresh", time.Hour, "how often the Android revocation list is read again")
	fs.DurationVar(&o.revocationMaxAge, "android-revocation-max-age", 24*time.Hour, "how long the last Android revocation list read may be used while it cannot be refreshed")
	fs.BoolVar(&o.multiTenantDevices, "multi-tenant-devices", false, "let a device hold one account in each of several tenants")
	fs.Float64Var(&o.rateLimit, "rate-limit", 100, "requests per second allowed to one API key (0: no limit), except POST /v1/verify")
	fs.IntVar(&o.rateBurst, "rate-burst", 200, "requests one API key may make in a burst")
	fs.Float64Var(&o.verifyRateLimit, "verify-rate-limit", 0, "POST /v1/verify requests per second allowed to one API key (0: no limit)")
	fs.IntVar(&o.verifyRateBurst, "verify-rate-burst", 0, "POST /v1/verify requests one API key may make in a burst (0: twice the rate)")
	fs.Float64Var(&o.phoneRateLimit, "phone-rate-limit", 5, "requests per second allowed to one enrollment or one credential on the phone routes, counted before any signature is checked (0: no limit)")
	fs.IntVar(&o.phoneRateBurst, "phone-rate-burst", 20, "requests one enrollment or credential may make in a burst")
	fs.DurationVar(&o.pollInterval, "poll-interval", 2*time.Second, "how often auth servers are told to poll a sign-in's outcome")
	fs.DurationVar(&o.maxWait, "max-wait", 30*time.Second, "longest wait of a long poll of a sign-in's outcome")
	fs.DurationVar(&o.requestWindow, "request-window", 5*time.Minute, "how far a phone's signed request may be from the server's clock")
	fs.IntVar(&o.phoneBodyLimit, "phone-body-limit", 256<<10, "request body limit of the enrollment routes in `bytes` (attestations)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate chain `file` for TLS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` for TLS")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "time allowed to read a request")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "time allowed to write a response")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 60*time.Second, "time a kept-alive connection may wait for its next request")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "time allowed to drain in-flight requests at shutdown")
	fs.IntVar(&o.maxConns, "max-conns", 10000, "open connections allowed in all")
	fs.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", 512, "open connections allowed from one IP address")
	fs.IntVar(&o.bodyLimit, "body-limit", 64<<10, "request body limit in `bytes` of routes without their own")
	fs.IntVar(&o.verifyBodyLimit, "verify-body-limit", 1<<20, "request body limit of /v1/verify in `bytes`")
	fs.IntVar(&o.verifyMaxItems, "verify-max-items", 256, "items allowed in one /v1/verify request")
	fs.IntVar(&o.workers, "workers", 0, "signature-verifying workers (0: one per core)")
	fs.IntVar(&o.batchSize, "batch-size", 64, "Ed25519 signatures verified together at most (ECDSA batches: a quarter of it)")
	fs.DurationVar(&o.batchWait, "batch-wait", 200*time.Microsecond, "longest wait of queued Ed25519 signatures for the running batches before another core starts one (negative: no limit on Ed25519 workers)")
	fs.IntVar(&o.maxQueue, "max-queue", 65536, "signatures allowed to wait for a worker before requests are refused with 429")
	fs.IntVar(&o.keyCache, "key-cache", 65536, "parsed public keys cached (per cache: by credential id, by encoded key)")
	fs.Var(&o.keys, "key", "API key `TENANT:ROLE:KEY` or TENANT:ROLE:sha256:HEX (repeatable)")
	fs.StringVar(&o.keysFile, "keys-file", "", "`file` of API keys, one per line (# starts a comment)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.config, "config", "", "JSON config `file` (members named like the flags)")
	return fs, o
}

func runServe(e *env, args []string) int {
	fs, o := serveFlags(e)
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		e.errorf("serve: unexpected argument %q", fs.Arg(0))
		return 2
	}
	if err := applyEnvAndConfig(fs, o); err != nil {
		e.errorf("serve: %v", err)
		return 2
	}
	log, err := newLogger(e, o.logLevel, o.logFormat)
	if err != nil {
		e.errorf("serve: %v", err)
		return 2
	}
	b, err := buildServer(o, log)
	if err != nil {
		e.errorf("serve: %v", err)
		return b.status
	}
	s, closeAll := b.srv, b.close
	addr, err := s.Listen()
	if err != nil {
		e.errorf("serve: %v", err)
		closeAll()
		return 1
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsLoopback() && o.tlsCert == "" {
		log.Warn("serving plain HTTP on a non-loopback address: API keys travel in clear unless a TLS proxy fronts the server", "addr", addr.String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := s.Serve(ctx); err != nil {
		e.errorf("serve: %v", err)
		return 1
	}
	return 0
}

// builtServer is the server of `keybind serve`, built from its options and
// ready to Listen, or the exit status of a failed build.
type builtServer struct {
	srv *server.Server
	// close releases the verify pipeline and the store while the server
	// does not serve; once Serve runs, its shutdown closes them.
	close func()
	// status is the exit status of a failed build: 2 for bad settings, 1
	// for a data directory that cannot be opened.
	status int
}

// buildServer builds the server from the options (keys, roots, TLS,
// revocation list, store, engine, verify pipeline and routes). On error the
// builtServer carries the exit status and holds nothing open.
func buildServer(o *serveOptions, log *slog.Logger) (*builtServer, error) {
	bad := &builtServer{status: 2}
	keys, err := loadKeys(o)
	if err != nil {
		return bad, err
	}
	// Static keys first: the verify endpoint's callers usually hold one.
	auth := server.Authenticators{keys}
	if o.operatorKey != "" {
		op, err := server.ParseOperatorKey(o.operatorKey)
		if err != nil {
			return bad, err
		}
		auth = append(auth, op)
	} else {
		log.Warn("no operator key: tenants cannot be created through the API (see keybind serve --help, --operator-key)")
	}
	roots, err := loadRoots(o)
	if err != nil {
		return bad, err
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" || o.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return bad, fmt.Errorf("TLS: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	revocation, err := loadRevocation(o)
	if err != nil {
		return bad, fmt.Errorf("--android-revocation: %v", err)
	}
	var tpmRoots []*x509.Certificate
	if o.tpmVendorRoots != "" {
		if tpmRoots, err = readPEMCertificates(o.tpmVendorRoots); err != nil {
			return bad, fmt.Errorf("--tpm-vendor-roots: %v", err)
		}
	}
	s := server.New(server.Config{
		Addr:            o.addr,
		ReadTimeout:     o.readTimeout,
		WriteTimeout:    o.writeTimeout,
		IdleTimeout:     o.idleTimeout,
		ShutdownTimeout: o.shutdownTimeout,
		MaxConns:        o.maxConns,
		MaxConnsPerIP:   o.maxConnsPerIP,
		BodyLimit:       o.bodyLimit,
		Logger:          log,
		Version:         version,
		RateLimit:       server.RateLimit{Rate: o.rateLimit, Burst: o.rateBurst},
		VerifyRateLimit: server.RateLimit{Rate: o.verifyRateLimit, Burst: o.verifyRateBurst},
	})
	st, err := store.Open(o.data, store.Options{
		Observe: s.StoreObserver(),
		Logf:    func(format string, args ...any) { log.Error(fmt.Sprintf(format, args...), "component", "pebble") },
	})
	if err != nil {
		return &builtServer{status: 1}, err
	}
	// Registered first, so closed last: after the drain and every other
	// resource.
	s.OnShutdown(st.Close)
	if revocation != nil {
		// Readiness reads the list again when it is due, so that it stays
		// fresh even while no Android attestation comes.
		s.ReadyCheck("android-revocation", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := revocation.List(ctx)
			return err
		})
	}
	p := verify.New(verify.Options{Workers: o.workers, MaxBatch: o.batchSize, MaxWait: o.batchWait, MaxQueue: o.maxQueue})
	eng, err := engine.New(engine.Config{
		Store:              st,
		Verifiers:          engine.Verifiers(revocation),
		PlainSignatures:    server.PipelineSignatures(p, o.keyCache),
		Roots:              roots,
		TPMVendorRoots:     tpmRoots,
		MultiTenantDevices: o.multiTenantDevices,
		RequestWindow:      o.requestWindow,
	})
	if err != nil {
		p.Close()
		st.Close()
		return bad, err
	}
	engineKeys := server.NewEngineKeys(eng, o.keyCache)
	s.SetAuthenticator(append(auth, engineKeys))
	s.EnableVerify(server.VerifyConfig{
		Pipeline:        p,
		Keys:            server.EngineKeyResolver(eng),
		MaxItems:        o.verifyMaxItems,
		BodyLimit:       o.verifyBodyLimit,
		CredentialCache: o.keyCache,
		PublicKeyCache:  o.keyCache,
	})
	s.EnableEngine(server.EngineConfig{
		Engine:         eng,
		Store:          st,
		Keys:           engineKeys,
		PollInterval:   o.pollInterval,
		MaxWait:        o.maxWait,
		PhoneBodyLimit: o.phoneBodyLimit,
		PhoneRateLimit: server.RateLimit{Rate: o.phoneRateLimit, Burst: o.phoneRateBurst},
	})
	// Until Serve runs, nothing closes them: a caller that cannot serve
	// closes them with builtServer.close.
	closeAll := func() { p.Close(); st.Close() }
	if tlsConfig != nil {
		s.UseTLS(tlsConfig)
	}
	return &builtServer{srv: s, close: closeAll}, nil
}

// applyEnvAndConfig fills the flags not given on the command line from the
// environment, then from the config file.
func applyEnvAndConfig(fs *flag.FlagSet, o *serveOptions) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		// Keys add up from every source; other settings take the first
		// source that sets them.
		list := f.Name == "key" || f.Name == "root"
		if (set[f.Name] && !list) || err != nil {
			return
		}
		env := "KEYBIND_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if list {
			env += "S"
		}
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		set[f.Name] = true
		if list {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					fs.Set(f.Name, k)
				}
			}
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%s: %v", env, serr)
		}
	})
	if err != nil || o.config == "" {
		return err
	}
	b, err := os.ReadFile(o.config)
	if err != nil {
		return err
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		return fmt.Errorf("%s: %v", o.config, err)
	}
	for name, raw := range file {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("%s: unknown setting %q", o.config, name)
		}
		if set[name] {
			continue
		}
		if name == "key" || name == "operator-key" {
			return fmt.Errorf("%s: keep API keys in a keys file (\"keys-file\") or the environment, not in the config", o.config)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: %s: %v", o.config, name, err)
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		default:
			return fmt.Errorf("%s: %s: want a string, a number or a boolean", o.config, name)
		}
		values := []string{s}
		if name == "root" {
			values = strings.Split(s, ",")
		}
		for _, v := range values {
			if err := fs.Set(name, strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("%s: %s: %v", o.config, name, err)
			}
		}
	}
	return nil
}

// loadKeys reads the API keys of --key, KEYBIND_KEYS and --keys-file.
func loadKeys(o *serveOptions) (*server.StaticKeys, error) {
	specs := append([]string(nil), o.keys...)
	if o.keysFile != "" {
		f, err := os.Open(o.keysFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			specs = append(specs, line)
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return server.ParseStaticKeys(specs)
}

// loadRevocation reads the Android revocation status list of
// --android-revocation once, so that a list that cannot be read stops the
// start instead of refusing every Android enrollment later.
func loadRevocation(o *serveOptions) (*androidkey.StatusSource, error) {
	if o.androidRevocation == "" {
		return nil, nil
	}
	src := &androidkey.StatusSource{Location: o.androidRevocation, Refresh: o.revocationRefresh, MaxAge: o.revocationMaxAge}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := src.List(ctx); err != nil {
		return nil, err
	}
	return src, nil
}

// loadRoots reads the named trust anchors of --root NAME=FILE.
func loadRoots(o *serveOptions) (map[string][]*x509.Certificate, error) {
	roots := map[string][]*x509.Certificate{}
	for _, spec := range o.roots {
		name, file, ok := strings.Cut(spec, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--root %q: want NAME=FILE.pem", spec)
		}
		if _, dup := roots[name]; dup {
			return nil, fmt.Errorf("--root: %q is configured twice", name)
		}
		certs, err := readPEMCertificates(file)
		if err != nil {
			return nil, fmt.Errorf("--root %s: %v", name, err)
		}
		roots[name] = certs
	}
	return roots, nil
}

// readPEMCertificates reads the certificates of a PEM (or DER) file.
func readPEMCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return attest.ParseCertificates(b)
}

func newLogger(e *env, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	}
	return nil, errors.New("--log-format: json or text")
}
