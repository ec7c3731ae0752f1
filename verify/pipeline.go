package verify

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Pipeline. The zero value is a good default for a
// server: one worker per core, batches of up to 64 items, waits of at most
// 200µs, at most 65536 items queued.
type Options struct {
	// Workers is the number of goroutines verifying at once (callers
	// verifying their own items on the spot count against it).
	// Default: runtime.GOMAXPROCS(0), one per core.
	Workers int
	// MaxBatch bounds the number of items verified together. Default 64.
	MaxBatch int
	// MaxWait bounds how long an Ed25519 item may wait for a batch to fill
	// when the arrival rate says a fuller batch is near. A negative value
	// never waits. Default 200µs.
	MaxWait time.Duration
	// MaxQueue bounds the number of items waiting for a worker; Verify
	// refuses more with ErrOverloaded. Default 65536.
	MaxQueue int
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.MaxWait == 0 {
		o.MaxWait = 200 * time.Microsecond
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 65536
	}
	return o
}

var (
	// ErrClosed is returned by Verify after Close.
	ErrClosed = errors.New("verify: pipeline closed")
	// ErrOverloaded is returned by Verify when MaxQueue items are already
	// waiting; the caller should shed the request (HTTP 429 or 503).
	ErrOverloaded = errors.New("verify: too many items waiting")
)

// Pipeline verifies signatures for many concurrent callers. Every caller's
// items go through one queue, and workers — one per core — take them in
// batches. How a batch forms adapts to the load:
//
//   - When nothing is queued and a worker is free, the caller verifies its
//     items on the spot (spreading a multi-item request over the idle
//     cores): a lone request waits for nothing and pays no hand-off.
//   - When every worker is busy, items queue, and the next free worker
//     takes up to MaxBatch of them at once; batches grow with the load.
//   - Ed25519 items, whose cost per signature falls by half or more in a
//     batch, also wait up to MaxWait for a batch to fill, but only when the
//     recent arrival rate says more are coming within the wait; a batch
//     closes early when the arrivals stop.
//
// Ed25519 batches are checked with one randomised multi-scalar equation
// (curve25519-voi); when it fails, each signature is checked on its own to
// find the bad ones. ECDSA does not batch: a worker checks its items one by
// one, and the queue only spares the per-request overhead.
//
// A Pipeline is safe for concurrent use. Close it to stop its workers.
type Pipeline struct {
	opts    Options
	maxWait int64 // ns; <= 0: never wait
	start   time.Time
	// queueAlways sends every item through the queue (tests and
	// benchmarks measure the hand-off with it).
	queueAlways bool

	mu       sync.Mutex
	q        []*job // FIFO; q[qhead:] are waiting
	qhead    int
	queued   int   // items in q not yet taken
	busy     int   // goroutines verifying (workers and callers)
	deadline int64 // when the batch forming in q must go (ns since start)
	timing   bool  // a worker is parked until deadline
	idle     []*worker
	spare    []*state
	closed   bool
	lastArr  int64 // last arrival (ns since start)
	gap      int64 // moving average of the time between arrivals (ns)

	jobs sync.Pool
	wg   sync.WaitGroup

	stats stats
}

// job is one Verify call's items on their way through the queue.
type job struct {
	items   []Item
	results []Result
	next    int // first item not yet taken by a worker
	pending atomic.Int32
	done    chan struct{}
	enq     int64 // when it was queued (ns since start)
}

// span is a run of one job's items taken as part of a batch.
type span struct {
	j      *job
	lo, hi int
}

type worker struct {
	p     *Pipeline
	st    *state
	wake  chan struct{}
	timer *time.Timer
}

