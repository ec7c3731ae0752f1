package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page: the tables
// of the text report, and for every result an inline SVG chart of its
// throughput over time and one of its latency histogram. It loads
// nothing (no script, style sheet, font or image from anywhere), and its
// markup is well-formed XML as well as HTML.
func (rep *Report) WriteHTML(w io.Writer) error {
	b := &strings.Builder{}
	esc := html.EscapeString
	title := "keybind bench " + rep.Started.Format("2006-01-02 15:04")
	fmt.Fprintf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>%s</title>\n<style>\n%s</style>\n</head>\n<body>\n", esc(title), htmlStyle)
	fmt.Fprintf(b, "<h1>%s</h1>\n", esc(title))
	m := rep.Machine
	fmt.Fprintf(b, "<p class=\"machine\">%s/%s, %d CPUs (%s), %s. %s.</p>\n", esc(m.OS), esc(m.Arch), m.CPUs, esc(m.CPUModel), esc(m.GoVersion), esc(m.Split.String()))
	if rep.Bar != nil {
		cls, verdict := "pass", "The performance bar is met."
		if !rep.Bar.Pass() {
			cls, verdict = "fail", "The performance bar is MISSED."
		}
		fmt.Fprintf(b, "<p class=\"%s\">%s</p>\n", cls, verdict)
	}
	all := append(append([]Result{}, rep.Ceilings...), rep.Results...)
	if len(all) > 0 {
		b.WriteString("<h2>Results</h2>\n<table>\n<thead><tr><th>mode</th><th>workload</th><th>unit</th><th>ops/s</th><th>ops/CPU-s</th><th>CPU of</th><th>ratio</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>allocs/op</th><th>errors</th></tr></thead>\n<tbody>\n")
		for _, r := range all {
			ratio := "-"
			if r.CeilingRate > 0 && r.CPU > 0 {
				ratio = fmt.Sprintf("%.3f", r.Ratio())
			}
			fmt.Fprintf(b, "<tr><td>%s</td><td class=\"name\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
				esc(r.Mode), esc(r.Name), esc(r.Unit), rate(r.PerSecond()), rate(r.PerCPUSecond()), esc(r.CPUOf), ratio,
				esc(dur(r.Latency.P50)), esc(dur(r.Latency.P90)), esc(dur(r.Latency.P99)), esc(dur(r.Latency.P999)), esc(allocs(r.AllocsPerOp)), r.Errors)
		}
		b.WriteString("</tbody>\n</table>\n")
		b.WriteString("<p class=\"note\">ops/CPU-s: operations per second of CPU time of this process (crypto, pipeline, attest) or of the server (http, from its getrusage). " +
			"Ratio: signatures (or operations, for sign-ins, enrollments and attestations) per CPU-second over the crypto ceiling of one core: crypto/ecdsa P-256, or crypto/ed25519 for Ed25519 workloads. " +
			"Latencies are per operation; allocations are heap objects per operation (of the server, for http).</p>\n")
		for _, r := range all {
			if r.FirstError != "" {
				fmt.Fprintf(b, "<p class=\"fail\">%s %s: first error: %s</p>\n", esc(r.Mode), esc(r.Name), esc(r.FirstError))
			}
		}
	}
	if bar := rep.Bar; bar != nil {
		fmt.Fprintf(b, "<h2>Performance bar of the verify endpoint</h2>\n<p>Median of %d rounds; %s. Crypto ceiling on the server's CPUs, per CPU-second: P-256 %.0f, Ed25519 (crypto/ed25519) %.0f.</p>\n",
			bar.Rounds, esc(bar.Split.String()), bar.P256Ceiling, bar.Ed25519Ceiling)
		b.WriteString("<table>\n<thead><tr><th>workload</th><th>verifications/server-CPU-s</th><th>ratio</th><th>bar</th><th>verdict</th><th>pipeline ratio</th><th>req/s</th><th>server busy</th><th>waited for a CPU</th><th>ratio per round</th></tr></thead>\n<tbody>\n")
		for _, f := range bar.Figures {
			verdict, cls := "ok", "pass"
			if !f.Pass() {
				verdict, cls = "MISSED", "fail"
			}
			var rounds []string
			for _, r := range f.Rounds {
				rounds = append(rounds, fmt.Sprintf("%.3f", r))
			}
			fmt.Fprintf(b, "<tr><td class=\"name\">%s</td><td>%.0f</td><td>%.3f</td><td>≥ %.2f</td><td class=\"%s\">%s</td><td>%.3f</td><td>%.0f</td><td>%.0f%%</td><td>%.0f%%</td><td>%s</td></tr>\n",
				esc(f.Name), f.ItemsPerCPUSecond, f.Ratio, f.Want, cls, verdict, f.PipelineRatio, f.RequestsPerSecond, 100*f.ServerBusy, 100*f.ServerWaited, esc(strings.Join(rounds, " ")))
		}
		b.WriteString("</tbody>\n</table>\n")
		verdict, cls := "ok", "pass"
		if !bar.LatencyPass() {
			verdict, cls = "MISSED", "fail"
		}
		sl := bar.Load70.ServerLatency()
		fmt.Fprintf(b, "<p>Latency at %.0f%% of peak (P-256, one item; peak %.0f req/s, run at %.0f req/s): p50 %s, p99 %s, p99.9 %s; bar p99 ≤ %s: <span class=\"%s\">%s</span>. "+
			"Latencies count from each request's scheduled time, less the load generator's own lateness in sending it (p99 %s); from the scheduled time alone: p50 %s, p99 %s, p99.9 %s. "+
			"The server waited for a CPU held by other work %.0f%% of the time it had work.</p>\n",
			100*BarLoad, bar.PeakRPS, bar.Load70Rate, esc(dur(sl.P50)), esc(dur(sl.P99)), esc(dur(sl.P999)), esc(dur(BarP99)), cls, verdict,
			esc(dur(bar.Load70.LagP99)), esc(dur(bar.Load70.P50)), esc(dur(bar.Load70.P99)), esc(dur(bar.Load70.P999)), 100*waited(bar.Load70))
		b.WriteString("<div class=\"charts\">\n")
		b.WriteString(histogramSVG("latency at 70% of peak", sl))
		b.WriteString("</div>\n")
	}
	if len(all) > 0 {
		b.WriteString("<h2>Throughput over time</h2>\n<div class=\"charts\">\n")
		for _, r := range all {
			if len(r.Timeline) > 0 {
				b.WriteString(timelineSVG(r.Mode+": "+r.Name, r.Unit, r.Timeline))
			}
		}
		b.WriteString("</div>\n<h2>Latency histograms</h2>\n<div class=\"charts\">\n")
		for _, r := range all {
			if r.Latency.Count > 0 {
				b.WriteString(histogramSVG(r.Mode+": "+r.Name, r.Latency))
			}
		}
		b.WriteString("</div>\n")
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const htmlStyle = `body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; font-size: 0.9em; }
th { white-space: nowrap; }
th { background: #f3f3f3; }
td.name { text-align: left; }
.pass { color: #186a18; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.note, .machine { color: #555; max-width: 60em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
svg { background: #fafafa; border: 1px solid #ddd; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; fill: #333; }
`

const (
	chartW, chartH = 360, 200
	padL, padR     = 56, 12
	padT, padB     = 28, 34
)

// niceMax returns a round upper bound of an axis at least v, a multiple
// of a round step of about a quarter of it (niceStep).
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	step := niceStep(v)
	return step * math.Ceil(v/step-1e-9)
}

// niceStep returns the round step (1, 2, 2.5 or 5 times a power of ten)
// of about a quarter of v.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 0.25
	}
	q := v / 4
	p := math.Pow(10, math.Floor(math.Log10(q)))
	step := 10 * p
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*p >= q {
			step = m * p
			break
		}
	}
	return step
}

