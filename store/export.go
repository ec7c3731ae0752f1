package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"
)

// The export stream is zstd-compressed. Decompressed, it is:
//
//	"keybind-export\x00"            magic
//	uvarint 1                       stream format version
//	uvarint SchemaVersion           schema of the keys and records
//	{ uvarint len(key) key uvarint len(value) value }   every record, keys ascending
//	uvarint 0                       end of records (no key is empty)
//	uvarint count                   number of records
//	SHA-256 of every byte above     32 bytes
//
// Metadata keys (KindMeta) are not exported: the header carries the schema.
const (
	exportMagic   = "keybind-export\x00"
	exportVersion = 1
	// Bounds checked on import (far above anything the store writes).
	maxExportKey   = 1 << 18
	maxExportValue = 16 << 20
	importBatch    = 4 << 20
)

// Export writes a consistent snapshot of the store to w as a zstd stream and
// returns the number of records written. Writers may go on meanwhile; the
// snapshot holds exactly the state at one instant, and everything in it is
// durable before the first byte is written.
func (s *Store) Export(w io.Writer) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	// Writes become visible just before their fsync completes; syncing the
	// log once now makes every write the snapshot sees durable.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return 0, err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(zw, h), 64<<10)
	var num [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { bw.Write(num[:binary.PutUvarint(num[:], v)]) }
	bw.WriteString(exportMagic)
	uvarint(exportVersion)
	uvarint(SchemaVersion)
	count := 0
	err = s.scanAll(snap, func(k, v []byte) error {
		uvarint(uint64(len(k)))
		bw.Write(k)
		uvarint(uint64(len(v)))
		_, err := bw.Write(v)
		count++
		return err
	})
	if err != nil {
		zw.Close()
		return 0, err
	}
	uvarint(0)
	uvarint(uint64(count))
	if err := bw.Flush(); err != nil {
		zw.Close()
		return 0, err
	}
	if _, err := zw.Write(h.Sum(nil)); err != nil {
		zw.Close()
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return count, nil
}

// scanAll iterates every record except metadata.
func (s *Store) scanAll(r reader, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(KindMeta) + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Import reads an export stream into the store, which must be empty (a new
// directory), and returns the number of records read. Every key is checked
// against the schema, keys must ascend, and the stream's count and checksum
// must match; on any failure the store is left empty again. An import cut
// short by a crash is wiped the next time the store is opened. Nothing else
// should write to the store while it imports.
func (s *Store) Import(r io.Reader) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	empty := true
	if err := s.scanAll(s.db, func(k, v []byte) error { empty = false; return Stop }); err != nil && !errors.Is(err, Stop) {
		return 0, err
	}
	if !empty {
		return 0, fmt.Errorf("%w: import needs an empty store", ErrNotEmpty)
	}
	marker := s.db.NewBatch()
	marker.Set(metaKey(metaImport), []byte{}, nil)
	if err := s.db.Apply(marker, pebble.Sync); err != nil {
		return 0, err
	}
	n, err := s.importStream(r)
	if err != nil {
		if werr := s.wipe(); werr != nil {
			return 0, errors.Join(err, fmt.Errorf("store: clearing the failed import: %w", werr))
		}
		return 0, err
	}
	last, err := s.lastAuditSeq()
	if err != nil {
		return 0, err
	}
	s.auditSeq.Store(last)
	return n, nil
}

func (s *Store) importStream(r io.Reader) (int, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return 0, fmt.Errorf("%w: export stream: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	in := &hashingReader{r: bufio.NewReaderSize(zr, 64<<10), h: sha256.New()}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: export stream: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	magic := make([]byte, len(exportMagic))
	if err := in.full(magic); err != nil || string(magic) != exportMagic {
		return 0, corrupt("not a keybind export")
	}
	if v, err := binary.ReadUvarint(in); err != nil || v != exportVersion {
		return 0, corrupt("unknown stream version")
	}
	if v, err := binary.ReadUvarint(in); err != nil || v != SchemaVersion {
		return 0, fmt.Errorf("%w: export has schema %d, this build reads %d", ErrSchema, v, SchemaVersion)
	}
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	count := 0
	var prev []byte
	for {
		kl, err := binary.ReadUvarint(in)
		if err != nil {
			return 0, corrupt("record %d: %v", count, err)
		}
		if kl == 0 {
			break
		}
		if kl > maxExportKey {
			return 0, corrupt("record %d: key of %d bytes", count, kl)
		}
		k := make([]byte, kl)
		if err := in.full(k); err != nil {
			return 0, corrupt("record %d: %v", count, err)
		}
		if _, err := DecodeKey(k); err != nil || Kind(k[0]) == KindMeta {
			return 0, corrupt("record %d: key %x is not a record key of the schema", count, k)
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return 0, corrupt("record %d: keys out of order", count)
		}
		prev = k
		vl, err := binary.ReadUvarint(in)
		if err != nil || vl > maxExportValue {
			return 0, corrupt("record %d: bad value length", count)
		}
		v := make([]byte, vl)
		if err := in.full(v); err != nil {
			return 0, corrupt("record %d: %v", count, err)
		}
		b.Set(k, v, nil)
		count++
		if b.Len() >= importBatch {
			if err := s.db.Apply(b, pebble.NoSync); err != nil {
				return 0, err
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	n, err := binary.ReadUvarint(in)
	if err != nil || n != uint64(count) {
		return 0, corrupt("record count does not match")
	}
	sum := in.h.Sum(nil)
	got := make([]byte, len(sum))
	if _, err := io.ReadFull(in.r, got); err != nil || !bytes.Equal(got, sum) {
		return 0, corrupt("checksum does not match")
	}
	if _, err := in.r.ReadByte(); err != io.EOF {
		return 0, corrupt("data after the checksum")
	}
	// The marker's removal is synced, and with it the log before it: every
	// record is durable when Import returns.
	b.Delete(metaKey(metaImport), nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return 0, err
	}
	return count, nil
}

// wipe deletes every record and the import marker, keeping the schema.
func (s *Store) wipe() error {
	b := s.db.NewBatch()
	defer b.Close()
	b.DeleteRange([]byte{byte(KindMeta) + 1}, []byte{0xff}, nil)
	b.Delete(metaKey(metaImport), nil)
	return s.db.Apply(b, pebble.Sync)
}

// hashingReader hashes exactly the bytes its caller consumes.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (h *hashingReader) ReadByte() (byte, error) {
	c, err := h.r.ReadByte()
	if err == nil {
		h.h.Write([]byte{c})
	}
	return c, err
}

func (h *hashingReader) full(p []byte) error {
	if _, err := io.ReadFull(h.r, p); err != nil {
		return err
	}
	h.h.Write(p)
	return nil
}
