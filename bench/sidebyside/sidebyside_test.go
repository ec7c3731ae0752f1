package sidebyside

import (
	"testing"
	"time"
)

func TestTimesAlternates(t *testing.T) {
	var order []int
	fns := []func(){func() { order = append(order, 0) }, func() { order = append(order, 1); time.Sleep(time.Millisecond) }, func() { order = append(order, 2) }}
	d := Times(0, fns...)
	Times(1, fns...)
	if want := []int{0, 1, 2, 2, 1, 0}; len(order) != 6 || order[0] != want[0] || order[2] != want[2] || order[3] != want[3] || order[5] != want[5] {
		t.Errorf("order %v, want %v", order, want)
	}
	if d[1] < time.Millisecond || d[1] < d[0] {
		t.Errorf("times %v are not in the order of fns", d)
	}
}

func TestMedian(t *testing.T) {
	v := []float64{3, 1, 2}
	if Median(v) != 2 || v[0] != 3 {
		t.Error("median of 3,1,2 or input modified")
	}
	if Median(nil) != 0 || Median([]float64{1, 5}) != 5 {
		t.Error("empty or even count")
	}
}
