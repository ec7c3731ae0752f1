package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The end-to-end test of `keybind demo` in a real headless Chromium: the
// demo runs in this process on free loopback ports and a temporary data
// directory, and the browser drives its sign-in page and phone panel
// through every path a person can take. Screenshots of each step go to
// artifacts/browser/ at the repository root, or $KEYBIND_ARTIFACTS.

// browserRequired reports whether a missing browser fails the test (in CI,
// or when KEYBIND_REQUIRE_BROWSER is set, as .ci/test does).
func browserRequired() bool {
	return os.Getenv("CI") != "" || os.Getenv("KEYBIND_REQUIRE_BROWSER") != ""
}

// findChromium returns the browser to drive: $KEYBIND_CHROMIUM, or the
// first of the usual names on the PATH.
func findChromium() (string, error) {
	if p := os.Getenv("KEYBIND_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("KEYBIND_CHROMIUM=%s: %v", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium on the PATH (chromium, chromium-browser, google-chrome); install it (Debian: apt-get install chromium; .ci/setup does) or set KEYBIND_CHROMIUM")
}

// artifactsDir returns the folder of the screenshots: $KEYBIND_ARTIFACTS,
// or artifacts/browser at the repository root (git-ignored).
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("KEYBIND_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatalf("no go.mod above %s", wd)
			}
			root = parent
		}
		dir = filepath.Join(root, "artifacts")
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a tab of the shared headless browser.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	page string // the sign-in page's URL
	mu   *sync.Mutex
	shot *[]string
}

// do runs the steps, failing the test with what was being done.
func (b *browser) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("FAILED-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression of type T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// screenshot saves the tab's full page as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.mu.Lock()
	*b.shot = append(*b.shot, path)
	b.mu.Unlock()
}

// signIn types a username on a fresh sign-in form and submits it.
func (b *browser) signIn(user string) {
	b.t.Helper()
	b.do("open the sign-in form for "+user, 20*time.Second,
		chromedp.Navigate(b.page),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.Click(chromedp.CSS("#next")),
	)
}

// number waits for the number the page shows and returns it.
func (b *browser) number() int {
	b.t.Helper()
	b.do("wait for the number to match", 20*time.Second, chromedp.WaitVisible(chromedp.CSS("#number")))
	n, err := strconv.Atoi(b.text("#number"))
	if err != nil || n < 10 || n > 99 {
		b.t.Fatalf("the page shows %q, not a 2-digit number (%v)", b.text("#number"), err)
	}
	return n
}

