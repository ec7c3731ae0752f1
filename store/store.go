// Package store keeps keybind's data in Pebble: tenants, users, devices,
// credentials and their attestation evidence, enrollments, sign-in attempts,
// sessions and the audit log.
//
// The store owns bytes on disk; the rules of the product live in package
// engine. What the store promises:
//
//   - A documented key schema (see Kind): every key is a kind byte and
//     length-prefixed or fixed-width components, so no two tuples share a key.
//   - Values are CBOR, encoded deterministically and decoded strictly
//     (Marshal, Unmarshal). Attestation evidence is kept zstd-compressed for
//     audit and later re-verification (Tx.PutEvidence, Store.Evidence).
//   - Durable before acknowledged: Update returns only after its writes are
//     on stable storage (fsync), either one commit per write or through a
//     group commit that gathers concurrent writers into one fsync (Options.
//     Durability). There is no mode that acknowledges earlier.
//   - Atomic state changes: Update locks the keys it names (per-key locks),
//     lets its function read and decide, and commits everything it wrote in
//     one Pebble batch. Tx.Create (create if absent) and Tx.CompareAndSwap
//     express "registered once", "consumed once", "moves once from pending to
//     final" and "a counter only rises". A writer keeps its keys locked until
//     its batch is durable, so View, which takes the same locks, only ever
//     sees durable state.
//   - A time-ordered audit log queryable by tenant, user and time range
//     (Tx.Audit, Store.Audit), sessions with expiry (PutSession, Session),
//     deletion of expired records (Tx.DeleteAfter, Sweep).
//   - Export and Import of a consistent snapshot as a zstd stream.
//
// A Store has no global state: several can be open at once (on different
// directories or file systems).
//
//	s, err := store.Open(dir, store.Options{})
//	defer s.Close()
//	err = s.Update([]store.Key{store.KeyIDKey(id)}, func(tx *store.Tx) error {
//		return tx.Create(store.KeyIDKey(id), credentialID) // store.ErrExists if registered
//	})
package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors of the store. They are compared with errors.Is.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrExists    = errors.New("store: already exists")
	ErrConflict  = errors.New("store: value changed (compare-and-swap failed)")
	ErrNotLocked = errors.New("store: key not locked by this update")
	ErrClosed    = errors.New("store: closed")
	ErrNotEmpty  = errors.New("store: not empty")
	ErrSchema    = errors.New("store: unknown schema version")
)

// SchemaVersion is the version of the key schema and record encoding this
// package writes. Open refuses a store written with another version.
const SchemaVersion = 1

// Durability selects how Update makes its batch durable. Every mode fsyncs
// the write-ahead log before Update returns.
type Durability int

const (
	// GroupCommit (the default) gathers the batches of concurrent writers
	// into one Pebble batch committed with one fsync.
	GroupCommit Durability = iota
	// SyncEachWrite commits each batch on its own with pebble.Sync.
	SyncEachWrite
)

