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
	// MaxWait bounds how long queued Ed25519 items wait for the running
	// Ed25519 batches: once the oldest has waited that long, another core
	// starts a batch. A negative value never keeps them waiting (every
	// worker may verify Ed25519 at once). Default 200µs.
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

// Pipeline verifies signatures for many concurrent callers. Requests from
// every caller feed one pipeline, and Workers goroutines — one per core by
// default — verify them in batches. How batches form adapts to the load:
//
//   - Light load: when fewer than half the workers are busy, nothing is
//     queued and requests arrive further apart than their items take to
//     verify, the caller verifies its items on the spot (spreading a
//     request of 32 items or more over idle workers): a lone request waits
//     for nothing and pays no hand-off.
//   - Under load, requests queue, and a worker takes a batch; before it
//     takes less than a full batch it yields once, so that the callers
//     ready to run queue their items first. Verifying many requests' items
//     back to back keeps the crypto's tables in cache and the cores on one
//     kind of work: measured through the HTTP endpoint, it costs 8-30% less
//     CPU per signature than verifying each request on its own goroutine.
//   - ECDSA (and App Attest) signatures cost the same alone or together, so
//     their batches stay small (MaxBatch/4) for latency and are shared
//     among the free workers.
//   - Ed25519 signatures cost half or less in a batch: at most half the
//     workers verify Ed25519 at once, and while they are busy Ed25519
//     requests queue and the next batch takes them all (up to MaxBatch):
//     batches grow with the arrivals, clocked by the batches before them.
//     An item that has waited MaxWait for the running batches lets another
//     core start one.
//
// Ed25519 batches are checked with one randomised multi-scalar equation
// (curve25519-voi); when it fails, each signature is checked on its own to
// find the bad ones (and while batches keep failing, signatures are checked
// one by one, so that a caller sending bad signatures cannot make every
// batch cost twice).
//
// A Pipeline is safe for concurrent use. Close it to stop its workers.
type Pipeline struct {
	opts    Options
	edLimit int // Ed25519 verifiers allowed at once, below MaxWait
	ecBatch int // largest batch of ECDSA items
	// inlineLimit: callers verify on the spot while fewer verifiers
	// than this are busy (and nothing is queued, and the load is light).
	inlineLimit int
	maxWait     int64 // ns; < 0: Ed25519 may use every worker
	start       time.Time
	// queueAlways sends every item through the queue (tests and
	// benchmarks measure the hand-off with it).
	queueAlways bool

	mu     sync.Mutex
	other  fifo // requests without Ed25519 items
	ed     fifo // requests with Ed25519 items
	busy   int  // goroutines verifying (workers and callers)
	edBusy int  // of which verifying Ed25519 requests
	idle   []*worker
	spare  []*state
	closed bool
	// The recent load: moving averages of the time between arrivals and
	// of the time an item takes to verify (ns).
	lastArrival, gapAvg int64
	perItem             atomic.Int64
	// edTimer re-examines queued Ed25519 items once the oldest has waited
	// MaxWait, when no arrival or completion comes to do it.
	edTimer      *time.Timer
	edTimerArmed bool

	jobs sync.Pool
	wg   sync.WaitGroup

	stats stats
}

// job is one Verify call's items on their way through a queue.
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

// fifo is a queue of jobs whose items are taken in order.
type fifo struct {
	q    []*job // q[head:] are waiting
	head int
	n    int // items not yet taken
}

