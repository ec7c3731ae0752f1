package store

import (
	"errors"
	"testing"
	"time"
)

func TestSessionsExpire(t *testing.T) {
	s := openTest(t, Options{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := s.PutSession("s1", []byte("alice"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession("s2", []byte("bob"), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	data, exp, err := s.Session("s1", t0)
	if err != nil || string(data) != "alice" || !exp.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Session: %q %v %v", data, exp, err)
	}
	if _, _, err := s.Session("s1", t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("session at its expiry: %v", err)
	}
	if _, _, err := s.Session("nope", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}
	// Refreshing s1 moves its deletion time: a sweep at the old time keeps it.
	if err := s.PutSession("s1", []byte("alice2"), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(t0.Add(30*time.Minute), 100)
	if err != nil || n != 0 {
		t.Fatalf("Sweep before any expiry: %d %v", n, err)
	}
	n, err = s.Sweep(t0.Add(90*time.Minute), 100)
	if err != nil || n != 1 {
		t.Fatalf("Sweep after s2's expiry: %d %v", n, err)
	}
	if ok, _ := (dbReader{s}).Has(SessionKey("s2")); ok {
		t.Error("s2 not deleted by the sweep")
	}
	if data, _, err := s.Session("s1", t0.Add(90*time.Minute)); err != nil || string(data) != "alice2" {
		t.Errorf("refreshed s1: %q %v", data, err)
	}
	if err := s.DeleteSession("s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession("s1"); err != nil {
		t.Errorf("deleting an absent session: %v", err)
	}
	// Nothing is left, not even an index entry.
	left := 0
	s.Scan(Prefix(KindExpiry), func(Key, []byte) error { left++; return nil })
	s.Scan(Prefix(KindSession), func(Key, []byte) error { left++; return nil })
	if left != 0 {
		t.Errorf("%d keys left after deleting every session", left)
	}
}

func TestSweepDeleteAfter(t *testing.T) {
	s := openTest(t, Options{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		k := AttemptKey(id)
		err := s.Update([]Key{k}, func(tx *Tx) error {
			if err := tx.Put(k, testRecord{Name: id}); err != nil {
				return err
			}
			return tx.DeleteAfter(k, t0.Add(time.Duration(i)*time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(t0.Add(3*time.Minute), 2)
	if err != nil || n != 2 {
		t.Fatalf("Sweep with max 2: %d %v", n, err)
	}
	n, err = s.Sweep(t0.Add(3*time.Minute), 10)
	if err != nil || n != 1 {
		t.Fatalf("second Sweep: %d %v", n, err)
	}
	var kept []string
	s.Scan(Prefix(KindAttempt), func(k Key, _ []byte) error { kept = append(kept, LastComponent(k)); return nil })
	if len(kept) != 2 || kept[0] != "d" || kept[1] != "e" {
		t.Errorf("kept %v, want [d e]", kept)
	}
}
