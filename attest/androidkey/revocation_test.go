package androidkey

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
)

const sampleList = `{
  "entries": {
    "2c8cdddfd5e03bfc": {"status": "REVOKED", "reason": "KEY_COMPROMISE"},
    "00C8966FCB2FBE32": {"status": "SUSPENDED", "reason": "SOFTWARE_FLAW", "comment": "leading zeros and upper case"},
    "123": {"status": "SOMETHING_NEW", "expires": "2030-01-01"}
  },
  "extra": "top-level fields are ignored"
}`

func TestStatusList(t *testing.T) {
	l, err := ParseStatusList([]byte(sampleList))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 3 {
		t.Errorf("%d entries", l.Len())
	}
	serial := func(h string) *big.Int { n, _ := new(big.Int).SetString(h, 16); return n }
	for _, c := range []struct {
		serial string
		code   attest.Code
	}{
		{"2c8cdddfd5e03bfc", CodeRevoked},
		{"c8966fcb2fbe32", CodeSuspended},
		{"123", CodeRevoked}, // an unknown status rejects too
		{"2c8cdddfd5e03bfd", ""},
		{"0", ""},
	} {
		if got := attest.CodeOf(l.check(1, serial(c.serial))); got != c.code {
			t.Errorf("serial %s: %q, want %q", c.serial, got, c.code)
		}
	}
	if _, ok := l.Lookup(big.NewInt(-1)); ok {
		t.Error("negative serial found")
	}
	if _, ok := (*StatusList)(nil).Lookup(big.NewInt(1)); ok {
		t.Error("nil list found a serial")
	}
}

func TestStatusListRefusals(t *testing.T) {
	for _, bad := range []string{
		``, `null`, `[]`, `{}`, `{"entries": null}`, `{"entries": []}`,
		`{"entries": {"xyz": {"status": "REVOKED"}}}`,
		`{"entries": {"": {"status": "REVOKED"}}}`,
		`{"entries": {"12": {"reason": "KEY_COMPROMISE"}}}`,
		`{"entries": {"12": "REVOKED"}}`,
		`{"entries": {}} {}`,
		`{"entries": {"12": {"status": "REVOKED"}}`,
	} {
		if _, err := ParseStatusList([]byte(bad)); attest.CodeOf(err) != CodeRevocationList {
			t.Errorf("ParseStatusList(%q): %v, want %s", bad, err, CodeRevocationList)
		}
	}
	if l, err := ParseStatusList([]byte(`{"entries": {}}`)); err != nil || l.Len() != 0 {
		t.Errorf("empty list: %v", err)
	}
}

// TestStatusSourceURL runs a source against a real HTTP server: it reads
// the list, keeps it for Refresh, reads it again after, goes on with the
// old list while a refresh fails and the list is younger than MaxAge, and
// fails closed after that.
func TestStatusSourceURL(t *testing.T) {
	var hits atomic.Int32
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(sampleList))
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := &StatusSource{Location: srv.URL, Refresh: time.Hour, MaxAge: 24 * time.Hour, Now: clock, Client: srv.Client()}
	ctx := context.Background()

	l, err := s.List(ctx)
	if err != nil || l.Len() != 3 || hits.Load() != 1 {
		t.Fatalf("first read: %v, hits %d", err, hits.Load())
	}
	if l2, err := s.List(ctx); err != nil || l2 != l || hits.Load() != 1 {
		t.Errorf("within Refresh: read again (%d hits) or another list (%v)", hits.Load(), err)
	}
	advance(2 * time.Hour)
	if l2, err := s.List(ctx); err != nil || l2 == l || hits.Load() != 2 {
		t.Errorf("after Refresh: %v, hits %d", err, hits.Load())
	}
	fail.Store(true)
	advance(2 * time.Hour)
	if _, err := s.List(ctx); err != nil {
		t.Errorf("refresh failing, list 2h old: %v (want the old list)", err)
	}
	if _, _, lastErr := s.Status(); lastErr == nil || !strings.Contains(lastErr.Error(), "503") {
		t.Errorf("Status does not report the failed refresh: %v", lastErr)
	}
	advance(23 * time.Hour)
	if _, err := s.List(ctx); attest.CodeOf(err) != CodeRevocationUnavailable {
		t.Errorf("list 25h old, refresh failing: %v, want %s", err, CodeRevocationUnavailable)
	}
	fail.Store(false)
	if _, err := s.List(ctx); err != nil {
		t.Errorf("server back: %v", err)
	}
	if _, _, lastErr := s.Status(); lastErr != nil {
		t.Errorf("Status after a good refresh: %v", lastErr)
	}

	// Concurrent callers (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				advance(10 * time.Minute)
				if _, err := s.List(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestStatusSourceFailsClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/garbage":
			w.Write([]byte("<html>maintenance</html>"))
		case "/huge":
			w.Write([]byte(`{"entries": {`))
			pad := strings.Repeat(" ", 1<<20)
			for range MaxStatusListSize>>20 + 1 {
				w.Write([]byte(pad))
			}
			w.Write([]byte(`}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	for _, loc := range []string{srv.URL + "/missing", srv.URL + "/garbage", srv.URL + "/huge", filepath.Join(dir, "absent.json"), ""} {
		s := &StatusSource{Location: loc, Client: srv.Client()}
		if _, err := s.List(context.Background()); attest.CodeOf(err) != CodeRevocationUnavailable {
			t.Errorf("%q: %v, want %s", loc, err, CodeRevocationUnavailable)
		}
	}
	p := filepath.Join(dir, "status.json")
	if err := os.WriteFile(p, []byte(sampleList), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := NewStatusSource(p).List(context.Background()); err != nil || l.Len() != 3 {
		t.Errorf("file source: %v", err)
	}
}
