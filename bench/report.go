package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Schema names the layout of the JSON report; it changes only when a
// member changes meaning or goes away (new members may be added).
const Schema = "keybind-bench/1"

// Report is the outcome of a run of `keybind bench`: the machine, the
// crypto ceilings, one Result per measured workload, and the bar when it
// was run.
type Report struct {
	Started  time.Time
	Machine  Machine
	Ceilings []Result // mode "crypto": the reference rates ratios are taken against
	Results  []Result // every other mode, in the order measured
	Bar      *BarReport
}

// Machine describes where a report was measured.
type Machine struct {
	OS, Arch, GoVersion, CPUModel string
	CPUs                          int
	Split                         CPUSplit
}

// Result is one workload's measurement.
type Result struct {
	// Mode is crypto, pipeline, http or attest; Name the workload.
	Mode, Name string
	// Unit is what one operation is: signature, request, sign-in,
	// enrollment or attestation.
	Unit string
	// Ops operations in Wall, using CPU of CPUOf ("process": this one;
	// "server": the keybind server's, from its metrics).
	Ops       int64
	Wall, CPU time.Duration
	CPUOf     string
	// Signatures verified in those operations (verify workloads), which
	// the ratio counts instead of Ops when set.
	Signatures int64
	// Ceiling names the crypto ceiling the ratio is taken against (p256
	// or ed25519), CeilingRate its rate per CPU-second.
	Ceiling     string
	CeilingRate float64
	Latency     Latency
	// AllocsPerOp are heap allocations per operation (of the server for
	// http results); negative when unknown.
	AllocsPerOp float64
	Errors      int64
	FirstError  string
	// Timeline is the throughput in successive windows of the run.
	Timeline []TimelinePoint
}

// TimelinePoint is the throughput of one window of a run, At its end.
type TimelinePoint struct {
	At        time.Duration
	OpsPerSec float64
}

// PerSecond returns operations per second of wall time.
func (r Result) PerSecond() float64 { return per(float64(r.Ops), r.Wall) }

// PerCPUSecond returns operations per second of CPU time.
func (r Result) PerCPUSecond() float64 { return per(float64(r.Ops), r.CPU) }

// Ratio returns the signatures (or, for workloads without signatures, the
// operations) per CPU-second over the ceiling's rate: 1 is the speed of
// bare single-signature checks on one core; an attestation at 0.2 costs as
// much CPU as five signature checks.
func (r Result) Ratio() float64 {
	n := float64(r.Ops)
	if r.Signatures > 0 {
		n = float64(r.Signatures)
	}
	if r.CeilingRate <= 0 {
		return 0
	}
	return per(n, r.CPU) / r.CeilingRate
}

