package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// session is the stored form of a session: opaque data and its expiry.
type session struct {
	Data    []byte    `cbor:"1,keyasint"`
	Expires time.Time `cbor:"2,keyasint"`
}

// PutSession stores data under id until expires (replacing any previous
// session with that id). After expires, Session reports ErrNotFound and
// Sweep deletes it.
func (s *Store) PutSession(id string, data []byte, expires time.Time) error {
	k := SessionKey(id)
	return s.Update([]Key{k}, func(tx *Tx) error {
		var old session
		switch err := tx.Get(k, &old); {
		case err == nil:
			if err := tx.Delete(expiryKey(unixNanos(old.Expires), k)); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := tx.Put(k, session{Data: data, Expires: expires}); err != nil {
			return err
		}
		return tx.DeleteAfter(k, expires)
	})
}

// Session returns the data of session id and its expiry, or ErrNotFound
// when there is none or it expired at or before now.
func (s *Store) Session(id string, now time.Time) ([]byte, time.Time, error) {
	k := SessionKey(id)
	var sess session
	err := s.View([]Key{k}, func(r Reader) error { return r.Get(k, &sess) })
	if err != nil {
		return nil, time.Time{}, err
	}
	if !now.Before(sess.Expires) {
		return nil, time.Time{}, ErrNotFound
	}
	return sess.Data, sess.Expires, nil
}

// DeleteSession removes session id (no error when there is none).
func (s *Store) DeleteSession(id string) error {
	k := SessionKey(id)
	return s.Update([]Key{k}, func(tx *Tx) error {
		var old session
		switch err := tx.Get(k, &old); {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		if err := tx.Delete(expiryKey(unixNanos(old.Expires), k)); err != nil {
			return err
		}
		return tx.Delete(k)
	})
}

// Sweep deletes up to max keys whose deletion time (Tx.DeleteAfter,
// session expiry) is before now, and returns how many it deleted. Run it
// periodically; each key is deleted under its lock.
func (s *Store) Sweep(now time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	type due struct{ index, target Key }
	var list []due
	err := func() error {
		if err := s.enter(); err != nil {
			return err
		}
		defer s.leave()
		upper := binary.BigEndian.AppendUint64(Key{byte(KindExpiry)}, unixNanos(now))
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: Key{byte(KindExpiry)}, UpperBound: upper})
		if err != nil {
			return err
		}
		for ok := it.First(); ok && len(list) < max; ok = it.Next() {
			t, err := DecodeKey(it.Key())
			if err != nil {
				it.Close()
				return fmt.Errorf("%w: expiry key: %v", ErrCorrupt, err)
			}
			list = append(list, due{index: Key(append([]byte(nil), it.Key()...)), target: Key(t.Components[1].Bytes)})
		}
		return errors.Join(it.Error(), it.Close())
	}()
	if err != nil {
		return 0, err
	}
	deleted := 0
	const perUpdate = 128
	for len(list) > 0 {
		n := min(len(list), perUpdate)
		chunk := list[:n]
		list = list[n:]
		keys := make([]Key, 0, n)
		for _, d := range chunk {
			keys = append(keys, d.target)
		}
		done := 0
		err := s.Update(keys, func(tx *Tx) error {
			done = 0
			for _, d := range chunk {
				// The deletion time may have been replaced since the scan
				// (PutSession does so under the target's lock): then the
				// index entry is gone and the key stays.
				if ok, err := tx.Has(d.index); err != nil {
					return err
				} else if !ok {
					continue
				}
				done++
				if err := tx.Delete(d.target); err != nil {
					return err
				}
				if err := tx.Delete(d.index); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		deleted += done
	}
	return deleted, nil
}