// timelineSVG draws ops per second over the run.
func timelineSVG(title, unit string, pts []TimelinePoint) string {
	b := &strings.Builder{}
	esc := html.EscapeString
	maxY, maxX := 0.0, 0.0
	for _, p := range pts {
		maxY, maxX = max(maxY, p.OpsPerSec), max(maxX, p.At.Seconds())
	}
	maxY, maxX = niceMax(maxY), niceMax(maxX)
	x := func(s float64) float64 { return padL + s/maxX*(chartW-padL-padR) }
	y := func(v float64) float64 { return chartH - padB - v/maxY*(chartH-padT-padB) }
	fmt.Fprintf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", chartW, chartH, chartW, chartH, esc("throughput over time: "+title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"16\">%s</text>\n", padL, esc(title))
	axes(b, maxX, maxY, func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) + "s" }, compact, x, y)
	var path strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, x(p.At.Seconds()), y(p.OpsPerSec))
	}
	fmt.Fprintf(b, "<path d=\"%s\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.8\"/>\n", strings.TrimSpace(path.String()))
	// A run of one or two windows draws too short a line to see: its
	// points are marked too, and a run without a window says so.
	if len(pts) < 3 {
		for _, p := range pts {
			fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f5fa8\"/>\n", x(p.At.Seconds()), y(p.OpsPerSec))
		}
	}
	if len(pts) == 0 {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">too short a run for a timeline</text>\n", padL+8, padT+20)
	}
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">%s per second over the run</text>\n", padL, chartH-4, esc(unit+"s"))
	b.WriteString("</svg>\n")
	return b.String()
}

