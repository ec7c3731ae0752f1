package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// openTest opens a store in a new directory on disk and closes it with the
// test.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// modes runs f once per durability mode.
func modes(t *testing.T, f func(t *testing.T, opts Options)) {
	for _, d := range []Durability{GroupCommit, SyncEachWrite} {
		t.Run(d.String(), func(t *testing.T) { f(t, Options{Durability: d}) })
	}
}

type testRecord struct {
	Name    string    `cbor:"1,keyasint"`
	Counter uint64    `cbor:"2,keyasint"`
	At      time.Time `cbor:"3,keyasint,omitempty"`
}

func TestUpdateCommitsAtomically(t *testing.T) {
	modes(t, func(t *testing.T, opts Options) {
		s := openTest(t, opts)
		a, b := TenantKey("a"), TenantKey("b")
		err := s.Update([]Key{a}, func(tx *Tx) error {
			if err := tx.Put(a, testRecord{Name: "a"}); err != nil {
				return err
			}
			var got testRecord
			if err := tx.Get(a, &got); err != nil || got.Name != "a" {
				t.Errorf("Tx does not read its own write: %v %v", got, err)
			}
			return tx.Put(b, testRecord{Name: "b"})
		})
		if err != nil {
			t.Fatal(err)
		}
		var got testRecord
		if err := s.Get(b, &got); err != nil || got.Name != "b" {
			t.Fatalf("Get b: %v %v", got, err)
		}
		// A failing function writes nothing.
		boom := errors.New("boom")
		err = s.Update([]Key{a}, func(tx *Tx) error {
			tx.Put(a, testRecord{Name: "changed"})
			tx.Delete(b)
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want the function's error", err)
		}
		if err := s.Get(a, &got); err != nil || got.Name != "a" {
			t.Errorf("a after the failed update: %v %v", got, err)
		}
		if ok, _ := (dbReader{s}).Has(b); !ok {
			t.Error("b deleted by the failed update")
		}
		// Delete, then read in the same Tx.
		err = s.Update([]Key{b}, func(tx *Tx) error {
			tx.Delete(b)
			if ok, err := tx.Has(b); ok || err != nil {
				t.Errorf("Has after Delete in the Tx: %v %v", ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Get(b, &got); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of a deleted key: %v", err)
		}
		if st := s.Stats(); st.Updates != 2 || st.Commits < 1 {
			t.Errorf("stats %+v, want 2 updates", st)
		}
	})
}

func TestCreateOnce(t *testing.T) {
	modes(t, func(t *testing.T, opts Options) {
		s := openTest(t, opts)
		k := KeyIDKey([]byte("key id"))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(k, fmt.Sprintf("credential %d", i)) })
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrExists):
					t.Errorf("Create: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d creators won, want exactly 1", wins.Load())
		}
		// Create on a key the update did not lock is refused.
		other := KeyIDKey([]byte("other"))
		err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(other, "x") })
		if !errors.Is(err, ErrNotLocked) {
			t.Errorf("Create of an unlocked key: %v", err)
		}
	})
}

// TestTakeOnce: of many updates racing to take one record, exactly one gets
// it, and the record is gone after it, even when the winner's use of it
// fails afterwards in the same update.
func TestTakeOnce(t *testing.T) {
	modes(t, func(t *testing.T, opts Options) {
		s := openTest(t, opts)
		k := TPMActivationKey("enrollment")
		if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Put(k, testRecord{Name: "pending"}) }); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Update([]Key{k}, func(tx *Tx) error {
					var r testRecord
					if err := tx.Take(k, &r); err != nil {
						return err
					}
					if r.Name != "pending" {
						t.Errorf("took %+v", r)
					}
					wins.Add(1)
					return tx.Audit(AuditRecord{Time: time.Unix(1, 0), Tenant: "t", Event: "taken"})
				})
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("Take: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d updates took the record, want exactly 1", wins.Load())
		}
		if ok, err := s.Has(k); err != nil || ok {
			t.Fatalf("the taken record is still there (%v)", err)
		}
		other := TPMActivationKey("other")
		if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Take(other, &testRecord{}) }); !errors.Is(err, ErrNotLocked) {
			t.Errorf("Take of an unlocked key: %v", err)
		}
	})
}

// TestCompareAndSwapStateMachine: a record moves once from pending to a final
// state, and a counter only rises, with many writers racing.
func TestCompareAndSwapStateMachine(t *testing.T) {
	modes(t, func(t *testing.T, opts Options) {
		s := openTest(t, opts)
		k := AttemptKey("attempt")
		if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(k, testRecord{Name: "pending"}) }); err != nil {
			t.Fatal(err)
		}
		var finals atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				final := []string{"approved", "denied"}[i%2]
				err := s.Update([]Key{k}, func(tx *Tx) error {
					return tx.CompareAndSwap(k, testRecord{Name: "pending"}, testRecord{Name: final})
				})
				switch {
				case err == nil:
					finals.Add(1)
				case !errors.Is(err, ErrConflict):
					t.Errorf("CompareAndSwap: %v", err)
				}
			}()
		}
		wg.Wait()
		if finals.Load() != 1 {
			t.Fatalf("%d writers moved the attempt from pending, want 1", finals.Load())
		}
		if err := s.Update([]Key{AttemptKey("none")}, func(tx *Tx) error {
			return tx.CompareAndSwap(AttemptKey("none"), testRecord{}, testRecord{})
		}); !errors.Is(err, ErrNotFound) {
			t.Errorf("CompareAndSwap of an absent key: %v", err)
		}

		// Counter: each writer proposes a value and writes it only if it is
		// higher than the stored one.
		c := CredentialKey("c")
		var maxSeen atomic.Uint64
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				proposed := uint64(i*7%64 + 1)
				err := s.Update([]Key{c}, func(tx *Tx) error {
					var cur testRecord
					if err := tx.Get(c, &cur); err != nil && !errors.Is(err, ErrNotFound) {
						return err
					}
					if proposed <= cur.Counter {
						return ErrConflict
					}
					return tx.Put(c, testRecord{Counter: proposed})
				})
				if err == nil {
					for {
						m := maxSeen.Load()
						if proposed <= m {
							t.Errorf("counter %d accepted after %d", proposed, m)
							break
						}
						if maxSeen.CompareAndSwap(m, proposed) {
							break
						}
					}
				}
			}()
		}
		wg.Wait()
		var got testRecord
		if err := s.Get(c, &got); err != nil || got.Counter != 64 {
			t.Errorf("final counter %d (%v), want 64", got.Counter, err)
		}
	})
}

