package store

import (
	"sync"
	"testing"
	"time"
)

// TestObserve checks that Options.Observe sees every kind of operation.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s, err := Open(t.TempDir(), Options{Observe: func(op string, d time.Duration) {
		if d < 0 {
			t.Errorf("%s: negative latency %v", op, d)
		}
		mu.Lock()
		seen[op]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := TenantKey("t1")
	if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Put(k, "v") }); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.Get(k, &v); err != nil || v != "v" {
		t.Fatalf("Get: %q %v", v, err)
	}
	s.Has(k)
	s.View([]Key{k}, func(r Reader) error { return nil })
	s.Scan(Prefix(KindTenant), func(Key, []byte) error { return nil })
	s.Evidence(EvidenceKey("none"))
	mu.Lock()
	defer mu.Unlock()
	for _, op := range []string{"update", "commit", "get", "view", "scan", "evidence"} {
		if seen[op] == 0 {
			t.Errorf("no %q observation (seen %v)", op, seen)
		}
	}
}
