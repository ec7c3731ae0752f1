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
