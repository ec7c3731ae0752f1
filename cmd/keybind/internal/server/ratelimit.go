package server

import (
	"math"
	"sync"
	"time"
)

// RateLimit is a token bucket: Rate requests per second on average, with
// bursts of up to Burst. A zero Rate sets no limit; a zero Burst means
// twice the rate (at least 1).
type RateLimit struct {
	Rate  float64
	Burst int
}

// keyLimiter keeps one token bucket per API key (by key id). Keys are
// authenticated before they reach it, so it holds at most one bucket per
// configured or stored key.
type keyLimiter struct {
	rate, burst float64
	now         func() time.Time
	buckets     sync.Map // key id → *bucket
}

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

// allow takes a token from the key's bucket. When there is none it
// returns false and the whole seconds to wait for one (at least 1).
func (l *keyLimiter) allow(key string) (int, bool) {
	if l == nil {
		return 0, true
	}
	v, ok := l.buckets.Load(key)
	if !ok {
		v, _ = l.buckets.LoadOrStore(key, &bucket{tokens: l.burst, last: l.now()})
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
