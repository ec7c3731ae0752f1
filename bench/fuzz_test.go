package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseMix: any text is parsed or refused without panicking; a parsed
// mix names known kinds once each with positive weights, and its text form
// parses back to the same mix.
func FuzzParseMix(f *testing.F) {
	for _, s := range []string{"verify=90,signin=5,enroll=5", "verify", "enroll=0,verify", " signin = 3 ", "verify=x", "verify=1,verify=2", ",,", "login=3", "verify=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mix, err := ParseMix(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, m := range mix {
			if m.Weight <= 0 || seen[m.Kind] || !slices.Contains([]string{MixVerify, MixSignIn, MixEnroll}, m.Kind) {
				t.Fatalf("ParseMix(%q) = %v", s, mix)
			}
			seen[m.Kind] = true
		}
		again, err := ParseMix(mixString(mix))
		if err != nil || !slices.Equal(again, mix) {
			t.Fatalf("%q → %v → %q → %v, %v", s, mix, mixString(mix), again, err)
		}
	})
}

// FuzzParseCounters: any /metrics body is read or refused without
// panicking; what is read is what the body says.
func FuzzParseCounters(f *testing.F) {
	f.Add("# HELP x\nprocess_cpu_seconds_total 12.5\ngo_heap_allocs_objects_total 1e6\n")
	f.Add("process_cpu_seconds_total NaN\ngo_heap_allocs_objects_total 1\n")
	f.Add("process_cpu_seconds_total 1\n")
	f.Add("process_cpu_seconds_total{a=\"b\"} 1\ngo_heap_allocs_objects_total -1\n")
	f.Fuzz(func(t *testing.T, body string) {
		c, err := parseCounters([]byte(body))
		if err != nil {
			return
		}
		if c.CPU < 0 || !strings.Contains(body, "process_cpu_seconds_total") || !strings.Contains(body, "go_heap_allocs_objects_total") {
			t.Fatalf("%q → %+v", body, c)
		}
	})
}

func TestParseCounters(t *testing.T) {
	c, err := parseCounters([]byte("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 2.25\ngo_heap_allocs_objects_total 123456\ngo_goroutines 7\n"))
	if err != nil || c.CPU != 2250*time.Millisecond || c.Allocs != 123456 {
		t.Errorf("%+v %v", c, err)
	}
	for _, bad := range []string{"", "process_cpu_seconds_total 1\n", "process_cpu_seconds_total x\ngo_heap_allocs_objects_total 1\n",
		"process_cpu_seconds_total -1\ngo_heap_allocs_objects_total 1\n", "process_cpu_seconds_total +Inf\ngo_heap_allocs_objects_total 1\n"} {
		if _, err := parseCounters([]byte(bad)); err == nil {
			t.Errorf("parseCounters(%q) accepted", bad)
		}
	}
}
