package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAuditQueries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Records are written out of time order; queries return them in order.
	events := []struct {
		at           int // minutes after t0
		tenant, user string
	}{
		{5, "t1", "alice"}, {1, "t1", "bob"}, {3, "t1", "alice"}, {2, "t2", "alice"},
		{4, "t1", ""}, {0, "t1", "alice"}, {3, "t1", "alice"},
	}
	for i, e := range events {
		err := s.Update(nil, func(tx *Tx) error {
			return tx.Audit(AuditRecord{Time: t0.Add(time.Duration(e.at) * time.Minute), Tenant: e.tenant, User: e.user,
				Event: fmt.Sprintf("event-%d", i), Details: map[string]string{"n": fmt.Sprint(i)}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	q := func(q AuditQuery) []string {
		t.Helper()
		page, err := s.Audit(q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range page.Records {
			out = append(out, fmt.Sprintf("%d:%s", int(r.Time.Sub(t0).Minutes()), r.Event))
		}
		return out
	}
	check := func(name string, got []string, want string) {
		t.Helper()
		if fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
	}
	check("tenant t1", q(AuditQuery{Tenant: "t1"}), "[0:event-5 1:event-1 3:event-2 3:event-6 4:event-4 5:event-0]")
	check("user alice in t1", q(AuditQuery{Tenant: "t1", User: "alice"}), "[0:event-5 3:event-2 3:event-6 5:event-0]")
	check("alice in t2", q(AuditQuery{Tenant: "t2", User: "alice"}), "[2:event-3]")
	check("range [1,4)", q(AuditQuery{Tenant: "t1", From: t0.Add(time.Minute), To: t0.Add(4 * time.Minute)}), "[1:event-1 3:event-2 3:event-6]")
	check("unknown tenant", q(AuditQuery{Tenant: "t3"}), "[]")

	// Pages of 2 walk the same list.
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := s.Audit(AuditQuery{Tenant: "t1", Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			all = append(all, r.Event)
		}
		if page.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		after = page.Next
	}
	check("paged", all, "[event-5 event-1 event-2 event-6 event-4 event-0]")
	if _, err := s.Audit(AuditQuery{Tenant: "t1", After: "zz"}); !errors.Is(err, ErrKey) {
		t.Errorf("bad cursor: %v", err)
	}

	// Sequence numbers go on after a restart.
	page, _ := s.Audit(AuditQuery{Tenant: "t1"})
	maxSeq := uint64(0)
	for _, r := range page.Records {
		maxSeq = max(maxSeq, r.Seq)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Update(nil, func(tx *Tx) error { return tx.Audit(AuditRecord{Time: t0, Tenant: "t1", Event: "after restart"}) })
	page, _ = s.Audit(AuditQuery{Tenant: "t1", To: t0.Add(time.Second)})
	if len(page.Records) != 2 || page.Records[1].Event != "after restart" || page.Records[1].Seq != 8 || maxSeq != 7 {
		t.Errorf("after restart: %+v (max seq before %d)", page.Records, maxSeq)
	}
}

func TestAuditWithFailedUpdateWritesNothing(t *testing.T) {
	s := openTest(t, Options{})
	boom := errors.New("refused")
	s.Update(nil, func(tx *Tx) error {
		tx.Audit(AuditRecord{Time: time.Now(), Tenant: "t", Event: "never"})
		return boom
	})
	page, err := s.Audit(AuditQuery{Tenant: "t"})
	if err != nil || len(page.Records) != 0 {
		t.Errorf("audit of a failed update: %+v %v", page.Records, err)
	}
}
