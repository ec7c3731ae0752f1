package server

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is a token bucket: Rate requests per second on average, with
// bursts of up to Burst. A zero Rate sets no limit; a zero Burst means
// twice the rate (at least 1).
type RateLimit struct {
	Rate  float64
	Burst int
}

// keyLimiter keeps one token bucket per key: an API key's id (keys are
// authenticated before they reach it, so it holds at most one bucket per
// configured or stored key), or, in a bounded limiter (maxKeys > 0), an
// enrollment or credential id a phone names before anything is checked.
// A bounded limiter drops the buckets that have filled up again (a full
// bucket is as good as none) when it holds more than maxKeys, and past
// that, while every bucket is in use, lets new keys through untracked
// rather than refusing phones it has no room to count.
type keyLimiter struct {
	rate, burst float64
	now         func() time.Time
	buckets     sync.Map // key → *bucket
	maxKeys     int64
	size        atomic.Int64
	sweepMu     sync.Mutex
	lastSweep   time.Time // under sweepMu
}

// sweepEvery spaces the sweeps of a full bounded limiter, so that a flood
// of new ids costs one pass over the buckets a second, not one a request.
const sweepEvery = time.Second

type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newKeyLimiter(l RateLimit) *keyLimiter {
	if l.Rate <= 0 {
		return nil
	}
	burst := float64(l.Burst)
	if burst <= 0 {
		burst = math.Max(1, 2*l.Rate)
	}
	return &keyLimiter{rate: l.Rate, burst: burst, now: time.Now}
}

// newBoundedLimiter is newKeyLimiter for keys that nobody vouched for yet,
// holding at most about maxKeys buckets.
func newBoundedLimiter(l RateLimit, maxKeys int) *keyLimiter {
	k := newKeyLimiter(l)
	if k != nil {
		k.maxKeys = int64(maxKeys)
	}
	return k
}

// sweep drops the buckets that have filled up again.
func (l *keyLimiter) sweep(now time.Time) {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	if l.size.Load() < l.maxKeys || now.Sub(l.lastSweep) < sweepEvery {
		return // another caller swept, or one did a moment ago
	}
	l.lastSweep = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	l.buckets.Range(func(k, v any) bool {
		b := v.(*bucket)
		b.mu.Lock()
		idle := now.Sub(b.last) >= full
		b.mu.Unlock()
		if idle {
			l.buckets.Delete(k)
			l.size.Add(-1)
		}
		return true
	})
}

// allow takes a token from the key's bucket. When there is none it
// returns false and the whole seconds to wait for one (at least 1).
func (l *keyLimiter) allow(key string) (int, bool) {
	if l == nil {
		return 0, true
	}
	v, ok := l.buckets.Load(key)
	if !ok {
		if l.maxKeys > 0 && l.size.Load() >= l.maxKeys {
			l.sweep(l.now())
			if l.size.Load() >= l.maxKeys {
				return 0, true
			}
		}
		var loaded bool
		v, loaded = l.buckets.LoadOrStore(key, &bucket{tokens: l.burst, last: l.now()})
		if !loaded {
			l.size.Add(1)
		}
	}
	b := v.(*bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := l.now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := (1 - b.tokens) / l.rate
	return max(1, int(math.Ceil(wait))), false
}