// histogramSVG draws the latency histogram on a logarithmic time axis,
// with p50 and p99 marked.
func histogramSVG(title string, l Latency) string {
	b := &strings.Builder{}
	esc := html.EscapeString
	fmt.Fprintf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", chartW, chartH, chartW, chartH, esc("latency histogram: "+title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"16\">%s</text>\n", padL, esc(title))
	if len(l.Buckets) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	lo := float64(max(l.Buckets[0].Le, 1))
	hi := float64(max(l.Buckets[len(l.Buckets)-1].Le, time.Duration(lo)+1))
	// Whole decades around the data.
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(d float64) float64 {
		return padL + (math.Log10(max(d, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*(chartW-padL-padR)
	}
	maxShare := 0.0
	for _, bk := range l.Buckets {
		maxShare = max(maxShare, float64(bk.Count)/float64(l.Count))
	}
	maxY := niceMax(maxShare * 100)
	y := func(v float64) float64 { return chartH - padB - v/maxY*(chartH-padT-padB) }
	prev := 0.0
	for i, bk := range l.Buckets {
		left := prev
		if i == 0 || left == 0 {
			left = float64(bk.Le) / 1.09
		}
		share := 100 * float64(bk.Count) / float64(l.Count)
		x0, x1 := x(left), x(float64(bk.Le))
		fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#6b9bd1\"/>\n", x0, y(share), max(x1-x0, 0.8), y(0)-y(share))
		prev = float64(bk.Le)
	}
	for _, mark := range []struct {
		name string
		d    time.Duration
	}{{"p50", l.P50}, {"p99", l.P99}} {
		if mark.d <= 0 {
			continue
		}
		xm := x(float64(mark.d))
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#b00020\" stroke-dasharray=\"3,2\"/>\n", xm, padT, xm, chartH-padB)
		ty := padT + 10
		if mark.name == "p99" {
			ty += 14
		}
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\">%s %s</text>\n", xm+2, ty, mark.name, esc(dur(mark.d)))
	}
	// The time axis: one tick per decade.
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\"/>\n", padL, y(0), chartW-padR, y(0))
	for d := lo; d <= hi*1.001; d *= 10 {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x(d), chartH-padB+14, esc(tickDur(time.Duration(d))))
	}
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\"/>\n", padL, padT, padL, y(0))
	for i := 0; float64(i)*niceStep(maxY) <= maxY*1.0001; i++ {
		v := float64(i) * niceStep(maxY)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g%%</text>\n", padL-4, y(v)+4, v)
	}
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">share of operations by latency (log scale)</text>\n", padL, chartH-4)
	b.WriteString("</svg>\n")
	return b.String()
}

// axes draws the axes of a linear chart, with ticks at the round steps
// of niceMax.
func axes(b *strings.Builder, maxX, maxY float64, xl, yl func(float64) string, x, y func(float64) float64) {
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\"/>\n", padL, y(0), chartW-padR, y(0))
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\"/>\n", padL, padT, padL, y(0))
	sx, sy := niceStep(maxX), niceStep(maxY)
	for i := 0; float64(i)*sx <= maxX*1.0001; i++ {
		v := float64(i) * sx
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x(v), chartH-padB+14, html.EscapeString(xl(v)))
	}
	for i := 0; float64(i)*sy <= maxY*1.0001; i++ {
		v := float64(i) * sy
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", padL-4, y(v)+4, html.EscapeString(yl(v)))
		if i > 0 {
			fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", padL+1, y(v), chartW-padR, y(v))
		}
	}
}

// compact formats a rate: 950, 12.5k, 3.2M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// tickDur formats a power of ten of nanoseconds: 1µs, 10ms, 1s.
func tickDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}
