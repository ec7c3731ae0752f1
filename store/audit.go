package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// AuditRecord is one entry of the audit log: who did what to whom, when,
// and how it ended. It never holds secrets (no challenges, signatures, keys
// or numbers to match); Details carries identifiers and reasons only.
type AuditRecord struct {
	// Seq is unique and assigned by the store; Time is the caller's clock.
	Seq    uint64    `cbor:"1,keyasint" json:"seq"`
	Time   time.Time `cbor:"2,keyasint" json:"time"`
	Tenant string    `cbor:"3,keyasint" json:"tenant"`
	User   string    `cbor:"4,keyasint,omitempty" json:"user,omitempty"`
	// Event names what happened ("enroll.completed", "signin.approved", …);
	// Code is the stable error code of a refusal, empty on success.
	Event string `cbor:"5,keyasint" json:"event"`
	Code  string `cbor:"6,keyasint,omitempty" json:"code,omitempty"`
	// Actor is who asked: "admin", "auth-server", "phone", "system".
	Actor   string            `cbor:"7,keyasint,omitempty" json:"actor,omitempty"`
	Details map[string]string `cbor:"8,keyasint,omitempty" json:"details,omitempty"`
}

// Audit stages rec in the Tx: it is written with the Tx's other writes, so
// the log holds exactly the state changes that were committed. The store
// assigns rec.Seq; rec.Time must be set by the caller.
func (tx *Tx) Audit(rec AuditRecord) error {
	rec.Seq = tx.s.auditSeq.Add(1)
	if err := tx.Put(auditKey(rec.Seq), rec); err != nil {
		return err
	}
	at := unixNanos(rec.Time)
	idx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(auditByTenantPrefix(rec.Tenant), at), rec.Seq)
	if err := tx.put(idx, nil); err != nil {
		return err
	}
	if rec.User != "" {
		idx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(auditByUserPrefix(rec.Tenant, rec.User), at), rec.Seq)
		if err := tx.put(idx, nil); err != nil {
			return err
		}
	}
	return nil
}

// AuditQuery selects audit records of one tenant, optionally of one user,
// in a time range, oldest first.
type AuditQuery struct {
	Tenant string
	User   string // empty: every user of the tenant (and tenant-level events)
	// From and To bound Time: From <= Time < To. Zero values leave that end
	// open.
	From, To time.Time
	// Limit is the page size (default and maximum 1000).
	Limit int
	// After is the Next cursor of the previous page.
	After string
}

// AuditPage is one page of results. Next is empty on the last page.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	Next    string        `json:"next,omitempty"`
}

// MaxAuditPage is the largest audit page.
const MaxAuditPage = 1000

// Audit returns the records matching q, oldest first, a page at a time.
func (s *Store) Audit(q AuditQuery) (AuditPage, error) {
	if err := s.enter(); err != nil {
		return AuditPage{}, err
	}
	defer s.leave()
	prefix := auditByTenantPrefix(q.Tenant)
	if q.User != "" {
		prefix = auditByUserPrefix(q.Tenant, q.User)
	}
	if prefix == nil {
		return AuditPage{}, fmt.Errorf("%w: tenant or user too long", ErrKey)
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	lower := binary.BigEndian.AppendUint64(append(Key(nil), prefix...), unixNanos(q.From))
	upper := prefixEnd(prefix)
	if !q.To.IsZero() {
		upper = binary.BigEndian.AppendUint64(append(Key(nil), prefix...), unixNanos(q.To))
	}
	if q.After != "" {
		after, err := hex.DecodeString(q.After)
		if err != nil || len(after) != 16 {
			return AuditPage{}, fmt.Errorf("%w: bad audit cursor", ErrKey)
		}
		cursor := append(append(Key(nil), prefix...), after...)
		cursor = append(cursor, 0) // just after the cursor's key
		if string(cursor) > string(lower) {
			lower = cursor
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return AuditPage{}, err
	}
	defer it.Close()
	var page AuditPage
	var last []byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+16 {
			continue // cannot happen for keys written by Audit
		}
		if len(page.Records) == limit {
			page.Next = hex.EncodeToString(last)
			break
		}
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		raw, err := s.getRaw(auditKey(seq))
		if err != nil {
			return AuditPage{}, fmt.Errorf("audit record %d: %w", seq, err)
		}
		var rec AuditRecord
		if err := Unmarshal(raw, &rec); err != nil {
			return AuditPage{}, err
		}
		page.Records = append(page.Records, rec)
		last = append(last[:0], k[len(prefix):]...)
	}
	if err := it.Error(); err != nil {
		return AuditPage{}, err
	}
	return page, nil
}

// lastAuditSeq returns the highest audit sequence in the store (0 if none).
func (s *Store) lastAuditSeq() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(KindAudit)}, UpperBound: []byte{byte(KindAudit) + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("%w: audit key %x", ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}
