package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keybind/keybind/client"
)

// The `keybind admin` commands that call a running server's API: what an
// operator or a tenant admin does from a shell.

// adminAPIHelp is the part of every such command's help that says how it
// reaches the server.
const adminAPIHelp = `
The server is --server (KEYBIND_SERVER; default http://127.0.0.1:8443), the
key --key (KEYBIND_KEY): a tenant's admin key, or the operator's key (which
acts on any tenant and alone creates tenants and exports). Prefer
KEYBIND_KEY to --key: command lines are visible to other users. The tenant
is --tenant (KEYBIND_TENANT); with an admin key it defaults to the key's.

The answer is printed as JSON. A refusal prints the server's code and
detail ("keybind: 404 user.not_found: no such user") and exits 1; bad
arguments exit 2.`

// adminCall is a command's connection to the server.
type adminCall struct {
	e      *env
	fs     *flag.FlagSet
	c      *client.Client
	tenant string
	args   []string
	ctx    context.Context
}

// adminCommand runs one API command: it parses the flags (anywhere among
// the arguments), checks the number of arguments (nargs; -1 for zero or
// one), and runs do, printing its error.
func adminCommand(e *env, usageLine, description string, nargs int, setup func(fs *flag.FlagSet), do func(a *adminCall) error) func(args []string) int {
	return func(args []string) int {
		fs := newFlags(e, usageLine, strings.TrimSpace(description)+"\n"+adminAPIHelp)
		server := fs.String("server", "", "the server's `URL` (KEYBIND_SERVER; default http://127.0.0.1:8443)")
		key := fs.String("key", "", "the API `key` (KEYBIND_KEY)")
		tenant := fs.String("tenant", "", "the `tenant` (KEYBIND_TENANT; default: the admin key's)")
		timeout := fs.Duration("timeout", time.Minute, "how long to wait for the server")
		if setup != nil {
			setup(fs)
		}
		positional, st := parseInterspersed(e, fs, args)
		if st >= 0 {
			return st
		}
		if nargs >= 0 && len(positional) != nargs || nargs == -1 && len(positional) > 1 {
			e.errorf("%s: wrong number of arguments (usage: %s)", strings.TrimPrefix(fs.Name(), "keybind "), usageLine)
			return 2
		}
		a := &adminCall{e: e, fs: fs, args: positional, tenant: firstOf(*tenant, os.Getenv("KEYBIND_TENANT"))}
		base, err := serverURL(*server)
		if err != nil {
			e.errorf("%v", err)
			return 2
		}
		a.c = client.New(base, firstOf(*key, os.Getenv("KEYBIND_KEY")))
		if a.c.Key == "" {
			e.errorf("no API key: set KEYBIND_KEY (or --key)")
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		a.ctx = ctx
		if err := do(a); err != nil {
			var p *client.Problem
			var ue usageError
			switch {
			case errors.As(err, &ue):
				e.errorf("%v", err)
				return 2
			case errors.As(err, &p):
				e.errorf("%d %s: %s", p.Status, p.Code, p.Detail)
			default:
				e.errorf("%v", err)
			}
			return 1
		}
		return 0
	}
}

// usageError is a mistake in the arguments (exit status 2).
type usageError string

func (u usageError) Error() string { return string(u) }

// parseInterspersed parses flags anywhere among the arguments and returns
// the others in order; the status is as parseFlags's.
func parseInterspersed(e *env, fs *flag.FlagSet, args []string) ([]string, int) {
	var positional []string
	for {
		if st := parseFlags(e, fs, args); st >= 0 {
			return nil, st
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, -1
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), -1
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// serverURL returns the server's URL: flag, KEYBIND_SERVER or the
// default, checked to be http(s)://host[:port].
func serverURL(flag string) (string, error) {
	base := firstOf(flag, os.Getenv("KEYBIND_SERVER"), "http://127.0.0.1:8443")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError(fmt.Sprintf("--server %q: want http(s)://host[:port]", base))
	}
	return base, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// tenantID returns the tenant to act on: --tenant, or the only tenant the
// key sees (an admin key's own).
func (a *adminCall) tenantID() (string, error) {
	if a.tenant != "" {
		return a.tenant, nil
	}
	var list struct {
		Tenants []struct {
			ID string `json:"id"`
		} `json:"tenants"`
	}
	if err := a.c.Do(a.ctx, "GET", "/v1/tenants", nil, &list); err != nil {
		return "", err
	}
	if len(list.Tenants) != 1 {
		return "", usageError("give the tenant: --tenant (or KEYBIND_TENANT)")
	}
	return list.Tenants[0].ID, nil
}

// path returns the tenant's path followed by parts (escaped).
func (a *adminCall) path(parts ...string) (string, error) {
	t, err := a.tenantID()
	if err != nil {
		return "", err
	}
	p := "/v1/tenants/" + url.PathEscape(t)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p, nil
}

// call sends a request and prints the JSON answer (nothing for 204).
func (a *adminCall) call(method, path string, body any) error {
	var raw json.RawMessage
	if err := a.c.Do(a.ctx, method, path, body, &raw); err != nil {
		return err
	}
	return a.print(raw)
}

func (a *adminCall) print(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(raw), "", "  "); err != nil {
		out.Reset()
		out.Write(raw)
	}
	out.WriteByte('\n')
	_, err := a.e.stdout.Write(out.Bytes())
	return err
}

// tenantCall calls a route of the tenant: parts after /v1/tenants/{tenant}.
func (a *adminCall) tenantCall(method string, body any, parts ...string) error {
	p, err := a.path(parts...)
	if err != nil {
		return err
	}
	return a.call(method, p, body)
}

// list is a comma-separated flag value.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// readJSONArg reads a JSON document from a file, or standard input for "-".
func (a *adminCall) readJSONArg(name string) (json.RawMessage, error) {
	var b []byte
	var err error
	if name == "-" {
		if a.e.stdin == nil {
			return nil, usageError("no standard input")
		}
		b, err = io.ReadAll(io.LimitReader(a.e.stdin, 1<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, usageError(name + " is not JSON")
	}
	return json.RawMessage(b), nil
}

// parseSince reads a time: RFC 3339, or a duration meaning that long ago
// ("24h", "90m").
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, usageError(fmt.Sprintf("%q is neither an RFC 3339 time nor a duration such as 24h", s))
}

func runAdminTenant(e *env, args []string) int {
	return subcommands(e, "admin tenant", "Create, read and change tenants and their phone sign-in policy.", adminTenantCommands(e), args)
}

func adminTenantCommands(e *env) []*command {
	return []*command{
		{name: "create", summary: "create a tenant (operator)", run: cmdRun(adminCommand(e, "keybind admin tenant create ID [--name NAME] [--policy FILE]", `
Create a tenant (the operator's key). Its policy is --policy (a JSON file,
- for standard input; see the README, "Phone sign-in engine"), or the safe
default: phone sign-in off. Then issue its first keys: keybind admin key
create --tenant ID --role admin.`, 1, func(fs *flag.FlagSet) {
			fs.String("name", "", "the tenant's display `name`")
			fs.String("policy", "", "JSON policy `file` (- for standard input)")
		}, func(a *adminCall) error {
			body := map[string]any{"id": a.args[0]}
			if n := a.fs.Lookup("name").Value.String(); n != "" {
				body["name"] = n
			}
			if f := a.fs.Lookup("policy").Value.String(); f != "" {
				p, err := a.readJSONArg(f)
				if err != nil {
					return err
				}
				body["policy"] = p
			}
			return a.call("POST", "/v1/tenants", body)
		}))},
		{name: "get", summary: "print a tenant", run: cmdRun(adminCommand(e, "keybind admin tenant get [ID]", "Print a tenant with its policy.", -1, nil, func(a *adminCall) error {
			if len(a.args) == 1 {
				a.tenant = a.args[0]
			}
			return a.tenantCall("GET", nil)
		}))},
		{name: "list", summary: "list the tenants", run: cmdRun(adminCommand(e, "keybind admin tenant list", "List the tenants (the operator sees all, an admin key its own).", 0, nil, func(a *adminCall) error {
			return a.call("GET", "/v1/tenants", nil)
		}))},
		{name: "update", summary: "rename a tenant", run: cmdRun(adminCommand(e, "keybind admin tenant update --name NAME", "Change a tenant's display name.", 0, func(fs *flag.FlagSet) {
			fs.String("name", "", "the new display `name`")
		}, func(a *adminCall) error {
			if !setFlags(a.fs)["name"] {
				return usageError("give --name")
			}
			return a.tenantCall("PATCH", map[string]any{"name": a.fs.Lookup("name").Value.String()})
		}))},
		{name: "policy", summary: "print or change the phone sign-in policy", run: func(e *env, args []string) int {
			return subcommands(e, "admin tenant policy", "Print or change a tenant's phone sign-in policy.", adminPolicyCommands(e), args)
		}},
	}
}

// cmdRun adapts a command function to the command table.
func cmdRun(f func(args []string) int) func(e *env, args []string) int {
	return func(_ *env, args []string) int { return f(args) }
}

func adminPolicyCommands(e *env) []*command {
	return []*command{
		{name: "get", summary: "print the policy (as stored and with its defaults)", run: cmdRun(adminCommand(e, "keybind admin tenant policy get", `
Print the tenant's policy: as stored ("policy") and with every default
filled in ("effective").`, 0, nil, func(a *adminCall) error {
			return a.tenantCall("GET", nil, "policy")
		}))},
		{name: "set", summary: "replace the policy, or change parts of it", run: cmdRun(adminCommand(e, "keybind admin tenant policy set [FILE|-] [--enabled[=BOOL]] [--all-users] [--groups G,…] [--exclude-groups G,…] [--number-matching type|choose] [--max-installs N]", `
Replace the tenant's policy with the JSON document FILE (- for standard
input), or change the parts the flags name in the current policy (for
instance, turn phone sign-in on for two groups:
keybind admin tenant policy set --enabled --groups staff,it). The new policy
applies at once, to enrollments and to every sign-in.`, -1, func(fs *flag.FlagSet) {
			fs.Bool("enabled", false, "phone sign-in on (--enabled=false: off)")
			fs.Bool("all-users", false, "target every user")
			fs.String("groups", "", "target these `groups` (comma-separated)")
			fs.String("exclude-groups", "", "never target these `groups`")
			fs.String("number-matching", "", "type (the person types the number) or choose (picks it among three)")
			fs.Int("max-installs", 0, "phone sign-in installs per user")
		}, func(a *adminCall) error {
			set := setFlags(a.fs)
			delete(set, "server")
			delete(set, "key")
			delete(set, "tenant")
			delete(set, "timeout")
			path, err := a.path("policy")
			if err != nil {
				return err
			}
			if len(a.args) == 1 {
				if len(set) > 0 {
					return usageError("give a policy file or flags, not both")
				}
				p, err := a.readJSONArg(a.args[0])
				if err != nil {
					return err
				}
				return a.call("PUT", path, p)
			}
			if len(set) == 0 {
				return usageError("give a policy file or flags that change it")
			}
			var cur struct {
				Policy map[string]any `json:"policy"`
			}
			if err := a.c.Do(a.ctx, "GET", path, nil, &cur); err != nil {
				return err
			}
			p := cur.Policy
			target, _ := p["target"].(map[string]any)
			if target == nil {
				target = map[string]any{}
			}
			get := func(name string) string { return a.fs.Lookup(name).Value.String() }
			if set["enabled"] {
				p["enabled"], _ = strconv.ParseBool(get("enabled"))
			}
			if set["all-users"] {
				target["all_users"], _ = strconv.ParseBool(get("all-users"))
			}
			if set["groups"] {
				target["groups"] = splitList(get("groups"))
			}
			if set["exclude-groups"] {
				target["exclude_groups"] = splitList(get("exclude-groups"))
			}
			p["target"] = target
			if set["number-matching"] {
				p["number_matching"] = get("number-matching")
			}
			if set["max-installs"] {
				p["max_installs"], _ = strconv.Atoi(get("max-installs"))
			}
			return a.call("PUT", path, p)
		}))},
	}
}

func runAdminUser(e *env, args []string) int {
	return subcommands(e, "admin user", "Create, list, read, change and delete a tenant's users.", adminUserCommands(e), args)
}

func userFlags(fs *flag.FlagSet) {
	fs.String("upn", "", "the user's sign-in name (user@domain)")
	fs.String("name", "", "the display `name`")
	fs.String("groups", "", "the user's `groups` (comma-separated)")
	fs.Bool("mfa-push", false, "the user has registered for multi-factor push (only such users can enroll)")
}

// userBody builds a user request from the flags given.
func userBody(fs *flag.FlagSet) map[string]any {
	set := setFlags(fs)
	body := map[string]any{}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	if set["upn"] {
		body["upn"] = get("upn")
	}
	if set["name"] {
		body["display_name"] = get("name")
	}
	if set["groups"] {
		body["groups"] = splitList(get("groups"))
	}
	if set["mfa-push"] {
		body["mfa_push"], _ = strconv.ParseBool(get("mfa-push"))
	}
	return body
}

func adminUserCommands(e *env) []*command {
	return []*command{
		{name: "create", summary: "create a user", run: cmdRun(adminCommand(e, "keybind admin user create --upn UPN [--id ID] [--name NAME] [--groups G,…] [--mfa-push]", `
Create a user of the tenant. Without --id the server makes one.`, 0, func(fs *flag.FlagSet) {
			userFlags(fs)
			fs.String("id", "", "the user's `id` (default: one is made)")
		}, func(a *adminCall) error {
			body := userBody(a.fs)
			if _, ok := body["upn"]; !ok {
				return usageError("give --upn")
			}
			if id := a.fs.Lookup("id").Value.String(); id != "" {
				body["id"] = id
			}
			return a.tenantCall("POST", body, "users")
		}))},
		{name: "list", summary: "list users", run: cmdRun(adminCommand(e, "keybind admin user list [--upn UPN] [--group GROUP]", "List the tenant's users, or those with a UPN or in a group.", 0, func(fs *flag.FlagSet) {
			fs.String("upn", "", "only the user with this `UPN`")
			fs.String("group", "", "only the members of this `group`")
		}, func(a *adminCall) error {
			p, err := a.path("users")
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, n := range []string{"upn", "group"} {
				if v := a.fs.Lookup(n).Value.String(); v != "" {
					q.Set(n, v)
				}
			}
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			return a.call("GET", p, nil)
		}))},
		{name: "get", summary: "print a user", run: cmdRun(adminCommand(e, "keybind admin user get ID", "Print a user.", 1, nil, func(a *adminCall) error {
			return a.tenantCall("GET", nil, "users", a.args[0])
		}))},
		{name: "update", summary: "change a user", run: cmdRun(adminCommand(e, "keybind admin user update ID [--upn UPN] [--name NAME] [--groups G,…] [--mfa-push=BOOL]", `
Change what the flags name of a user; the rest keeps its value.`, 1, userFlags, func(a *adminCall) error {
			body := userBody(a.fs)
			if len(body) == 0 {
				return usageError("give what to change: --upn, --name, --groups or --mfa-push")
			}
			return a.tenantCall("PATCH", body, "users", a.args[0])
		}))},
		{name: "delete", summary: "delete a user and their credentials", run: cmdRun(adminCommand(e, "keybind admin user delete ID", "Delete a user with every phone sign-in credential they hold.", 1, nil, func(a *adminCall) error {
			return a.tenantCall("DELETE", nil, "users", a.args[0])
		}))},
	}
}

func runAdminGroup(e *env, args []string) int {
	return subcommands(e, "admin group", "List a tenant's groups.", []*command{
		{name: "list", summary: "list the groups and their members", run: cmdRun(adminCommand(e, "keybind admin group list", "List the groups the tenant's users belong to, with their members.", 0, nil, func(a *adminCall) error {
			return a.tenantCall("GET", nil, "groups")
		}))},
	}, args)
}

// idCommands are list, get and the actions on one id of a kind (devices,
// credentials).
func idCommands(e *env, kind, plural string, actions [][3]string, listSetup func(fs *flag.FlagSet), listQuery func(a *adminCall) string) []*command {
	cmds := []*command{
		{name: "list", summary: "list the tenant's " + plural, run: cmdRun(adminCommand(e, "keybind admin "+kind+" list", "List the tenant's "+plural+".", 0, listSetup, func(a *adminCall) error {
			p, err := a.path(plural)
			if err != nil {
				return err
			}
			if listQuery != nil {
				p += listQuery(a)
			}
			return a.call("GET", p, nil)
		}))},
		{name: "get", summary: "print a " + kind, run: cmdRun(adminCommand(e, "keybind admin "+kind+" get ID", "Print a "+kind+".", 1, nil, func(a *adminCall) error {
			return a.tenantCall("GET", nil, plural, a.args[0])
		}))},
	}
	for _, act := range actions {
		name, summary, desc := act[0], act[1], act[2]
		method, parts := "POST", []string{name}
		if name == "delete" {
			method, parts = "DELETE", nil
		}
		cmds = append(cmds, &command{name: name, summary: summary, run: cmdRun(adminCommand(e, "keybind admin "+kind+" "+name+" ID", desc, 1, nil, func(a *adminCall) error {
			return a.tenantCall(method, nil, append([]string{plural, a.args[0]}, parts...)...)
		}))})
	}
	return cmds
}

func runAdminDevice(e *env, args []string) int {
	return subcommands(e, "admin device", "List, read, disable, enable and delete a tenant's devices.", idCommands(e, "device", "devices", [][3]string{
		{"disable", "disable a device", "Disable a device in the tenant: its credentials get no sign-ins, and their requests are refused."},
		{"enable", "enable a device again", "Enable a disabled device."},
		{"delete", "delete a device with its credentials", "Remove a device from the tenant with every credential of the tenant on it."},
	}, nil, nil), args)
}

func runAdminCredential(e *env, args []string) int {
	return subcommands(e, "admin credential", "List, read, disable, enable, re-verify and delete a tenant's credentials.", idCommands(e, "credential", "credentials", [][3]string{
		{"disable", "disable a credential", "Disable a credential: it gets no sign-ins and its requests and answers are refused."},
		{"enable", "enable a credential again", "Enable a disabled credential."},
		{"reverify", "verify a credential's attestation again", "Verify a credential's stored attestation again, under the tenant's current policy, at the time it enrolled."},
		{"delete", "delete a credential", "Delete a credential. Its key stays registered: it can never enroll again."},
	}, func(fs *flag.FlagSet) {
		fs.String("user", "", "only the credentials of this user `id`")
	}, func(a *adminCall) string {
		if u := a.fs.Lookup("user").Value.String(); u != "" {
			return "?user=" + url.QueryEscape(u)
		}
		return ""
	}), args)
}

func runAdminKey(e *env, args []string) int {
	return subcommands(e, "admin key", "Create, list and revoke a tenant's API keys.", []*command{
		{name: "create", summary: "create an API key (printed once)", run: cmdRun(adminCommand(e, "keybind admin key create --role ROLE [--name NAME]", `
Create an API key of the tenant with a role: auth_server (the login page:
sign-ins, enrollments, verify), admin (administers the tenant) or verify
(POST /v1/verify only). The key is printed this once: the server keeps
only its SHA-256.`, 0, func(fs *flag.FlagSet) {
			fs.String("role", "", "auth_server, admin or verify")
			fs.String("name", "", "what the key is for")
		}, func(a *adminCall) error {
			role := a.fs.Lookup("role").Value.String()
			if role == "" {
				return usageError("give --role (auth_server, admin or verify)")
			}
			return a.tenantCall("POST", map[string]string{"role": role, "name": a.fs.Lookup("name").Value.String()}, "keys")
		}))},
		{name: "list", summary: "list the API keys (never the keys themselves)", run: cmdRun(adminCommand(e, "keybind admin key list", "List the tenant's API keys: id, role, name, creation.", 0, nil, func(a *adminCall) error {
			return a.tenantCall("GET", nil, "keys")
		}))},
		{name: "revoke", summary: "revoke an API key", run: cmdRun(adminCommand(e, "keybind admin key revoke ID", "Revoke an API key: from the answer on, it authenticates nobody.", 1, nil, func(a *adminCall) error {
			return a.tenantCall("DELETE", nil, "keys", a.args[0])
		}))},
	}, args)
}

func runAdminAudit(e *env, args []string) int {
	return adminCommand(e, "keybind admin audit [--user ID] [--since TIME] [--until TIME] [--limit N] [--all]", `
Print the tenant's audit log, oldest first: every enrollment, refusal,
sign-in decision and admin change. TIME is RFC 3339 (2026-06-01T09:00:00Z)
or a duration meaning that long ago (24h). One page is printed with its
"next" cursor (--cursor reads the next page); --all prints every record.`, 0, func(fs *flag.FlagSet) {
		fs.String("user", "", "only the records of this user `id`")
		fs.String("since", "", "records at or after `TIME`")
		fs.String("until", "", "records before `TIME`")
		fs.Int("limit", 100, "records per page (1 to 1000)")
		fs.String("cursor", "", "the next page after this `cursor`")
		fs.Bool("all", false, "follow the pages and print every record")
	}, func(a *adminCall) error {
		get := func(n string) string { return a.fs.Lookup(n).Value.String() }
		since, err := parseSince(get("since"))
		if err != nil {
			return err
		}
		until, err := parseSince(get("until"))
		if err != nil {
			return err
		}
		limit, _ := strconv.Atoi(get("limit"))
		tenant, err := a.tenantID()
		if err != nil {
			return err
		}
		q := client.AuditQuery{User: get("user"), Since: since, Until: until, Limit: limit, Cursor: get("cursor")}
		all := get("all") == "true"
		var records []json.RawMessage
		for {
			page, err := a.c.Audit(a.ctx, tenant, q)
			if err != nil {
				return err
			}
			if !all {
				b, _ := json.Marshal(page)
				return a.print(b)
			}
			for _, r := range page.Records {
				b, _ := json.Marshal(r)
				records = append(records, b)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		if records == nil {
			records = []json.RawMessage{}
		}
		b, _ := json.Marshal(map[string]any{"records": records})
		return a.print(b)
	})(args)
}
