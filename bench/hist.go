package bench

import (
	"math/bits"
	"time"
)

// latencyHist counts durations in buckets about 1.6% wide (64 per power of
// two), so that a load generator records every request without allocating
// and percentiles come out within that precision.
type latencyHist struct {
	counts [64 * 64]uint32
	n      uint64
	max    time.Duration
}

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v >> e is in [64, 128)
	return (e+1)*64 + int(v>>e) - 64
}

// bucketValue returns the upper bound of bucket i.
func bucketValue(i int) time.Duration {
	if i < 64 {
		return time.Duration(i)
	}
	e := i/64 - 1
	m := uint64(i%64 + 64)
	return time.Duration((m+1)<<e - 1)
}

func (h *latencyHist) add(d time.Duration) {
	h.counts[histBucket(d)]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the duration below which a fraction q of the counts
// lie (the upper bound of its bucket, at most the maximum seen).
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen > rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}

// Latency summarises a distribution of latencies: percentiles (within
// 1.6%), the maximum, and a coarser histogram for charts.
type Latency struct {
	Count                    int64
	P50, P90, P99, P999, Max time.Duration
	// Buckets are the non-empty buckets of a histogram with eight buckets
	// per power of two (each about 9% wide), in increasing order.
	Buckets []LatencyBucket
}

// LatencyBucket counts the latencies up to Le (and above the previous
// bucket's bound).
type LatencyBucket struct {
	Le    time.Duration
	Count int64
}

// summary returns the percentiles and coarse buckets of h.
func (h *latencyHist) summary() Latency {
	l := Latency{Count: int64(h.n), Max: h.max}
	if h.n == 0 {
		return l
	}
	l.P50, l.P90, l.P99, l.P999 = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99), h.quantile(0.999)
	// Fine buckets below 64ns are exact; above, 64 per power of two,
	// merged by eight.
	var cur LatencyBucket
	flush := func() {
		if cur.Count > 0 {
			l.Buckets = append(l.Buckets, cur)
		}
		cur = LatencyBucket{}
	}
	for i, c := range h.counts {
		group := i / 8
		if i%8 == 0 {
			flush()
		}
		cur.Count += int64(c)
		cur.Le = bucketValue(group*8 + 7)
	}
	flush()
	if n := len(l.Buckets); n > 0 && l.Buckets[n-1].Le > h.max {
		l.Buckets[n-1].Le = h.max
	}
	return l
}