func (d Durability) String() string {
	switch d {
	case GroupCommit:
		return "group-commit"
	case SyncEachWrite:
		return "sync-each-write"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configures Open. The zero value is a durable store on the
// operating system's file system with group commit.
type Options struct {
	// FS is the file system; nil means the operating system's. Tests use
	// vfs.NewCrashableMem to simulate losing unsynced data.
	FS vfs.FS
	// Durability chooses group commit (default) or one fsync per write.
	Durability Durability
	// MaxEvidence bounds decompressed evidence (default MaxEvidence).
	MaxEvidence int
	// Logf receives Pebble's error messages; nil discards them. Pebble's
	// informational messages are always discarded.
	Logf func(format string, args ...any)
	// Observe, when set, receives the latency of every operation: "update"
	// (locks, the function and the durable commit), "commit" (the durable
	// commit alone), "view", "get", "scan" and "evidence". It is called on
	// the operation's goroutine and must be fast and safe for concurrent
	// use (a metrics histogram).
	Observe func(op string, d time.Duration)
}

// lockStripes is the number of per-key lock stripes. Keys hash to a stripe;
// two keys sharing a stripe only wait for each other.
const lockStripes = 4096

// Store is an open keybind data directory. Its methods are safe for
// concurrent use.
type Store struct {
	db       *pebble.DB
	commit   *committer
	comp     *compressor
	seed     maphash.Seed
	locks    [lockStripes]sync.RWMutex
	auditSeq atomic.Uint64

	// closing is held shared by every operation and exclusively by Close.
	closing sync.RWMutex
	closed  bool

	observe func(op string, d time.Duration)

	updates atomic.Uint64 // acknowledged updates that wrote something
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	maxEvidence := opts.MaxEvidence
	if maxEvidence <= 0 {
		maxEvidence = MaxEvidence
	}
	po := &pebble.Options{
		FS:                 fs,
		Logger:             pebbleLogger{opts.Logf},
		FormatMajorVersion: pebble.FormatNewest,
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dir, err)
	}
	comp, err := newCompressor(maxEvidence)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, comp: comp, seed: maphash.MakeSeed(), observe: opts.Observe}
	s.commit = newCommitter(db, opts.Durability)
	if err := s.init(); err != nil {
		s.commit.close()
		comp.close()
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the schema version (writing it into a new store), finishes
// wiping an import that was interrupted, and finds the last audit sequence.
func (s *Store) init() error {
	if _, err := s.getRaw(metaKey(metaImport)); err == nil {
		if err := s.wipe(); err != nil {
			return fmt.Errorf("store: clearing an interrupted import: %w", err)
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	var version int
	switch raw, err := s.getRaw(metaKey(metaSchema)); {
	case err == nil:
		if err := Unmarshal(raw, &version); err != nil {
			return err
		}
		if version != SchemaVersion {
			return fmt.Errorf("%w %d (this build reads %d)", ErrSchema, version, SchemaVersion)
		}
	case errors.Is(err, ErrNotFound):
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: data without a schema version", ErrSchema)
		}
		v, _ := Marshal(SchemaVersion)
		b := s.db.NewBatch()
		b.Set(metaKey(metaSchema), v, nil)
		if err := s.db.Apply(b, pebble.Sync); err != nil {
			return err
		}
	default:
		return err
	}
	last, err := s.lastAuditSeq()
	if err != nil {
		return err
	}
	s.auditSeq.Store(last)
	return nil
}

const (
	metaSchema = "schema"
	metaImport = "import"
)

// Close waits for running operations, then closes the database. Operations
// after Close return ErrClosed.
func (s *Store) Close() error {
	s.closing.Lock()
	defer s.closing.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.commit.close()
	s.comp.close()
	return s.db.Close()
}

// enter marks an operation as running; it fails once the store is closed.
func (s *Store) enter() error {
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.closing.RUnlock() }

// Stats counts the store's writes since Open.
type Stats struct {
	// Updates is the number of acknowledged updates that wrote something.
	Updates uint64
	// Commits is the number of durable Pebble commits (each one fsync of the
	// write-ahead log, or fewer when Pebble coalesces them). Updates/Commits
	// is how many writers a group commit served per fsync.
	Commits uint64
}

// Stats returns the write counters.
func (s *Store) Stats() Stats {
	return Stats{Updates: s.updates.Load(), Commits: s.commit.commits.Load()}
}

// stripes returns the sorted, distinct lock stripes of keys.
func (s *Store) stripes(keys []Key) ([]int, error) {
	out := make([]int, 0, len(keys))
	for _, k := range keys {
		if len(k) == 0 {
			return nil, fmt.Errorf("%w: empty key", ErrKey)
		}
		out = append(out, int(maphash.Bytes(s.seed, k)%lockStripes))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Update locks keys, runs fn, and commits what fn wrote as one atomic,
// durable batch. It returns fn's error (writing nothing) or the commit's.
// Keys are locked exclusively in a fixed order, so concurrent updates never
// deadlock; fn must not call other Store methods that lock (Update, View,
// PutSession, Sweep) or it may wait for itself.
func (s *Store) Update(keys []Key, fn func(tx *Tx) error) error {
	if s.observe != nil {
		defer s.observed("update", time.Now())
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	stripes, err := s.stripes(keys)
	if err != nil {
		return err
	}
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}()
	tx := &Tx{s: s, locked: keys, writes: map[string]int{}}
	if err := fn(tx); err != nil {
		return err
	}
	return s.apply(tx)
}

// View locks keys shared and runs fn. Because writers hold their keys until
// their batch is durable, what fn reads of the locked keys is durable.
func (s *Store) View(keys []Key, fn func(r Reader) error) error {
	if s.observe != nil {
		defer s.observed("view", time.Now())
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	stripes, err := s.stripes(keys)
	if err != nil {
		return err
	}
	for _, i := range stripes {
		s.locks[i].RLock()
	}
	defer func() {
		for _, i := range stripes {
			s.locks[i].RUnlock()
		}
	}()
	return fn(dbReader{s})
}

// Get reads the record at k into v without locking (ErrNotFound when
// absent). It sees every acknowledged write, and possibly a write whose
// commit is still syncing; use View when that matters.
func (s *Store) Get(k Key, v any) error {
	if s.observe != nil {
		defer s.observed("get", time.Now())
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return dbReader{s}.Get(k, v)
}

// Has reports whether k holds a value, without locking (as Get).
func (s *Store) Has(k Key) (bool, error) {
	if s.observe != nil {
		defer s.observed("get", time.Now())
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	return dbReader{s}.Has(k)
}

// Scan calls fn with every key having prefix, in key order, and its raw
// value (valid only during the call; decode it with Unmarshal). fn returns
// Stop to end the scan early. Scan does not lock.
func (s *Store) Scan(prefix Key, fn func(k Key, value []byte) error) error {
	if s.observe != nil {
		defer s.observed("scan", time.Now())
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return dbReader{s}.Scan(prefix, fn)
}

// Evidence returns the decompressed evidence stored at k by Tx.PutEvidence.
func (s *Store) Evidence(k Key) ([]byte, error) {
	if s.observe != nil {
		defer s.observed("evidence", time.Now())
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	z, err := s.getRaw(k)
	if err != nil {
		return nil, err
	}
	return s.comp.decompress(z)
}

// Stop ends a Scan early; Scan then returns nil.
var Stop = errors.New("store: stop scan")

// Reader reads the store (from View, or a Tx).
type Reader interface {
	// Get decodes the record at k into v, or returns ErrNotFound.
	Get(k Key, v any) error
	// Has reports whether k holds a value.
	Has(k Key) (bool, error)
	// Scan calls fn with every key having prefix and its raw value.
	Scan(prefix Key, fn func(k Key, value []byte) error) error
}

type dbReader struct{ s *Store }

func (r dbReader) Get(k Key, v any) error {
	raw, err := r.s.getRaw(k)
	if err != nil {
		return err
	}
	return Unmarshal(raw, v)
}

func (r dbReader) Has(k Key) (bool, error) {
	_, err := r.s.getRaw(k)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (r dbReader) Scan(prefix Key, fn func(k Key, value []byte) error) error {
	return r.s.scan(r.s.db, prefix, nil, fn)
}

func (s *Store) getRaw(k Key) ([]byte, error) {
	if len(k) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrKey)
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// reader is what scan iterates: the database or a snapshot.
type reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// scan iterates the keys with prefix, starting after `after` when given.
func (s *Store) scan(r reader, prefix, after Key, fn func(k Key, value []byte) error) error {
	if len(prefix) == 0 {
		return fmt.Errorf("%w: empty prefix", ErrKey)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	ok := it.First()
	if after != nil {
		ok = it.SeekGE(append(bytes.Clone(after), 0))
	}
	for ; ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(Key(it.Key()), v); err != nil {
			it.Close()
			if errors.Is(err, Stop) {
				return nil
			}
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// prefixEnd returns the smallest key greater than every key with prefix, or
// nil when there is none (a prefix of 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

// Tx is the write side of an Update: reads see the Tx's own writes, and the
// writes are committed together when the Update's function returns nil.
type Tx struct {
	s      *Store
	locked []Key
	ops    []op
	writes map[string]int // key -> index in ops
}

type op struct {
	key    Key
	value  []byte
	delete bool
}

// Get decodes the record at k into v (the Tx's own write if any).
func (tx *Tx) Get(k Key, v any) error {
	raw, err := tx.raw(k)
	if err != nil {
		return err
	}
	return Unmarshal(raw, v)
}

// Has reports whether k holds a value.
func (tx *Tx) Has(k Key) (bool, error) {
	_, err := tx.raw(k)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Scan iterates committed state (it does not see this Tx's own writes).
func (tx *Tx) Scan(prefix Key, fn func(k Key, value []byte) error) error {
	return tx.s.scan(tx.s.db, prefix, nil, fn)
}

func (tx *Tx) raw(k Key) ([]byte, error) {
	if i, ok := tx.writes[string(k)]; ok {
		if tx.ops[i].delete {
			return nil, ErrNotFound
		}
		return tx.ops[i].value, nil
	}
	return tx.s.getRaw(k)
}

// Put writes the record v at k.
func (tx *Tx) Put(k Key, v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err
	}
	return tx.put(k, b)
}

// Delete removes k.
func (tx *Tx) Delete(k Key) error {
	if _, err := DecodeKey(k); err != nil {
		return err
	}
	tx.set(op{key: k, delete: true})
	return nil
}

// Create writes v at k only if k holds nothing; otherwise it returns
// ErrExists. k must be one of the keys the Update locked.
func (tx *Tx) Create(k Key, v any) error {
	if !tx.isLocked(k) {
		return fmt.Errorf("%w: %x", ErrNotLocked, []byte(k))
	}
	if ok, err := tx.Has(k); err != nil {
		return err
	} else if ok {
		return ErrExists
	}
	return tx.Put(k, v)
}

// CompareAndSwap replaces the record at k with next only if it currently
// encodes exactly as old does; otherwise it returns ErrConflict (ErrNotFound
// when k holds nothing). k must be one of the keys the Update locked.
func (tx *Tx) CompareAndSwap(k Key, old, next any) error {
	if !tx.isLocked(k) {
		return fmt.Errorf("%w: %x", ErrNotLocked, []byte(k))
	}
	want, err := Marshal(old)
	if err != nil {
		return err
	}
	cur, err := tx.raw(k)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, want) {
		return ErrConflict
	}
	return tx.Put(k, next)
}

// Take decodes the record at k into v and deletes it, so that of all the
// Updates that take k, exactly one finds it (the others get ErrNotFound). k
// must be one of the keys the Update locked. The deletion is committed with
// the Update's other writes, even when what the record is used for then
// fails: a record that answers once stays consumed.
func (tx *Tx) Take(k Key, v any) error {
	if !tx.isLocked(k) {
		return fmt.Errorf("%w: %x", ErrNotLocked, []byte(k))
	}
	if err := tx.Get(k, v); err != nil {
		return err
	}
	return tx.Delete(k)
}

// PutEvidence stores raw attestation evidence at k, zstd-compressed.
func (tx *Tx) PutEvidence(k Key, raw []byte) error {
	if len(raw) > tx.s.comp.max {
		return fmt.Errorf("store: evidence of %d bytes is over the limit of %d", len(raw), tx.s.comp.max)
	}
	return tx.put(k, tx.s.comp.compress(raw))
}

// DeleteAfter schedules k for deletion by Sweep once time t has passed. A
// key is scheduled once, when it is created: scheduling it again adds a
// second deletion time and the earlier one wins.
func (tx *Tx) DeleteAfter(k Key, t time.Time) error {
	if _, err := DecodeKey(k); err != nil {
		return err
	}
	if len(k) > MaxComponent {
		return fmt.Errorf("%w: key too long to schedule", ErrKey)
	}
	return tx.put(expiryKey(unixNanos(t), k), nil)
}

func (tx *Tx) put(k Key, value []byte) error {
	if _, err := DecodeKey(k); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	tx.set(op{key: k, value: value})
	return nil
}

func (tx *Tx) set(o op) {
	if i, ok := tx.writes[string(o.key)]; ok {
		tx.ops[i] = o
		return
	}
	tx.writes[string(o.key)] = len(tx.ops)
	tx.ops = append(tx.ops, o)
}

func (tx *Tx) isLocked(k Key) bool {
	for _, l := range tx.locked {
		if bytes.Equal(l, k) {
			return true
		}
	}
	return false
}

// apply commits the Tx's writes durably.
func (s *Store) apply(tx *Tx) error {
	if len(tx.ops) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	for _, o := range tx.ops {
		var err error
		if o.delete {
			err = b.Delete(o.key, nil)
		} else {
			err = b.Set(o.key, o.value, nil)
		}
		if err != nil {
			b.Close()
			return err
		}
	}
	start := time.Now()
	err := s.commit.commit(b)
	if s.observe != nil {
		s.observe("commit", time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	s.updates.Add(1)
	return nil
}

// observed reports the latency of an operation started at start.
func (s *Store) observed(op string, start time.Time) { s.observe(op, time.Since(start)) }

func unixNanos(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 || t.Year() > 2262 {
		if t.Year() > 2262 {
			return 1<<63 - 1
		}
		return 0
	}
	return uint64(n)
}

// pebbleLogger discards Pebble's informational messages and forwards its
// errors. Fatalf must not return (Pebble relies on it), so it panics.
type pebbleLogger struct{ logf func(string, ...any) }

func (l pebbleLogger) Infof(string, ...any) {}

func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.logf != nil {
		l.logf("pebble: "+format, args...)
	}
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.Errorf(format, args...)
	panic(fmt.Sprintf("pebble: "+format, args...))
}

var _ Reader = (*Store)(nil)