func (f *fifo) push(j *job) {
	if f.head > 0 && f.head == len(f.q) {
		clear(f.q)
		f.q, f.head = f.q[:0], 0
	} else if f.head > 1024 && f.head > len(f.q)/2 {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	f.q = append(f.q, j)
	f.n += len(j.items)
}

// oldest returns when the first waiting job was queued.
func (f *fifo) oldest() int64 { return f.q[f.head].enq }

// take removes the next n items (n <= f.n) into spans.
func (f *fifo) take(spans []span, n int) []span {
	f.n -= n
	for n > 0 {
		j := f.q[f.head]
		k := min(n, len(j.items)-j.next)
		spans = append(spans, span{j: j, lo: j.next, hi: j.next + k})
		j.next += k
		n -= k
		if j.next == len(j.items) {
			f.q[f.head] = nil
			f.head++
		}
	}
	return spans
}

type worker struct {
	p    *Pipeline
	st   *state
	wake chan struct{}
}

// New starts a pipeline with opts' workers.
func New(opts Options) *Pipeline {
	opts = opts.withDefaults()
	p := &Pipeline{opts: opts, edLimit: max(1, opts.Workers/2), ecBatch: max(1, opts.MaxBatch/4),
		inlineLimit: max(1, opts.Workers/2), maxWait: int64(opts.MaxWait), start: time.Now(), gapAvg: int64(time.Second)}
	if opts.MaxWait < 0 {
		p.edLimit = opts.Workers
	}
	p.jobs.New = func() any { return &job{done: make(chan struct{}, 1)} }
	p.edTimer = time.AfterFunc(time.Hour, p.edTimeout)
	p.edTimer.Stop()
	for range opts.Workers {
		w := &worker{p: p, st: newState(opts.MaxBatch), wake: make(chan struct{}, 1)}
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
	ed := false
	for i := range items {
		if items[i].Algorithm == Ed25519 {
			ed = true
			break
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	// On the spot while most workers are free, nothing waits and the
	// recent load is light; under load, through the queue, so that
	// requests are verified back to back in batches.
	now := p.now()
	loaded := p.arrive(now, len(items))
	if !loaded && p.busy < p.inlineLimit && p.other.n == 0 && p.ed.n == 0 && !p.queueAlways {
		if !ed {
			p.stats.onTheSpot.Add(1)
			return p.verifyHere(items, results)
		}
		if p.edBusy < p.edLimit {
			p.stats.onTheSpot.Add(1)
			p.busy++
			p.edBusy++
			st := p.takeState()
			p.mu.Unlock()
			st.verify(p, items, results)
			p.mu.Lock()
			p.busy--
			p.edBusy--
			p.spare = append(p.spare, st)
			p.kick(p.now())
			p.mu.Unlock()
			return nil
		}
	}
	if p.other.n+p.ed.n+len(items) > p.opts.MaxQueue {
		p.mu.Unlock()
		p.stats.overloaded.Add(1)
		return ErrOverloaded
	}
	p.stats.queued.Add(1)
	q := &p.other
	if ed {
		q = &p.ed
	}
	j := p.newJob(items, results, now)
	q.push(j)
	p.kick(now)
	p.mu.Unlock()
	<-j.done
	p.jobs.Put(j)
	return nil
}

// arrive records an arrival of n items and reports whether the recent
// load keeps the workers at least half busy: the time between arrivals
// against the time their items take to verify (moving averages). The
// average of the gaps moves slowly (1/64 per arrival): when callers and
// workers share few cores, a worker's batch holds a core and the callers'
// requests then arrive in bursts, and a faster average took the first of
// every burst for light load (a quarter of the one-item requests through
// the HTTP endpoint went on the spot under full load, and cost 3% more
// CPU per signature). A pause of a few milliseconds still shows at once.
// Called with p.mu held.
func (p *Pipeline) arrive(now int64, n int) bool {
	gap := now - p.lastArrival
	p.lastArrival = now
	p.gapAvg += (min(gap, int64(time.Second)) - p.gapAvg) / 64
	return 2*p.perItem.Load()*int64(n) >= p.gapAvg*int64(p.opts.Workers)
}

// served records that n items took d to verify, for arrive's estimate.
func (p *Pipeline) served(d int64, n int) {
	if n > 0 {
		v := p.perItem.Load()
		p.perItem.Store(v + (d/int64(n)-v)/16)
	}
}

func (p *Pipeline) newJob(items []Item, results []Result, now int64) *job {
	j := p.jobs.Get().(*job)
	j.items, j.results, j.next, j.enq = items, results, 0, now
	j.pending.Store(int32(len(items)))
	return j
}

func (p *Pipeline) takeState() *state {
	st := p.spare[len(p.spare)-1]
	p.spare = p.spare[:len(p.spare)-1]
	return st
}

// splitMin is the smallest request verifyHere spreads over idle workers:
// waking a worker and waiting for it costs a few context switches, worth
// it only when they save a millisecond or more.
const splitMin = 32

// verifyHere verifies a request without Ed25519 items on the caller's
// goroutine, handing a share to idle workers when several cores are free
// and the request is large. Called with p.mu held; returns with it
// released.
func (p *Pipeline) verifyHere(items []Item, results []Result) error {
	st := p.takeState()
	p.busy++
	share := len(items)
	var j *job
	if free := p.opts.Workers - p.busy; free > 0 && len(items) >= splitMin && len(p.idle) > 0 {
		helpers := min(free, len(p.idle), len(items)-1)
		share = (len(items) + helpers) / (helpers + 1)
		j = p.newJob(items[share:], results[share:], p.now())
		p.other.push(j)
		p.kick(j.enq)
	}
	p.mu.Unlock()

	st.verify(p, items[:share], results[:share])

	p.mu.Lock()
	// Verify what the idle workers have not taken yet of the rest.
	for j != nil && p.other.n > 0 && p.other.q[p.other.head] == j {
		st.spans = p.other.take(st.spans[:0], min(p.opts.MaxBatch, len(j.items)-j.next))
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

// work removes the next batch a worker may verify now into spans, and
// reports whether it holds Ed25519 items; it returns no spans when there is
// none. Called with p.mu held.
func (p *Pipeline) work(spans []span, now int64) ([]span, bool) {
	free := p.opts.Workers - p.busy
	if free <= 0 {
		return spans, false
	}
	if p.other.n > 0 {
		// ECDSA signatures cost the same in a batch; batches only keep
		// the crypto's tables in cache from one signature to the next,
		// so they stay small (latency) and are shared among free cores.
		return p.other.take(spans, min(p.ecBatch, (p.other.n+free-1)/free)), false
	}
	if p.ed.n > 0 && (p.edBusy < p.edLimit || now-p.ed.oldest() > p.maxWait) {
		return p.ed.take(spans, min(p.opts.MaxBatch, p.ed.n)), true
	}
	return spans, false
}

// edTimeout runs when queued Ed25519 items may have waited MaxWait.
func (p *Pipeline) edTimeout() {
	p.mu.Lock()
	p.edTimerArmed = false
	p.kick(p.now())
	p.mu.Unlock()
}

// kick wakes an idle worker when there is work it may take; the worker
// kicks the next one. Called with p.mu held.
func (p *Pipeline) kick(now int64) {
	if p.closed && p.other.n == 0 && p.ed.n == 0 {
		p.wakeAll()
		return
	}
	if len(p.idle) == 0 || p.busy >= p.opts.Workers {
		return
	}
	if p.other.n == 0 && p.ed.n > 0 && p.edBusy >= p.edLimit && now-p.ed.oldest() <= p.maxWait {
		// Ed25519 items wait for the running batches: look again when
		// the oldest has waited MaxWait.
		if !p.edTimerArmed {
			p.edTimerArmed = true
			p.edTimer.Reset(time.Duration(p.ed.oldest() + p.maxWait - now + 1))
		}
		return
	}
	if p.other.n == 0 && p.ed.n == 0 {
		return
	}
	w := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) loop() {
	p := w.p
	defer p.wg.Done()
	p.mu.Lock()
	yielded := false
	for {
		if !yielded && p.partialBatch() {
			// Let the callers that are ready to run queue their items
			// first: the batch grows at the cost of one yield.
			yielded = true
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
			continue
		}
		yielded = false
		now := p.now()
		var ed bool
		w.st.spans, ed = p.work(w.st.spans[:0], now)
		if len(w.st.spans) == 0 {
			if p.closed && p.other.n == 0 && p.ed.n == 0 {
				p.wakeAll()
				p.mu.Unlock()
				return
			}
			w.park()
			continue
		}
		p.busy++
		if ed {
			p.edBusy++
		}
		p.kick(now)
		p.mu.Unlock()
		w.st.run(p)
		p.mu.Lock()
		p.busy--
		if ed {
			p.edBusy--
		}
	}
}

// partialBatch reports whether the work a worker would take now is less
// than a full batch. Called with p.mu held.
func (p *Pipeline) partialBatch() bool {
	if p.busy >= p.opts.Workers {
		return false
	}
	if p.other.n > 0 {
		return p.other.n < p.ecBatch
	}
	return p.ed.n > 0 && p.ed.n < p.opts.MaxBatch
}

// park waits for a wake-up. Called with p.mu held; returns with it held.
func (w *worker) park() {
	p := w.p
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	<-w.wake
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
	p.wakeAll()
	p.mu.Unlock()
	p.wg.Wait()
	p.edTimer.Stop()
}

// wakeAll wakes every idle worker. Called with p.mu held.
func (p *Pipeline) wakeAll() {
	for _, w := range p.idle {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	p.idle = p.idle[:0]
}

// QueueDepth returns the number of items waiting for a worker.
func (p *Pipeline) QueueDepth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.other.n + p.ed.n
}
