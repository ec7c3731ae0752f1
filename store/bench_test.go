package store

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCountingFS counts the fsyncs (Sync, SyncData, SyncTo) of files it
// creates, so the benchmark can report fsyncs per acknowledged write.
type syncCountingFS struct {
	vfs.FS
	syncs *atomic.Int64
}

type syncCountingFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncCountingFile) Sync() error     { f.syncs.Add(1); return f.File.Sync() }
func (f syncCountingFile) SyncData() error { f.syncs.Add(1); return f.File.SyncData() }
func (f syncCountingFile) SyncTo(n int64) (bool, error) {
	f.syncs.Add(1)
	return f.File.SyncTo(n)
}

func (fs syncCountingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return syncCountingFile{f, fs.syncs}, nil
}

func (fs syncCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs syncCountingFS) ReuseForWrite(old, new string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(old, new, c))
}

func (fs syncCountingFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

// BenchmarkDurability compares the two durable commit modes on a real
// directory: each operation is one acknowledged Update (create a 200-byte
// record under its own key, as a sign-in attempt does), with 1, 16 and 64
// concurrent writers. Run the modes side by side in one run:
//
//	go test ./store -run '^$' -bench Durability -benchtime 2000x -count 3
func BenchmarkDurability(b *testing.B) {
	payload := testRecord{Name: string(make([]byte, 200))}
	for _, writers := range []int{1, 16, 64} {
		for _, mode := range []Durability{SyncEachWrite, GroupCommit} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, mode), func(b *testing.B) {
				var syncs atomic.Int64
				s, err := Open(b.TempDir(), Options{Durability: mode, FS: syncCountingFS{vfs.Default, &syncs}})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var next atomic.Int64
				before, syncsBefore := s.Stats(), syncs.Load()
				b.ResetTimer()
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							k := AttemptKey(fmt.Sprintf("attempt-%d", n))
							if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(k, payload) }); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				after := s.Stats()
				b.ReportMetric(float64(syncs.Load()-syncsBefore)/float64(b.N), "fsyncs/op")
				b.ReportMetric(float64(after.Updates-before.Updates)/float64(max(1, after.Commits-before.Commits)), "writes/commit")
			})
		}
	}
}

// BenchmarkDurabilityInterleaved measures three ways of acknowledging
// durable writes in turn. Each iteration is one round of writers×8
// acknowledged writes (8 per writer, all concurrent) on each of:
//
//   - one-fsync: one fsync per write, the baseline group commit is measured
//     against. Writes are acknowledged one at a time (a lock around each
//     sync-each-write Update), so no fsync is ever shared; fsyncs/op is 1.
//   - sync: pebble.Sync per write (SyncEachWrite), concurrent writers.
//     Pebble's write-ahead log already lets concurrent syncs share an fsync.
//   - group: the store's group commit (GroupCommit, the default).
//
// The order of the three rotates every iteration, and the benchmark reports
// the median over iterations of each ratio to group, so that the load of a
// shared machine, which changes from second to second, hits every side of a
// ratio alike.
//
//	go test ./store -run '^$' -bench DurabilityInterleaved -benchtime 30x -count 3
func BenchmarkDurabilityInterleaved(b *testing.B) {
	payload := testRecord{Name: string(make([]byte, 200))}
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			open := func(mode Durability) *Store {
				s, err := Open(b.TempDir(), Options{Durability: mode})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				return s
			}
			syncStore, groupStore, serialStore := open(SyncEachWrite), open(GroupCommit), open(SyncEachWrite)
			var serial sync.Mutex
			var next atomic.Int64
			write := func(s *Store, one bool) {
				k := AttemptKey(fmt.Sprintf("attempt-%d", next.Add(1)))
				if one {
					serial.Lock()
					defer serial.Unlock()
				}
				if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(k, payload) }); err != nil {
					b.Error(err)
				}
			}
			round := func(s *Store, one bool) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 8 {
							write(s, one)
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			const oneFsync, syncEach, group = 0, 1, 2
			rounds := [3]func() time.Duration{
				oneFsync: func() time.Duration { return round(serialStore, true) },
				syncEach: func() time.Duration { return round(syncStore, false) },
				group:    func() time.Duration { return round(groupStore, false) },
			}
			var total [3]time.Duration
			oneRatios := make([]float64, 0, b.N)
			syncRatios := make([]float64, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				var t [3]time.Duration
				for j := range 3 {
					m := (i + j) % 3
					t[m] = rounds[m]()
					total[m] += t[m]
				}
				oneRatios = append(oneRatios, float64(t[oneFsync])/float64(t[group]))
				syncRatios = append(syncRatios, float64(t[syncEach])/float64(t[group]))
			}
			b.StopTimer()
			slices.Sort(oneRatios)
			slices.Sort(syncRatios)
			perWrite := float64(b.N * writers * 8)
			b.ReportMetric(oneRatios[len(oneRatios)/2], "one-fsync/group")
			b.ReportMetric(syncRatios[len(syncRatios)/2], "sync/group")
			b.ReportMetric(float64(total[oneFsync].Microseconds())/perWrite, "µs/write-one-fsync")
			b.ReportMetric(float64(total[syncEach].Microseconds())/perWrite, "µs/write-sync")
			b.ReportMetric(float64(total[group].Microseconds())/perWrite, "µs/write-group")
			g := groupStore.Stats()
			b.ReportMetric(float64(g.Updates)/float64(max(1, g.Commits)), "writes/group")
		})
	}
}
