package server

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics is a registry of metrics exposed at /metrics in the Prometheus
// text format (version 0.0.4), written by hand. Series are created once
// (registration takes a lock) and updated with atomics, so the hot path
// neither locks nor allocates.
//
//	reqs := m.Counter("keybind_things_total", "Things done.", Label{"kind", "a"})
//	reqs.Inc()
//	lat := m.Histogram("keybind_store_seconds", "Store latency.", DurationBuckets, Label{"op", "get"})
//	lat.ObserveDuration(d)
//
// Asking again for the same name and labels returns the same series.
// Collect adds a function that writes metrics computed at scrape time.
type Metrics struct {
	mu         sync.Mutex
	families   map[string]*family
	order      []*family
	collectors []func(*MetricWriter)
}

// Label is one label of a series.
type Label struct{ Name, Value string }

type family struct {
	name, help, typ string
	bounds          []float64
	series          map[string]any // rendered labels → *Counter, *Gauge or *Histogram
	keys            []string
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{families: map[string]*family{}} }

func (m *Metrics) series(name, help, typ string, bounds []float64, labels []Label, make func() any) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.families[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ, bounds: bounds, series: map[string]any{}}
		m.families[name] = f
		m.order = append(m.order, f)
	} else if f.typ != typ {
		panic("metrics: " + name + " registered as " + f.typ + " and " + typ)
	}
	key := renderLabels(labels)
	if s, ok := f.series[key]; ok {
		return s
	}
	s := make()
	f.series[key] = s
	f.keys = append(f.keys, key)
	return s
}

// Counter returns the counter series name{labels}.
func (m *Metrics) Counter(name, help string, labels ...Label) *Counter {
	return m.series(name, help, "counter", nil, labels, func() any { return new(Counter) }).(*Counter)
}

// Gauge returns the gauge series name{labels}.
func (m *Metrics) Gauge(name, help string, labels ...Label) *Gauge {
	return m.series(name, help, "gauge", nil, labels, func() any { return new(Gauge) }).(*Gauge)
}

// Histogram returns the histogram series name{labels} with the given
// bucket upper bounds (ascending; +Inf is implied).
func (m *Metrics) Histogram(name, help string, bounds []float64, labels ...Label) *Histogram {
	return m.series(name, help, "histogram", bounds, labels, func() any {
		return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	}).(*Histogram)
}

// Collect registers f to write metrics computed at scrape time (such as
// the verification pipeline's counters). f must write whole families.
func (m *Metrics) Collect(f func(*MetricWriter)) {
	m.mu.Lock()
	m.collectors = append(m.collectors, f)
	m.mu.Unlock()
}

// DurationBuckets are the default latency buckets, in seconds: 50µs to 10s.
var DurationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

func (c *Counter) Inc()         { c.v.Add(1) }
func (c *Counter) Add(n uint64) { c.v.Add(n) }
func (c *Counter) Value() uint64 {
	return c.v.Load()
}

// Gauge is a value that goes up and down.
type Gauge struct{ bits atomic.Uint64 }

func (g *Gauge) Set(v float64)  { g.bits.Store(math.Float64bits(v)) }
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }
func (g *Gauge) Add(d float64) {
	for {
		old := g.bits.Load()
		if g.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Histogram counts observations in buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; last is +Inf
	sum    Gauge
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.sum.Add(v)
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// WriteTo writes every metric in the text format.
func (m *Metrics) write(w *MetricWriter) {
	m.mu.Lock()
	fams := append([]*family(nil), m.order...)
	collectors := append([]func(*MetricWriter){}, m.collectors...)
	type snap struct {
		f    *family
		keys []string
		vals []any
	}
	snaps := make([]snap, len(fams))
	for i, f := range fams {
		snaps[i] = snap{f: f, keys: append([]string(nil), f.keys...)}
		for _, k := range snaps[i].keys {
			snaps[i].vals = append(snaps[i].vals, f.series[k])
		}
	}
	m.mu.Unlock()
	for _, s := range snaps {
		w.header(s.f.name, s.f.help, s.f.typ)
		for i, key := range s.keys {
			switch v := s.vals[i].(type) {
			case *Counter:
				w.sample(s.f.name, key, "", float64(v.Value()))
			case *Gauge:
				w.sample(s.f.name, key, "", v.Value())
			case *Histogram:
				counts := make([]uint64, len(v.counts))
				for j := range v.counts {
					counts[j] = v.counts[j].Load()
				}
				w.histogram(s.f.name, key, v.bounds, counts, v.sum.Value())
			}
		}
	}
	for _, c := range collectors {
		c(w)
	}
}

// MetricWriter writes metric families in the Prometheus text format.
type MetricWriter struct{ b []byte }

func (w *MetricWriter) header(name, help, typ string) {
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, typ...)
	w.b = append(w.b, '\n')
}

func (w *MetricWriter) sample(name, labels, extra string, v float64) {
	w.b = append(w.b, name...)
	switch {
	case labels != "" && extra != "":
		w.b = append(w.b, labels[:len(labels)-1]...)
		w.b = append(w.b, ',')
		w.b = append(w.b, extra...)
		w.b = append(w.b, '}')
	case labels != "":
		w.b = append(w.b, labels...)
	case extra != "":
		w.b = append(w.b, '{')
		w.b = append(w.b, extra...)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.b = appendFloat(w.b, v)
	w.b = append(w.b, '\n')
}

func (w *MetricWriter) histogram(name, labels string, bounds []float64, counts []uint64, sum float64) {
	var cum uint64
	for i, c := range counts {
		cum += c
		le := "+Inf"
		if i < len(bounds) {
			le = string(appendFloat(nil, bounds[i]))
		}
		w.sample(name+"_bucket", labels, `le="`+le+`"`, float64(cum))
	}
	w.sample(name+"_sum", labels, "", sum)
	w.sample(name+"_count", labels, "", float64(cum))
}

// Family writes one family's header; follow it with its samples.
func (w *MetricWriter) Family(name, help, typ string) { w.header(name, help, typ) }

// Sample writes one sample of the current family.
func (w *MetricWriter) Sample(name string, v float64, labels ...Label) {
	w.sample(name, renderLabels(labels), "", v)
}

// HistogramSample writes one histogram series of the current family from
// per-bucket (not cumulative) counts, the last one for +Inf.
func (w *MetricWriter) HistogramSample(name string, bounds []float64, counts []uint64, sum float64, labels ...Label) {
	w.histogram(name, renderLabels(labels), bounds, counts, sum)
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func renderLabels(labels []Label) string {
	if len(labels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		for _, c := range []byte(l.Value) {
			switch c {
			case '\\':
				b.WriteString(`\\`)
			case '"':
				b.WriteString(`\"`)
			case '\n':
				b.WriteString(`\n`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