// New starts a pipeline with opts' workers.
func New(opts Options) *Pipeline {
	opts = opts.withDefaults()
	p := &Pipeline{opts: opts, maxWait: int64(opts.MaxWait), start: time.Now(), gap: 1 << 40}
	p.jobs.New = func() any { return &job{done: make(chan struct{}, 1)} }
	for range opts.Workers {
		w := &worker{p: p, st: newState(opts.MaxBatch), wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
		p.spare = append(p.spare, newState(opts.MaxBatch))
		p.wg.Add(1)
		go w.loop()
	}
	return p
}

// Options returns the options in effect, defaults filled in.
func (p *Pipeline) Options() Options { return p.opts }

func (p *Pipeline) now() int64 { return int64(time.Since(p.start)) }

// Verify checks every item and stores its outcome in the result of the same
// index; results must be at least as long as items. It returns when every
// result is set. Its error is not about the signatures (those are in
// results) but about the pipeline: ErrClosed or ErrOverloaded, in which
// case no result was set.
func (p *Pipeline) Verify(items []Item, results []Result) error {
	if len(results) < len(items) {
		panic("verify: fewer results than items")
	}
	if len(items) == 0 {
		return nil
	}
	now := p.now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	wait := p.arrive(items, now)
	if !wait && p.queued == 0 && p.busy < p.opts.Workers && !p.queueAlways {
		return p.verifyHere(items, results, now)
	}
	if p.queued+len(items) > p.opts.MaxQueue {
		p.mu.Unlock()
		p.stats.overloaded.Add(1)
		return ErrOverloaded
	}
	j := p.enqueue(items, results, now, wait)
	p.kick(now)
	p.mu.Unlock()
	<-j.done
	p.jobs.Put(j)
	return nil
}

// arrive records an arrival for the rate estimate and reports whether the
// items should wait for a batch: they include Ed25519 signatures, fewer
// than a batch, and the recent arrivals are frequent enough that at least
// two more are expected within MaxWait. Called with p.mu held.
func (p *Pipeline) arrive(items []Item, now int64) bool {
	gap := now - p.lastArr
	p.lastArr = now
	p.gap += (gap - p.gap) / 8
	if p.maxWait <= 0 || len(items) >= p.opts.MaxBatch || p.gap*2 > p.maxWait {
		return false
	}
	ed := false
	for i := range items {
		if items[i].Algorithm != Ed25519 {
			return false
		}
		ed = true
	}
	return ed
}

// verifyHere verifies items on the caller's goroutine, handing a share to
// idle workers when several cores are free. Called with p.mu held; returns
// with it released.
func (p *Pipeline) verifyHere(items []Item, results []Result, now int64) error {
	st := p.spare[len(p.spare)-1]
	p.spare = p.spare[:len(p.spare)-1]
	p.busy++
	share := len(items)
	var j *job
	if free := p.opts.Workers - p.busy; free > 0 && len(items) > 1 && len(p.idle) > 0 {
		helpers := min(free, len(p.idle), len(items)-1)
		share = (len(items) + helpers) / (helpers + 1)
		j = p.enqueue(items[share:], results[share:], now, false)
		p.kick(now)
	}
	p.mu.Unlock()

	st.verify(p, items[:share], results[:share])

	p.mu.Lock()
	// Verify what the idle workers have not taken yet of the rest.
	for j != nil && p.qhead < len(p.q) && p.q[p.qhead] == j {
		st.spans = p.takeHead(st.spans[:0], p.opts.MaxBatch)
		p.mu.Unlock()
		st.run(p)
		p.mu.Lock()
	}
	p.busy--
	p.spare = append(p.spare, st)
	p.kick(p.now())
	p.mu.Unlock()
	if j != nil {
		<-j.done
		p.jobs.Put(j)
	}
	return nil
}

// enqueue appends a job for items to the queue. Called with p.mu held.
func (p *Pipeline) enqueue(items []Item, results []Result, now int64, wait bool) *job {
	j := p.jobs.Get().(*job)
	j.items, j.results, j.next, j.enq = items, results, 0, now
	j.pending.Store(int32(len(items)))
	if p.qhead > 0 && p.qhead == len(p.q) {
		clear(p.q)
		p.q, p.qhead = p.q[:0], 0
	} else if p.qhead > 1024 && p.qhead > len(p.q)/2 {
		n := copy(p.q, p.q[p.qhead:])
		clear(p.q[n:])
		p.q, p.qhead = p.q[:n], 0
	}
	if p.queued == 0 {
		p.deadline = now
		if wait {
			p.deadline = now + p.maxWait
		}
	} else if !wait {
		p.deadline = now
	}
	p.q = append(p.q, j)
	p.queued += len(items)
	return j
}

// ready reports whether the queued items should go now: a full batch, or
// the wait is over, or the arrivals have stopped. Called with p.mu held.
func (p *Pipeline) ready(now int64) bool {
	return p.queued >= p.opts.MaxBatch || now >= p.deadline || now-p.lastArr > 2*p.gap
}

// kick wakes the idle workers the queue needs. Called with p.mu held.
func (p *Pipeline) kick(now int64) {
	if p.queued == 0 || len(p.idle) == 0 {
		return
	}
	free := p.opts.Workers - p.busy
	if free <= 0 {
		return
	}
	want := 1
	if p.ready(now) {
		want = min(free, (p.queued+p.opts.MaxBatch-1)/p.opts.MaxBatch)
		if p.queued > 1 {
			// Spread a queue smaller than a batch per free core over the
			// free cores rather than leaving cores idle.
			want = max(want, min(free, p.queued))
		}
	} else if p.timing {
		return
	}
	for ; want > 0 && len(p.idle) > 0; want-- {
		w := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// take removes the next batch from the queue into spans: up to MaxBatch
// items, fewer when idle cores can share the queue. Called with p.mu held.
func (p *Pipeline) take(spans []span) []span {
	free := max(p.opts.Workers-p.busy, 1)
	return p.takeN(spans, min(p.opts.MaxBatch, (p.queued+free-1)/free))
}

// takeHead removes up to max items of the job at the head of the queue.
// Called with p.mu held.
func (p *Pipeline) takeHead(spans []span, max int) []span {
	j := p.q[p.qhead]
	return p.takeN(spans, min(max, len(j.items)-j.next))
}

// takeN removes the next n queued items into spans. Called with p.mu held.
func (p *Pipeline) takeN(spans []span, n int) []span {
	p.queued -= n
	for n > 0 {
		j := p.q[p.qhead]
		k := min(n, len(j.items)-j.next)
		spans = append(spans, span{j: j, lo: j.next, hi: j.next + k})
		j.next += k
		n -= k
		if j.next == len(j.items) {
			p.q[p.qhead] = nil
			p.qhead++
		}
	}
	return spans
}

func (w *worker) loop() {
	p := w.p
	defer p.wg.Done()
	p.mu.Lock()
	for {
		if p.queued == 0 || p.busy >= p.opts.Workers {
			if p.closed && p.queued == 0 {
				p.mu.Unlock()
				return
			}
			w.park(0)
			continue
		}
		now := p.now()
		if !p.ready(now) {
			if p.timing {
				w.park(0)
				continue
			}
			// Sleep until the batch must go, or the arrivals stop.
			until := min(p.deadline, p.lastArr+2*p.gap+1)
			p.timing = true
			w.park(max(until-now, 1))
			p.timing = false
			continue
		}
		w.st.spans = p.take(w.st.spans[:0])
		p.busy++
		p.mu.Unlock()
		w.st.run(p)
		p.mu.Lock()
		p.busy--
		p.kick(p.now())
	}
}

// park waits for a wake-up, or for d nanoseconds when d > 0. Called with
// p.mu held; returns with it held.
func (w *worker) park(d int64) {
	p := w.p
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	if d > 0 {
		w.timer.Reset(time.Duration(d))
		select {
		case <-w.wake:
		case <-w.timer.C:
		}
		w.timer.Stop()
	} else {
		<-w.wake
	}
	p.mu.Lock()
	for i, x := range p.idle {
		if x == w {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
}

// Close stops the pipeline once the queued items are verified. Verify
// calls after Close return ErrClosed.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, w := range p.idle {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	p.idle = p.idle[:0]
	p.mu.Unlock()
	p.wg.Wait()
}

// QueueDepth returns the number of items waiting for a worker.
func (p *Pipeline) QueueDepth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}