func per(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// Pass reports whether the bar, when it was run, was met.
func (rep *Report) Pass() bool { return rep.Bar == nil || rep.Bar.Pass() }

// ceilingRate returns the rate of the named ceiling in the report.
func (rep *Report) ceilingRate(name string) float64 {
	for _, c := range rep.Ceilings {
		if c.Name == name {
			return c.PerCPUSecond()
		}
	}
	return 0
}

// WriteText writes the report as tables for a person.
func (rep *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "keybind bench, %s: %s/%s, %d CPUs (%s), %s\n", rep.Started.Format(time.RFC3339), rep.Machine.OS, rep.Machine.Arch, rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion)
	fmt.Fprintf(b, "%s\n", rep.Machine.Split)
	all := append(append([]Result{}, rep.Ceilings...), rep.Results...)
	if len(all) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "mode\tworkload\tops/s\tops/CPU-s\tCPU of\tratio\tp50\tp90\tp99\tp99.9\tallocs/op\terrors\t\n")
		for _, r := range all {
			ratio := "-"
			if r.CeilingRate > 0 {
				ratio = fmt.Sprintf("%.2f", r.Ratio())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.Mode, r.Name+" ("+r.Unit+")", rate(r.PerSecond()), rate(r.PerCPUSecond()), r.CPUOf, ratio,
				dur(r.Latency.P50), dur(r.Latency.P90), dur(r.Latency.P99), dur(r.Latency.P999), allocs(r.AllocsPerOp), r.Errors)
		}
		tw.Flush()
		b.WriteString("(ops/CPU-s: per second of CPU time of the process measured, or of the server for http; ratio: signatures,\n or operations, per CPU-second over the crypto ceiling of one core, P-256 unless Ed25519)\n")
		for _, r := range all {
			if r.FirstError != "" {
				fmt.Fprintf(b, "%s %s: first error: %s\n", r.Mode, r.Name, r.FirstError)
			}
		}
	}
	if rep.Bar != nil {
		b.WriteString("\n")
		rep.Bar.writeText(b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rate(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func allocs(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func (b *BarReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "performance bar of the verify endpoint (median of %d rounds; %s)\n", b.Rounds, b.Split)
	fmt.Fprintf(w, "crypto ceiling on the server's cores, per CPU-second: P-256 %.0f, Ed25519 (crypto/ed25519) %.0f\n\n", b.P256Ceiling, b.Ed25519Ceiling)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tverif/server-CPU-s\tratio\tbar\t\tpipeline\treq/s\tserver busy\twaited for CPU\t\n")
	for _, f := range b.Figures {
		verdict := "ok"
		if !f.Pass() {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.2f\t%s\t%.3f\t%.0f\t%.0f%%\t%.0f%%\t\n", f.Name, f.ItemsPerCPUSecond, f.Ratio, f.Want, verdict, f.PipelineRatio, f.RequestsPerSecond, 100*f.ServerBusy, 100*f.ServerWaited)
	}
	tw.Flush()
	fmt.Fprintf(w, "(ratio: verifications per server CPU-second through the endpoint over the ceiling; pipeline: the same\n in process, without HTTP; server busy: server CPU time over wall time, 100%% per core; waited for CPU: the\n share of the time the server had work that it waited for a CPU held by other work on the machine)\n")
	verdict := "ok"
	if !b.LatencyPass() {
		verdict = "MISSED"
	}
	sl := b.Load70.ServerLatency()
	fmt.Fprintf(w, "\nlatency at %.0f%% of peak (P-256, 1 item; peak %.0f req/s, run at %.0f req/s): p50 %s, p99 %s, p99.9 %s (bar p99 ≤ %s) %s\n",
		100*BarLoad, b.PeakRPS, b.Load70Rate, dur(sl.P50), dur(sl.P99), dur(sl.P999), dur(BarP99), verdict)
	fmt.Fprintf(w, "(latencies count from each request's scheduled time, less the load generator's own lateness in sending it,\n p99 %s; counted from the scheduled time alone: p50 %s, p99 %s, p99.9 %s; the server waited for a CPU %.0f%% of the time)\n",
		dur(b.Load70.LagP99), dur(b.Load70.P50), dur(b.Load70.P99), dur(b.Load70.P999), 100*waited(b.Load70))
	overall := "met"
	if !b.Pass() {
		overall = "MISSED"
	}
	fmt.Fprintf(w, "\nbar %s\n", overall)
}

// JSON is the report's machine-readable form (see the README for every
// member); WriteJSON writes it.
type jsonReport struct {
	Schema   string       `json:"schema"`
	Started  time.Time    `json:"started"`
	Machine  jsonMachine  `json:"machine"`
	Ceilings []jsonResult `json:"ceilings"`
	Results  []jsonResult `json:"results"`
	Bar      *jsonBar     `json:"bar,omitempty"`
	Pass     bool         `json:"pass"`
}

type jsonMachine struct {
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	GoVersion     string `json:"go_version"`
	CPUModel      string `json:"cpu_model"`
	CPUs          int    `json:"cpus"`
	ServerCPUs    []int  `json:"server_cpus"`
	GeneratorCPUs []int  `json:"generator_cpus"`
	Pinned        bool   `json:"pinned"`
}

type jsonResult struct {
	Mode             string         `json:"mode"`
	Name             string         `json:"name"`
	Unit             string         `json:"unit"`
	Ops              int64          `json:"ops"`
	Signatures       int64          `json:"signatures,omitempty"`
	WallSeconds      float64        `json:"wall_seconds"`
	CPUSeconds       float64        `json:"cpu_seconds"`
	CPUOf            string         `json:"cpu_of"`
	OpsPerSecond     float64        `json:"ops_per_second"`
	OpsPerCPUSecond  float64        `json:"ops_per_cpu_second"`
	Ceiling          string         `json:"ceiling,omitempty"`
	CeilingPerCPUSec float64        `json:"ceiling_per_cpu_second,omitempty"`
	Ratio            *float64       `json:"ratio"`
	Latency          jsonLatency    `json:"latency"`
	AllocsPerOp      *float64       `json:"allocs_per_op"`
	Errors           int64          `json:"errors"`
	FirstError       string         `json:"first_error,omitempty"`
	Timeline         []jsonTimeline `json:"timeline"`
}

type jsonLatency struct {
	Count     int64        `json:"count"`
	P50Us     float64      `json:"p50_us"`
	P90Us     float64      `json:"p90_us"`
	P99Us     float64      `json:"p99_us"`
	P999Us    float64      `json:"p999_us"`
	MaxUs     float64      `json:"max_us"`
	Histogram []jsonBucket `json:"histogram"`
}

type jsonBucket struct {
	LeUs  float64 `json:"le_us"`
	Count int64   `json:"count"`
}

type jsonTimeline struct {
	AtSeconds    float64 `json:"at_seconds"`
	OpsPerSecond float64 `json:"ops_per_second"`
}

type jsonBar struct {
	Pass                 bool         `json:"pass"`
	Rounds               int          `json:"rounds"`
	P256PerCPUSecond     float64      `json:"p256_ceiling_per_cpu_second"`
	Ed25519PerCPUSecond  float64      `json:"ed25519_ceiling_per_cpu_second"`
	Figures              []jsonFigure `json:"figures"`
	PeakRequestsPerSec   float64      `json:"peak_requests_per_second"`
	LoadFraction         float64      `json:"load_fraction"`
	LoadRequestsPerSec   float64      `json:"load_requests_per_second"`
	LoadLatency          jsonLatency  `json:"load_latency"`
	LoadScheduleLatency  jsonLatency  `json:"load_latency_from_schedule"`
	LoadGeneratorLagP99  float64      `json:"load_generator_lag_p99_us"`
	LoadErrors           int64        `json:"load_errors"`
	WantP99Us            float64      `json:"want_p99_us"`
	LatencyPass          bool         `json:"latency_pass"`
	LoadP99RoundsUs      []float64    `json:"load_p99_rounds_us"`
	LoadServerWaited     float64      `json:"load_server_waited"`
	ServerCPUs           []int        `json:"server_cpus"`
	GeneratorCPUs        []int        `json:"generator_cpus"`
	Pinned               bool         `json:"pinned"`
	CeilingOnServerCores bool         `json:"ceiling_on_server_cpus"`
}

type jsonFigure struct {
	Name              string    `json:"name"`
	Algorithm         string    `json:"algorithm"`
	Items             int       `json:"items_per_request"`
	PerServerCPUSec   float64   `json:"verifications_per_server_cpu_second"`
	CeilingPerCPUSec  float64   `json:"ceiling_per_cpu_second"`
	Ratio             float64   `json:"ratio"`
	Want              float64   `json:"want"`
	Pass              bool      `json:"pass"`
	PipelineRatio     float64   `json:"pipeline_ratio"`
	RequestsPerSecond float64   `json:"requests_per_second"`
	ServerBusy        float64   `json:"server_busy"`
	ServerWaited      float64   `json:"server_waited"`
	Rounds            []float64 `json:"ratio_rounds"`
}

func us(d time.Duration) float64 { return math.Round(float64(d)/1e1) / 1e2 }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func latencyJSON(l Latency) jsonLatency {
	j := jsonLatency{Count: l.Count, P50Us: us(l.P50), P90Us: us(l.P90), P99Us: us(l.P99), P999Us: us(l.P999), MaxUs: us(l.Max), Histogram: []jsonBucket{}}
	for _, b := range l.Buckets {
		j.Histogram = append(j.Histogram, jsonBucket{LeUs: us(b.Le), Count: b.Count})
	}
	return j
}

func resultJSON(r Result) jsonResult {
	j := jsonResult{
		Mode: r.Mode, Name: r.Name, Unit: r.Unit, Ops: r.Ops, Signatures: r.Signatures,
		WallSeconds: round(r.Wall.Seconds(), 6), CPUSeconds: round(r.CPU.Seconds(), 6), CPUOf: r.CPUOf,
		OpsPerSecond: round(r.PerSecond(), 2), OpsPerCPUSecond: round(r.PerCPUSecond(), 2),
		Ceiling: r.Ceiling, CeilingPerCPUSec: round(r.CeilingRate, 2),
		Latency: latencyJSON(r.Latency), Errors: r.Errors, FirstError: r.FirstError, Timeline: []jsonTimeline{},
	}
	if r.CeilingRate > 0 && r.CPU > 0 {
		v := round(r.Ratio(), 4)
		j.Ratio = &v
	}
	if r.AllocsPerOp >= 0 {
		v := round(r.AllocsPerOp, 2)
		j.AllocsPerOp = &v
	}
	for _, t := range r.Timeline {
		j.Timeline = append(j.Timeline, jsonTimeline{AtSeconds: round(t.At.Seconds(), 3), OpsPerSecond: round(t.OpsPerSec, 1)})
	}
	return j
}

// WriteJSON writes the report as one JSON object (schema keybind-bench/1,
// described in the README).
func (rep *Report) WriteJSON(w io.Writer) error {
	j := jsonReport{
		Schema: Schema, Started: rep.Started.UTC(), Pass: rep.Pass(),
		Machine: jsonMachine{OS: rep.Machine.OS, Arch: rep.Machine.Arch, GoVersion: rep.Machine.GoVersion, CPUModel: rep.Machine.CPUModel, CPUs: rep.Machine.CPUs,
			ServerCPUs: nonNil(rep.Machine.Split.Server), GeneratorCPUs: nonNil(rep.Machine.Split.Generator), Pinned: rep.Machine.Split.Pinned},
		Ceilings: []jsonResult{}, Results: []jsonResult{},
	}
	for _, r := range rep.Ceilings {
		j.Ceilings = append(j.Ceilings, resultJSON(r))
	}
	for _, r := range rep.Results {
		j.Results = append(j.Results, resultJSON(r))
	}
	if b := rep.Bar; b != nil {
		jb := &jsonBar{
			Pass: b.Pass(), Rounds: b.Rounds, P256PerCPUSecond: round(b.P256Ceiling, 2), Ed25519PerCPUSecond: round(b.Ed25519Ceiling, 2),
			Figures: []jsonFigure{}, PeakRequestsPerSec: round(b.PeakRPS, 1), LoadFraction: BarLoad, LoadRequestsPerSec: round(b.Load70Rate, 1),
			LoadLatency: latencyJSON(b.Load70.ServerLatency()), LoadScheduleLatency: latencyJSON(b.Load70.Latency()), LoadGeneratorLagP99: us(b.Load70.LagP99), LoadErrors: b.Load70.Errors,
			WantP99Us: us(BarP99), LatencyPass: b.LatencyPass(), LoadP99RoundsUs: []float64{}, LoadServerWaited: round(waited(b.Load70), 3),
			ServerCPUs: nonNil(b.Split.Server), GeneratorCPUs: nonNil(b.Split.Generator), Pinned: b.Split.Pinned, CeilingOnServerCores: b.Split.Pinned,
		}
		for _, p := range b.LoadP99s {
			jb.LoadP99RoundsUs = append(jb.LoadP99RoundsUs, us(p))
		}
		for _, f := range b.Figures {
			rounds := []float64{}
			for _, r := range f.Rounds {
				rounds = append(rounds, round(r, 4))
			}
			jb.Figures = append(jb.Figures, jsonFigure{
				Name: f.Name, Algorithm: f.Algorithm, Items: f.Items, PerServerCPUSec: round(f.ItemsPerCPUSecond, 1), CeilingPerCPUSec: round(f.Ceiling, 1),
				Ratio: round(f.Ratio, 4), Want: f.Want, Pass: f.Pass(), PipelineRatio: round(f.PipelineRatio, 4),
				RequestsPerSecond: round(f.RequestsPerSecond, 1), ServerBusy: round(f.ServerBusy, 3), ServerWaited: round(f.ServerWaited, 3), Rounds: rounds,
			})
		}
		j.Bar = jb
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func nonNil(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}
