package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// keybindBinary builds the keybind command once for the tests that run it
// as a process.
func keybindBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keybind-serve-test")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "keybind")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// serveProcess is `keybind serve` running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	logs   []string
	exited chan error
}

func startServe(t *testing.T, env []string, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(keybindBinary(t), append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Addr
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("keybind serve logs:\n%s", p.log())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.exited:
		t.Fatalf("keybind serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("keybind serve did not start\n%s", p.log())
	}
	return p
}

func (p *serveProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

func (p *serveProcess) do(t *testing.T, method, path, key string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServe runs keybind serve with settings from flags, the environment
// and a config file, verifies a signature through it, and stops it with
// SIGTERM.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys")
	os.WriteFile(keysFile, []byte("# operators' keys\nacme:verify:acme-verify-key-from-file\n\n"), 0o600)
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, []byte(`{"keys-file": "`+keysFile+`", "verify-max-items": 2, "batch-wait": "100us", "log-level": "debug"}`), 0o600)
	h := sha256.Sum256([]byte("beta-verify-key-hashed-0001"))
	p := startServe(t, []string{
		"KEYBIND_KEYS=beta:verify:sha256:" + fmt.Sprintf("%x", h),
		"KEYBIND_VERIFY_MAX_ITEMS=3", // the environment wins over the file
	}, "--config", config, "--key", "gamma:auth_server:gamma-flag-key-00001", "--log-level", "info")

	if st, b := p.do(t, "GET", "/healthz", "", nil); st != 200 || !bytes.Contains(b, []byte(`"status":"ok"`)) {
		t.Fatalf("/healthz: %d %s", st, b)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	msg := []byte("approve 42")
	d := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	item := fmt.Sprintf(`{"algorithm":"ecdsa-p256","public_key":%q,"message":%q,"signature":%q}`,
		base64.StdEncoding.EncodeToString(spki), base64.StdEncoding.EncodeToString(msg), base64.StdEncoding.EncodeToString(sig))
	three := []byte(`{"items":[` + item + "," + item + "," + item + `]}`)
	for _, key := range []string{"acme-verify-key-from-file", "beta-verify-key-hashed-0001", "gamma-flag-key-00001"} {
		st, b := p.do(t, "POST", "/v1/verify", key, three)
		if st != 200 || string(b) != `{"results":[{"valid":true},{"valid":true},{"valid":true}]}`+"\n" {
			t.Errorf("verify with %s: %d %s", key, st, b)
		}
	}
	if st, b := p.do(t, "POST", "/v1/verify", "acme-verify-key-from-file", []byte(`{"items":[`+strings.Repeat(item+",", 3)+item+`]}`)); st != 400 || !bytes.Contains(b, []byte("more than 3 items")) {
		t.Errorf("four items with verify-max-items 3: %d %s", st, b)
	}
	if st, _ := p.do(t, "POST", "/v1/verify", "wrong-key-wrong-key", three); st != 401 {
		t.Errorf("wrong key: %d", st)
	}
	if st, b := p.do(t, "GET", "/metrics", "", nil); st != 200 || !bytes.Contains(b, []byte(`keybind_verify_items_total{algorithm="ecdsa-p256",result="valid"} 9`)) {
		t.Errorf("/metrics: %d\n%s", st, b)
	}
	if strings.Contains(p.log(), `"level":"DEBUG"`) {
		t.Error("--log-level info did not win over the config file's debug")
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("keybind serve did not stop on SIGTERM")
	}
	if !strings.Contains(p.log(), `"msg":"stopped"`) {
		t.Errorf("no shutdown in the logs:\n%s", p.log())
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"adress": "x"}`), 0o600)
	withKey := filepath.Join(dir, "key.json")
	os.WriteFile(withKey, []byte(`{"key": "a:verify:0123456789abcdef"}`), 0o600)
	withOperatorKey := filepath.Join(dir, "operator.json")
	os.WriteFile(withOperatorKey, []byte(`{"operator-key": "0123456789abcdef"}`), 0o600)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad key", nil, []string{"--key", "acme:verify:short"}, "at least 16"},
		{"bad role", nil, []string{"--key", "acme:root:0123456789abcdef"}, "unknown role"},
		{"bad environment value", []string{"KEYBIND_MAX_CONNS=many"}, nil, "KEYBIND_MAX_CONNS"},
		{"unknown config setting", nil, []string{"--config", unknown}, `unknown setting "adress"`},
		{"key in the config", nil, []string{"--config", withKey}, "keys file"},
		{"argument", nil, []string{"now"}, "unexpected argument"},
		{"bad log level", nil, []string{"--log-level", "loud"}, "--log-level"},
		{"bad operator key", nil, []string{"--operator-key", "short"}, "operator key"},
		{"bad root", nil, []string{"--root", "dev"}, "NAME=FILE"},
		{"missing root file", nil, []string{"--root", "dev=" + filepath.Join(dir, "none.pem")}, "--root dev"},
		{"operator key in the config", nil, []string{"--config", withOperatorKey}, "keys file"},
		{"missing TLS files", nil, []string{"--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")}, "TLS"},
	} {
		for _, kv := range c.env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		st, _, errOut := keybind(t, append([]string{"serve"}, c.args...)...)
		if st != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: status %d, stderr %q", c.name, st, errOut)
		}
		for _, kv := range c.env {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
	}
}
