package store

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Bounds of one group commit: when more is waiting, the rest goes in the
// next group.
const (
	groupMaxBatches = 1024
	groupMaxBytes   = 8 << 20
)

// committer makes batches durable. In SyncEachWrite mode every batch is
// applied on its own with pebble.Sync. In GroupCommit mode a single
// goroutine takes every batch queued while the previous commit was syncing,
// merges them into one batch and applies it with one pebble.Sync; each
// writer waits until the group holding its batch is durable.
type committer struct {
	db      *pebble.DB
	mode    Durability
	commits atomic.Uint64

	mu    sync.Mutex
	queue []*commitRequest
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

type commitRequest struct {
	batch *pebble.Batch
	done  chan error
}

func newCommitter(db *pebble.DB, mode Durability) *committer {
	c := &committer{db: db, mode: mode}
	if mode == GroupCommit {
		c.wake = make(chan struct{}, 1)
		c.stop = make(chan struct{})
		c.done = make(chan struct{})
		go c.loop()
	}
	return c
}

// commit makes b durable and closes it.
func (c *committer) commit(b *pebble.Batch) error {
	if c.mode != GroupCommit {
		err := c.db.Apply(b, pebble.Sync)
		c.commits.Add(1)
		b.Close()
		return err
	}
	r := &commitRequest{batch: b, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the loop is already awake and will see the request
	}
	err := <-r.done
	b.Close()
	return err
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			// The Store is closing: no writer is running (Close waits for
			// them), so the queue is empty.
			return
		}
		for {
			c.mu.Lock()
			q := c.queue
			c.queue = nil
			c.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for len(q) > 0 {
				n, size := 0, 0
				for n < len(q) && n < groupMaxBatches && (n == 0 || size+len(q[n].batch.Repr()) <= groupMaxBytes) {
					size += len(q[n].batch.Repr())
					n++
				}
				c.flush(q[:n])
				q = q[n:]
			}
		}
	}
}

// flush commits one group with one pebble.Sync and reports to its writers.
func (c *committer) flush(group []*commitRequest) {
	var err error
	if len(group) == 1 {
		err = c.db.Apply(group[0].batch, pebble.Sync)
	} else {
		size := 0
		for _, r := range group {
			size += len(r.batch.Repr())
		}
		merged := c.db.NewBatchWithSize(size)
		for _, r := range group {
			if err = merged.Apply(r.batch, nil); err != nil {
				break
			}
		}
		if err == nil {
			err = c.db.Apply(merged, pebble.Sync)
		}
		merged.Close()
	}
	c.commits.Add(1)
	for _, r := range group {
		r.done <- err
	}
}

func (c *committer) close() {
	if c.mode == GroupCommit {
		close(c.stop)
		<-c.done
	}
}