// phoneChoices waits until the phone shows a sign-in with the number
// among its choices, and returns the choices.
func (b *browser) phoneChoices(phone string, number int) []int {
	b.t.Helper()
	b.do("wait for "+phone+"'s phone to show the sign-in", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#phone-%s .choice[data-number="%d"]`, phone, number))))
	choices := eval[[]int](b, fmt.Sprintf(`[...document.querySelectorAll('#phone-%s .choice')].map(e => +e.dataset.number)`, phone))
	if len(choices) != 3 {
		b.t.Fatalf("the phone shows %d choices %v, want 3", len(choices), choices)
	}
	return choices
}

// status waits for the page's final status in state and returns its text.
func (b *browser) status(state string, timeout time.Duration) string {
	b.t.Helper()
	b.do("wait for the status "+state, timeout, chromedp.WaitVisible(chromedp.CSS(`#status[data-state="`+state+`"]`)))
	return b.text("#status")
}

func TestDemoBrowser(t *testing.T) {
	if testing.Short() && !browserRequired() {
		t.Skip("the browser test runs the whole demo (about 40 s); not in -short")
	}
	chrome, err := findChromium()
	if err != nil {
		if browserRequired() {
			t.Fatalf("the browser test must run here (CI or KEYBIND_REQUIRE_BROWSER is set): %v", err)
		}
		t.Skipf("skipped: %v. It cannot be skipped in CI (CI or KEYBIND_REQUIRE_BROWSER set).", err)
	}
	const lifetime = 30 * time.Second // the shortest attempt lifetime a policy allows
	d := startTestDemo(t, t.TempDir(), lifetime)
	dir := artifactsDir(t)
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		os.Remove(f) // the screenshots of an earlier run
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox to root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if _, err := chromedp.Run(browserCtx, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}

	var mu sync.Mutex
	var shots []string
	tab := func(t *testing.T) *browser {
		ctx, cancel := chromedp.NewContext(browserCtx)
		t.Cleanup(cancel)
		// The first action opens the tab, which lives as long as the
		// context of that action: it must not be one with a timeout.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`1`)); err != nil {
			t.Fatalf("opening a tab: %v", err)
		}
		return &browser{t: t, ctx: ctx, dir: dir, page: d.pageURL + "/", mu: &mu, shot: &shots}
	}

	t.Run("flows", func(t *testing.T) {
		// Expiry takes the attempt's whole lifetime: it runs in its own tab,
		// with its own user, beside the other paths.
		t.Run("expiry", func(t *testing.T) {
			t.Parallel()
			b := tab(t)
			start := time.Now()
			b.signIn("carol@demo.test")
			n := b.number()
			b.phoneChoices("carol", n)
			b.screenshot("expiry-1-waiting")
			msg := b.status("expired", lifetime+40*time.Second)
			if !strings.Contains(msg, "Expired") {
				t.Errorf("expired status says %q", msg)
			}
			if took := time.Since(start); took < lifetime-2*time.Second {
				t.Errorf("expired after %v, before the attempt's lifetime %v", took, lifetime)
			}
			b.do("the phone drops the expired sign-in", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#phone-carol[data-state="idle"]`)))
			b.screenshot("expiry-2-expired")
		})

		t.Run("phone", func(t *testing.T) {
			t.Parallel()
			b := tab(t)

			// Approve: the number the page shows, tapped on the phone.
			b.signIn("alice@demo.test")
			n := b.number()
			b.screenshot("approve-1-number")
			choices := b.phoneChoices("alice", n)
			if !slices.Contains(choices, n) {
				t.Fatalf("the phone's choices %v lack the page's number %d", choices, n)
			}
			ctxText := b.text("#phone-alice .context")
			for _, want := range []string{"keybind demo", "127.0.0.1", "Loopback"} {
				if !strings.Contains(ctxText, want) {
					t.Errorf("the phone's context %q lacks %q", ctxText, want)
				}
			}
			b.screenshot("approve-2-phone")
			b.do("tap the right number", 10*time.Second, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#phone-alice .choice[data-number="%d"]`, n))))
			if msg := b.status("approved", 20*time.Second); !strings.Contains(msg, "alice@demo.test") {
				t.Errorf("approved status says %q", msg)
			}
			b.do("the phone confirms", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#phone-alice .phone-result[data-state="approved"]`)))
			b.screenshot("approve-3-signed-in")

			// A wrong number denies.
			b.signIn("alice@demo.test")
			n = b.number()
			choices = b.phoneChoices("alice", n)
			wrong := choices[slices.IndexFunc(choices, func(c int) bool { return c != n })]
			b.do("tap a wrong number", 10*time.Second, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#phone-alice .choice[data-number="%d"]`, wrong))))
			if msg := b.status("denied", 20*time.Second); !strings.Contains(msg, "wrong number") {
				t.Errorf("denied status says %q", msg)
			}
			if got := b.text("#phone-alice .phone-result"); !strings.Contains(got, "Wrong number") {
				t.Errorf("the phone says %q after a wrong number", got)
			}
			b.screenshot("wrong-number-denied")

			// "Use your password instead" cancels the attempt: the phone no
			// longer has it. A wrong password is refused, the right one
			// signs in.
			b.signIn("alice@demo.test")
			n = b.number()
			b.phoneChoices("alice", n)
			b.do("use the password instead", 10*time.Second,
				chromedp.Click(chromedp.CSS("#use-password")),
				chromedp.WaitVisible(chromedp.CSS(`#password-panel`)),
				chromedp.WaitVisible(chromedp.CSS(`#password-reason[data-reason="cancelled"]`)),
			)
			b.do("the phone drops the cancelled sign-in", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#phone-alice[data-state="idle"]`)))
			b.screenshot("cancel-1-password-asked")
			b.do("type a wrong password", 10*time.Second,
				chromedp.SendKeys(chromedp.CSS("#password"), "not-it"),
				chromedp.Click(chromedp.CSS("#password-submit")),
				chromedp.WaitVisible(chromedp.CSS("#error")),
			)
			if got := b.text("#error"); !strings.Contains(got, "not the password") {
				t.Errorf("a wrong password shows %q", got)
			}
			eval[bool](b, `(document.getElementById('password').value = '') === ''`)
			b.do("type the password", 10*time.Second,
				chromedp.SendKeys(chromedp.CSS("#password"), "demo"),
				chromedp.Click(chromedp.CSS("#password-submit")),
			)
			if msg := b.status("password", 10*time.Second); !strings.Contains(msg, "password") {
				t.Errorf("password status says %q", msg)
			}
			b.screenshot("cancel-2-signed-in-with-password")

			// Report fraud from the phone.
			b.signIn("alice@demo.test")
			n = b.number()
			b.phoneChoices("alice", n)
			b.do("report fraud", 10*time.Second, chromedp.Click(chromedp.CSS(`#phone-alice .fraud`)))
			if msg := b.status("fraud", 20*time.Second); !strings.Contains(msg, "fraud") {
				t.Errorf("fraud status says %q", msg)
			}
			b.screenshot("fraud-reported")

			// A user without a phone: straight to the password.
			b.signIn("pat@demo.test")
			b.do("the password is asked", 20*time.Second,
				chromedp.WaitVisible(chromedp.CSS(`#password-panel`)),
				chromedp.WaitVisible(chromedp.CSS(`#password-reason[data-reason="signin.no_credential"]`)),
			)
			if got := b.text("#password-reason"); !strings.Contains(got, "Use your password instead") {
				t.Errorf("pat's password reason says %q", got)
			}
			b.screenshot("password-only-1-asked")
			b.do("type pat's password", 10*time.Second,
				chromedp.SendKeys(chromedp.CSS("#password"), "demo"),
				chromedp.Click(chromedp.CSS("#password-submit")),
			)
			b.status("password", 10*time.Second)
			b.screenshot("password-only-2-signed-in")

			// A federated user, named by the login hint of the page's URL,
			// lands on the federation server's page.
			hinted := b.page + "?login_hint=" + url.QueryEscape("bob@federated.test")
			b.do("open the page with a login hint", 20*time.Second,
				chromedp.Navigate(hinted),
				chromedp.WaitVisible(chromedp.CSS("#username")),
			)
			if v := eval[string](b, `document.getElementById('username').value`); v != "bob@federated.test" {
				t.Fatalf("the login hint fills the username with %q", v)
			}
			b.do("submit the hinted user", 20*time.Second,
				chromedp.Click(chromedp.CSS("#next")),
				chromedp.WaitVisible(chromedp.CSS("#federation-user")),
			)
			loc, err := chromedp.Run(b.ctx, chromedp.Location())
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(loc)
			if err != nil || u.Path != "/federation" || u.Query().Get("login_hint") != "bob@federated.test" {
				t.Errorf("federated sign-in landed on %s", loc)
			}
			if got := b.text("#federation-user"); got != "bob@federated.test" {
				t.Errorf("the federation page signs in %q", got)
			}
			if got := b.text("#federation-title"); !strings.Contains(got, "federated.test") {
				t.Errorf("the federation page is titled %q", got)
			}
			b.screenshot("federated-redirect")
		})
	})

	// The standalone phone page shows the same phones.
	t.Run("phone page", func(t *testing.T) {
		b := tab(t)
		b.do("open the phone page", 20*time.Second,
			chromedp.Navigate(d.pageURL+"/phone"),
			chromedp.WaitVisible(chromedp.CSS(`#phone-alice[data-state="idle"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#phone-carol[data-state="idle"]`)),
		)
		b.screenshot("phone-page")
	})

	slices.Sort(shots)
	var list bytes.Buffer
	for _, s := range shots {
		fmt.Fprintf(&list, "\n  %s", filepath.Base(s))
	}
	t.Logf("browser screenshots in %s:%s", dir, list.String())
	fmt.Fprintf(os.Stderr, "demo browser test: %d screenshots in %s\n", len(shots), dir)
}

// startTestDemo starts the demo in this process on free loopback ports and
// stops it when the test ends.
func startTestDemo(t testing.TB, data string, lifetime time.Duration) *runningDemo {
	t.Helper()
	var log bytes.Buffer
	var logMu sync.Mutex
	e := &env{stdout: &lockedWriter{w: &log, mu: &logMu}, stderr: &lockedWriter{w: &log, mu: &logMu}}
	d, _, err := startDemo(context.Background(), e, &demoOptions{
		addr: "127.0.0.1:0", apiAddr: "127.0.0.1:0", data: data, attemptLifetime: lifetime, logLevel: "warn",
	})
	if err != nil {
		t.Fatalf("starting the demo: %v", err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stopping the demo: %v", err)
		}
		logMu.Lock()
		defer logMu.Unlock()
		if log.Len() > 0 {
			t.Logf("demo log:\n%s", log.String())
		}
	})
	return d
}

// lockedWriter serialises writes of several goroutines.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
