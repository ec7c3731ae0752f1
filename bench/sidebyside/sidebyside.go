// Package sidebyside measures alternatives against each other in one go test
// benchmark on a shared, noisy machine. Each iteration runs every
// alternative once, in alternating order, and the benchmark reports the
// median of the per-iteration ratios: load that changes from second to
// second hits both sides of each ratio alike, which absolute timings of
// separate benchmarks cannot promise.
//
//	var ratios []float64
//	for i := 0; b.Loop(); i++ {
//		t := sidebyside.Times(i, baseline, candidate)
//		ratios = append(ratios, float64(t[1])/float64(t[0]))
//	}
//	b.ReportMetric(sidebyside.Median(ratios), "candidate/baseline")
package sidebyside

import (
	"slices"
	"time"
)

// Times runs fns once each, first to last on even i and last to first on odd
// i, and returns the time each took, in the order of fns.
func Times(i int, fns ...func()) []time.Duration {
	t := make([]time.Duration, len(fns))
	for k := range fns {
		j := k
		if i%2 == 1 {
			j = len(fns) - 1 - k
		}
		start := time.Now()
		fns[j]()
		t[j] = time.Since(start)
	}
	return t
}

// Median returns the median of v (the upper one of an even count), or 0 for
// no values. v is not modified.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
