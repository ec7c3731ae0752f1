package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/zstd"
)

// fill writes n users, an evidence blob, a session and audit records.
func fill(t testing.TB, s *Store, n int) {
	t.Helper()
	err := s.Update(nil, func(tx *Tx) error {
		for i := range n {
			if err := tx.Put(UserKey("t", fmt.Sprintf("u%04d", i)), testRecord{Name: fmt.Sprint(i), Counter: uint64(i)}); err != nil {
				return err
			}
		}
		if err := tx.PutEvidence(EvidenceKey("c"), bytes.Repeat([]byte("chain"), 100)); err != nil {
			return err
		}
		return tx.Audit(AuditRecord{Time: time.Unix(1e9, 0), Tenant: "t", User: "u0001", Event: "enroll.completed"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession("sess", []byte("data"), time.Unix(2e9, 0)); err != nil {
		t.Fatal(err)
	}
}

// dump returns every record of a store (metadata excluded) as text.
func dump(t testing.TB, s *Store) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.scanAll(s.db, func(k, v []byte) error { fmt.Fprintf(&b, "%x=%x\n", k, v); return nil }); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExportImport(t *testing.T) {
	src := openTest(t, Options{})
	fill(t, src, 500)
	var stream bytes.Buffer
	n, err := src.Export(&stream)
	if err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, Options{})
	m, err := dst.Import(bytes.NewReader(stream.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if n != m || n < 500 {
		t.Fatalf("exported %d records, imported %d", n, m)
	}
	if a, b := dump(t, src), dump(t, dst); a != b {
		t.Fatal("the imported store differs from the exported one")
	}
	if ev, err := dst.Evidence(EvidenceKey("c")); err != nil || len(ev) != 500 {
		t.Errorf("evidence after import: %d %v", len(ev), err)
	}
	// The audit sequence goes on after the imported records.
	dst.Update(nil, func(tx *Tx) error {
		return tx.Audit(AuditRecord{Time: time.Unix(1e9+1, 0), Tenant: "t", Event: "next"})
	})
	page, _ := dst.Audit(AuditQuery{Tenant: "t"})
	if len(page.Records) != 2 || page.Records[1].Seq != page.Records[0].Seq+1 {
		t.Errorf("audit after import: %+v", page.Records)
	}
	// Import needs an empty store.
	if _, err := dst.Import(bytes.NewReader(stream.Bytes())); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Import into a non-empty store: %v", err)
	}
}

// TestExportIsASnapshot exports while writers change the store: every
// exported state is one where each writer's two keys agree.
func TestExportIsASnapshot(t *testing.T) {
	s := openTest(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := TenantKey(fmt.Sprintf("a%d", w)), TenantKey(fmt.Sprintf("b%d", w))
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Update([]Key{a, b}, func(tx *Tx) error {
					tx.Put(a, testRecord{Counter: i})
					return tx.Put(b, testRecord{Counter: i})
				})
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for range 5 {
		var stream bytes.Buffer
		if _, err := s.Export(&stream); err != nil {
			t.Fatal(err)
		}
		dst, err := Open("", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Import(&stream); err != nil {
			t.Fatal(err)
		}
		for w := range 4 {
			var a, b testRecord
			dst.Get(TenantKey(fmt.Sprintf("a%d", w)), &a)
			dst.Get(TenantKey(fmt.Sprintf("b%d", w)), &b)
			if a.Counter != b.Counter {
				t.Errorf("writer %d: exported a=%d b=%d", w, a.Counter, b.Counter)
			}
		}
		dst.Close()
	}
}

// rawStream compresses an uncompressed export body.
func rawStream(body []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(body, nil)
}

func TestImportRefusesDamage(t *testing.T) {
	src := openTest(t, Options{})
	fill(t, src, 20)
	var stream bytes.Buffer
	if _, err := src.Export(&stream); err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	body, err := dec.DecodeAll(stream.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(body); b[i] ^= 1; return rawStream(b) }
	cases := map[string][]byte{
		"not zstd":          []byte("hello"),
		"empty":             {},
		"truncated stream":  stream.Bytes()[:stream.Len()/2],
		"truncated body":    rawStream(body[:len(body)-5]),
		"bad magic":         flip(0),
		"flipped in record": flip(len(body) / 2),
		"flipped checksum":  flip(len(body) - 1),
		"trailing data":     rawStream(append(bytes.Clone(body), 0)),
		"wrong schema":      rawStream(append(append([]byte(exportMagic), 1, 9), body[len(exportMagic)+2:]...)),
		"meta key":          rawStream(exportBody(t, [][2][]byte{{metaKey("schema"), {1}}})),
		"unknown kind":      rawStream(exportBody(t, [][2][]byte{{{0x7f, 0, 0}, {1}}})),
		"out of order":      rawStream(exportBody(t, [][2][]byte{{TenantKey("b"), {1}}, {TenantKey("a"), {1}}})),
		"duplicate key":     rawStream(exportBody(t, [][2][]byte{{TenantKey("a"), {1}}, {TenantKey("a"), {2}}})),
	}
	dst := openTest(t, Options{})
	for name, data := range cases {
		if _, err := dst.Import(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: imported", name)
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchema) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		if d := dump(t, dst); d != "" {
			t.Fatalf("%s: store not empty after a failed import:\n%s", name, d)
		}
	}
	// The same store then takes a good stream.
	if _, err := dst.Import(bytes.NewReader(stream.Bytes())); err != nil {
		t.Fatalf("good stream after failures: %v", err)
	}
	if dump(t, dst) != dump(t, src) {
		t.Error("store differs after importing the good stream")
	}
}

// exportBody builds an uncompressed export body with the given records and a
// correct count and checksum.
func exportBody(t testing.TB, records [][2][]byte) []byte {
	var b bytes.Buffer
	put := func(v uint64) {
		var n [10]byte
		i := 0
		for v >= 0x80 {
			n[i] = byte(v) | 0x80
			v >>= 7
			i++
		}
		n[i] = byte(v)
		b.Write(n[:i+1])
	}
	b.WriteString(exportMagic)
	put(exportVersion)
	put(SchemaVersion)
	for _, r := range records {
		put(uint64(len(r[0])))
		b.Write(r[0])
		put(uint64(len(r[1])))
		b.Write(r[1])
	}
	put(0)
	put(uint64(len(records)))
	sum := sha256Sum(b.Bytes())
	b.Write(sum)
	return b.Bytes()
}

func TestImportInterruptedIsWiped(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	// An import that stopped half-way: the marker and some records.
	err = s.Update(nil, func(tx *Tx) error {
		tx.put(metaKey(metaImport), nil)
		return tx.Put(UserKey("t", "u"), testRecord{Name: "half"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := dump(t, s); d != "" {
		t.Errorf("interrupted import left records:\n%s", d)
	}
	if ok, _ := (dbReader{s}).Has(metaKey(metaImport)); ok {
		t.Error("import marker left")
	}
}

// FuzzImport feeds arbitrary uncompressed bodies to Import: it never panics,
// and either imports or leaves the store empty.
func FuzzImport(f *testing.F) {
	f.Add(exportBody(f, [][2][]byte{{TenantKey("a"), {0xa0}}, {UserKey("a", "b"), {1, 2}}}))
	f.Add(exportBody(f, nil))
	f.Add([]byte(exportMagic + "\x01\x01\x05\x01"))
	s, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := s.Import(bytes.NewReader(rawStream(body)))
		if err != nil {
			if d := dump(t, s); d != "" {
				t.Fatalf("failed import (%v) left records", err)
			}
			return
		}
		if err := s.wipe(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExportToFailingWriter(t *testing.T) {
	s := openTest(t, Options{})
	fill(t, s, 5000)
	if _, err := s.Export(failWriter{}); err == nil {
		t.Error("Export to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
