package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestLatencyHist(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 127, 128, 1000, 123456, time.Second, time.Hour} {
		i := histBucket(d)
		if hi := bucketValue(i); hi < d || (i > 0 && bucketValue(i-1) >= d) {
			t.Errorf("%v in bucket %d of upper bound %v (previous %v)", d, i, hi, bucketValue(i-1))
		}
	}
	var h latencyHist
	var all []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(300*time.Microsecond))
		h.add(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*1.02+1 {
			t.Errorf("q%v: %v, exact %v", q, got, exact)
		}
	}
	if h.quantile(1) != all[len(all)-1] {
		t.Errorf("max %v, want %v", h.quantile(1), all[len(all)-1])
	}
	if n := testing.AllocsPerRun(100, func() { h.add(time.Millisecond) }); n != 0 {
		t.Errorf("add allocates %v times", n)
	}
}