func TestViewSeesDurableState(t *testing.T) {
	s := openTest(t, Options{})
	k := TenantKey("t")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.Update([]Key{k}, func(tx *Tx) error { return tx.Put(k, testRecord{Counter: uint64(i)}) })
		}()
		go func() {
			defer wg.Done()
			s.View([]Key{k}, func(r Reader) error {
				var got testRecord
				err := r.Get(k, &got)
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				return nil
			})
		}()
	}
	wg.Wait()
}

func TestStrictRecordDecoding(t *testing.T) {
	good, err := Marshal(testRecord{Name: "x", Counter: 3})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Marshal(testRecord{Name: "x", Counter: 3})
	if !bytes.Equal(good, again) {
		t.Fatal("encoding is not deterministic")
	}
	var r testRecord
	if err := Unmarshal(good, &r); err != nil || r.Name != "x" {
		t.Fatalf("Unmarshal: %v %v", r, err)
	}
	em, _ := cbor.EncOptions{}.EncMode()
	unknown, _ := em.Marshal(map[int]any{1: "x", 9: 1})
	dup := []byte{0xa2, 0x01, 0x61, 'x', 0x01, 0x61, 'y'} // {1:"x", 1:"y"}
	tagged := []byte{0xc1, 0x00}
	for name, data := range map[string][]byte{
		"trailing bytes": append(bytes.Clone(good), 0),
		"unknown field":  unknown,
		"duplicate key":  dup,
		"tag":            tagged,
		"truncated":      good[:len(good)-1],
		"indefinite":     {0xbf, 0x01, 0x61, 'x', 0xff},
	} {
		if err := Unmarshal(data, &r); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Unmarshal = %v, want ErrCorrupt", name, err)
		}
	}
	// Times keep their nanoseconds.
	at := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	b, _ := Marshal(testRecord{At: at})
	if err := Unmarshal(b, &r); err != nil || !r.At.Equal(at) {
		t.Errorf("time round trip: %v %v", r.At, err)
	}
}

func TestEvidence(t *testing.T) {
	s := openTest(t, Options{MaxEvidence: 4096})
	k := EvidenceKey("c")
	raw := bytes.Repeat([]byte("certificate chain "), 200)
	if err := s.Update(nil, func(tx *Tx) error { return tx.PutEvidence(k, raw) }); err != nil {
		t.Fatal(err)
	}
	stored, _ := s.getRaw(k)
	if len(stored) >= len(raw)/4 {
		t.Errorf("evidence stored in %d bytes, not compressed (raw %d)", len(stored), len(raw))
	}
	got, err := s.Evidence(k)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("Evidence: %d bytes, %v", len(got), err)
	}
	if err := s.Update(nil, func(tx *Tx) error { return tx.PutEvidence(k, make([]byte, 5000)) }); err == nil {
		t.Error("evidence over the limit was stored")
	}
	// Damaged evidence is reported as corrupt, never returned.
	bad := EvidenceKey("bad")
	if err := s.Update(nil, func(tx *Tx) error { return tx.put(bad, []byte("not zstd")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Evidence(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Evidence of damaged bytes: %v", err)
	}
	if _, err := s.Evidence(EvidenceKey("none")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Evidence of an absent key: %v", err)
	}
}

func TestScan(t *testing.T) {
	s := openTest(t, Options{})
	err := s.Update(nil, func(tx *Tx) error {
		for _, u := range []string{"b", "a", "c"} {
			tx.Put(UserKey("t1", u), testRecord{Name: u})
		}
		tx.Put(UserKey("t10", "z"), testRecord{Name: "z"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	err = s.Scan(Prefix(KindUser, "t1"), func(k Key, v []byte) error {
		var r testRecord
		if err := Unmarshal(v, &r); err != nil {
			return err
		}
		names = append(names, r.Name+"="+LastComponent(k))
		return nil
	})
	if err != nil || fmt.Sprint(names) != "[a=a b=b c=c]" {
		t.Fatalf("Scan: %v %v", names, err)
	}
	n := 0
	s.Scan(Prefix(KindUser), func(Key, []byte) error { n++; return Stop })
	if n != 1 {
		t.Errorf("Stop did not end the scan: %d calls", n)
	}
}

func TestReopenAndSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := TenantKey("t")
	if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Put(k, testRecord{Name: "kept"}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Get(k, new(testRecord)); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.Update([]Key{k}, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v", err)
	}
	s, err = Open(dir, Options{Durability: SyncEachWrite})
	if err != nil {
		t.Fatal(err)
	}
	var got testRecord
	if err := s.Get(k, &got); err != nil || got.Name != "kept" {
		t.Errorf("after reopening: %v %v", got, err)
	}
	// A store of another schema version is refused.
	v, _ := Marshal(SchemaVersion + 1)
	if err := s.Update(nil, func(tx *Tx) error { return tx.put(metaKey(metaSchema), v) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("Open of a newer schema: %v", err)
	}
}
