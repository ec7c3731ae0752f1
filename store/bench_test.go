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

// BenchmarkDurabilityInterleaved measures the two modes in turn: each
// iteration is one round of writers×8 acknowledged writes (8 per writer,
// all concurrent) on a sync-each-write store, and one on a group-commit
// store, in alternating order. It reports the median over iterations of the
// ratio sync-each-write time / group-commit time, so that the load of a
// shared machine, which changes from second to second, hits both sides of
// each ratio alike.
//
//	go test ./store -run '^$' -bench DurabilityInterleaved -benchtime 100x -count 3
func BenchmarkDurabilityInterleaved(b *testing.B) {
	payload := testRecord{Name: string(make([]byte, 200))}
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			stores := map[Durability]*Store{}
			for _, mode := range []Durability{SyncEachWrite, GroupCommit} {
				s, err := Open(b.TempDir(), Options{Durability: mode})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores[mode] = s
			}
			var next atomic.Int64
			round := func(s *Store) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 8 {
							k := AttemptKey(fmt.Sprintf("attempt-%d", next.Add(1)))
							if err := s.Update([]Key{k}, func(tx *Tx) error { return tx.Create(k, payload) }); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			ratios := make([]float64, 0, b.N)
			var syncTotal, groupTotal time.Duration
			b.ResetTimer()
			for i := range b.N {
				var ts, tg time.Duration
				if i%2 == 0 {
					ts, tg = round(stores[SyncEachWrite]), round(stores[GroupCommit])
				} else {
					tg, ts = round(stores[GroupCommit]), round(stores[SyncEachWrite])
				}
				syncTotal += ts
				groupTotal += tg
				ratios = append(ratios, float64(ts)/float64(tg))
			}
			b.StopTimer()
			slices.Sort(ratios)
			perWrite := float64(b.N * writers * 8)
			b.ReportMetric(ratios[len(ratios)/2], "sync/group")
			b.ReportMetric(float64(syncTotal.Microseconds())/perWrite, "µs/write-sync")
			b.ReportMetric(float64(groupTotal.Microseconds())/perWrite, "µs/write-group")
			g := stores[GroupCommit].Stats()
			b.ReportMetric(float64(g.Updates)/float64(max(1, g.Commits)), "writes/group")
		})
	}
}
