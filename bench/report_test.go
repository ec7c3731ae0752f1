package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report with every kind of member filled in, and
// strings that need escaping.
func sampleReport() *Report {
	var h latencyHist
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		h.add(time.Duration(rng.ExpFloat64() * float64(200*time.Microsecond)))
	}
	lat := h.summary()
	tl := []TimelinePoint{{250 * time.Millisecond, 18000}, {500 * time.Millisecond, 19500}, {750 * time.Millisecond, 19000}}
	ceiling := Result{Mode: ModeCrypto, Name: "P-256 (crypto/ecdsa)", Unit: "signature", Ops: 19000, Signatures: 19000, Wall: time.Second, CPU: time.Second,
		CPUOf: "process", Ceiling: "p256", CeilingRate: 19000, Latency: lat, AllocsPerOp: 10, Timeline: tl}
	rep := &Report{
		Started:  time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Machine:  Machine{OS: "linux", Arch: "amd64", GoVersion: "go1.26", CPUModel: "Test <CPU> & \"co\"", CPUs: 2, Split: CPUSplit{Server: []int{1}, Generator: []int{0}, Pinned: true}},
		Ceilings: []Result{ceiling},
		Results: []Result{
			{Mode: ModeHTTP, Name: "verify <script>alert(1)</script>", Unit: "request", Ops: 30000, Signatures: 30000, Wall: 2 * time.Second, CPU: 1800 * time.Millisecond,
				CPUOf: "server", Ceiling: "p256", CeilingRate: 19000, Latency: lat, AllocsPerOp: 1.5, Errors: 2, FirstError: "status 500: see http://example.com/x", Timeline: tl},
			{Mode: ModeHTTP, Name: "signin (in the mix)", Unit: "sign-in", Ops: 10, Wall: 2 * time.Second, CPUOf: "server", AllocsPerOp: -1},
		},
	}
	rep.Bar = &BarReport{P256Ceiling: 19000, Ed25519Ceiling: 26000, Rounds: 3, Split: rep.Machine.Split, PeakRPS: 15000, Load70Rate: 10500,
		Figures: []Figure{
			{Name: "P-256, 1 item per request", Algorithm: "ecdsa-p256", Items: 1, ItemsPerCPUSecond: 17000, Ceiling: 19000, Ratio: 0.89, Want: BarP256One, Rounds: []float64{0.88, 0.89, 0.9}, PipelineRatio: 1.01, RequestsPerSecond: 15000, ServerBusy: 0.95},
			{Name: "Ed25519, 16 items per request", Algorithm: "ed25519", Items: 16, ItemsPerCPUSecond: 70000, Ceiling: 26000, Ratio: 1.9, Want: BarEd25519, Rounds: []float64{1.9}},
		},
		Load70:   HTTPResult{Requests: 21000, P50: 300 * time.Microsecond, P99: 2 * time.Millisecond, P999: 4 * time.Millisecond, latency: lat, server: lat},
		LoadP99s: []time.Duration{2 * time.Millisecond},
	}
	return rep
}

// The documented members of the JSON report (README, "JSON report").
var (
	keysTop     = []string{"schema", "started", "machine", "ceilings", "results", "bar", "pass"}
	keysMachine = []string{"os", "arch", "go_version", "cpu_model", "cpus", "server_cpus", "generator_cpus", "pinned"}
	keysResult  = []string{"mode", "name", "unit", "ops", "wall_seconds", "cpu_seconds", "cpu_of", "ops_per_second", "ops_per_cpu_second",
		"ratio", "latency", "allocs_per_op", "errors", "timeline"}
	keysLatency = []string{"count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "histogram"}
	keysBar     = []string{"pass", "rounds", "p256_ceiling_per_cpu_second", "ed25519_ceiling_per_cpu_second", "figures", "peak_requests_per_second",
		"load_fraction", "load_requests_per_second", "load_latency", "load_latency_from_schedule", "load_generator_lag_p99_us", "load_errors", "want_p99_us", "latency_pass",
		"load_p99_rounds_us", "load_server_waited", "server_cpus", "generator_cpus", "pinned", "ceiling_on_server_cpus"}
	keysFigure = []string{"name", "algorithm", "items_per_request", "verifications_per_server_cpu_second", "ceiling_per_cpu_second", "ratio",
		"want", "pass", "pipeline_ratio", "requests_per_second", "server_busy", "server_waited", "ratio_rounds"}
)

func hasKeys(t *testing.T, what string, m map[string]any, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no member %q (members: %v)", what, k, slices.Sorted(mapKeys(m)))
		}
	}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		t.Fatal(err)
	}
	hasKeys(t, "report", top, keysTop)
	if top["schema"] != Schema || top["pass"] != false {
		t.Errorf("schema %v, pass %v (the Ed25519 figure misses its bar)", top["schema"], top["pass"])
	}
	hasKeys(t, "machine", top["machine"].(map[string]any), keysMachine)
	results := append(top["ceilings"].([]any), top["results"].([]any)...)
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		r := r.(map[string]any)
		hasKeys(t, "result", r, keysResult)
		hasKeys(t, "latency", r["latency"].(map[string]any), keysLatency)
	}
	http := top["results"].([]any)[0].(map[string]any)
	if r, _ := http["ratio"].(json.Number).Float64(); r < 0.876 || r > 0.878 { // 30000 / 1.8 s / 19000
		t.Errorf("ratio %v", http["ratio"])
	}
	if http["first_error"] != "status 500: see http://example.com/x" || http["errors"] != json.Number("2") {
		t.Errorf("errors %v %v", http["errors"], http["first_error"])
	}
	// Unknown figures are null, not zero.
	signin := top["results"].([]any)[1].(map[string]any)
	if signin["ratio"] != nil || signin["allocs_per_op"] != nil {
		t.Errorf("ratio %v and allocs_per_op %v of a result without CPU time", signin["ratio"], signin["allocs_per_op"])
	}
	hist := http["latency"].(map[string]any)["histogram"].([]any)
	var n int64
	prev := 0.0
	for _, b := range hist {
		b := b.(map[string]any)
		le, _ := b["le_us"].(json.Number).Float64()
		c, _ := b["count"].(json.Number).Int64()
		if le <= prev || c <= 0 {
			t.Errorf("bucket %v after %v", b, prev)
		}
		prev, n = le, n+c
	}
	if n != 5000 {
		t.Errorf("histogram counts %d, want 5000", n)
	}
	bar := top["bar"].(map[string]any)
	hasKeys(t, "bar", bar, keysBar)
	for _, f := range bar["figures"].([]any) {
		hasKeys(t, "figure", f.(map[string]any), keysFigure)
	}
	if bar["pass"] != false || bar["latency_pass"] != true {
		t.Errorf("bar pass %v, latency pass %v", bar["pass"], bar["latency_pass"])
	}
}

func TestWriteHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Well-formed: every element closed, attributes quoted, text escaped
	// (an XML parser reads it whole).
	dec := xml.NewDecoder(strings.NewReader(page))
	dec.Strict = true
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elements[se.Name.Local]++
			for _, a := range se.Attr {
				switch strings.ToLower(a.Name.Local) {
				case "src", "href", "xlink:href", "action", "srcset":
					t.Errorf("<%s %s=%q>: the page must load nothing", se.Name.Local, a.Name.Local, a.Value)
				}
			}
		}
	}
	for _, el := range []string{"script", "link", "img", "iframe", "object", "embed"} {
		if elements[el] > 0 {
			t.Errorf("%d <%s> elements", elements[el], el)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?https?:`).MatchString(page) || strings.Contains(page, "@import") || strings.Contains(page, "url(") {
		t.Error("the page refers to something outside it")
	}
	if elements["svg"] < 4 || elements["table"] != 2 {
		t.Errorf("%d charts, %d tables", elements["svg"], elements["table"])
	}
	for _, want := range []string{"verify &lt;script&gt;alert(1)&lt;/script&gt;", "MISSED", "Test &lt;CPU&gt; &amp;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"ops/CPU-s", "p99.9", "allocs/op", "P-256 (crypto/ecdsa)", "0.88", "first error: status 500", "bar MISSED", "MISSED", "server on CPU 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the text lacks %q:\n%s", want, out)
		}
	}
}

func TestLatencySummary(t *testing.T) {
	var h latencyHist
	if s := h.summary(); s.Count != 0 || s.P99 != 0 || len(s.Buckets) != 0 {
		t.Errorf("empty: %+v", s)
	}
	var all []time.Duration
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		d := time.Duration(rng.ExpFloat64()*float64(time.Millisecond)) + 10*time.Microsecond
		h.add(d)
		all = append(all, d)
	}
	slices.Sort(all)
	s := h.summary()
	for _, c := range []struct {
		got time.Duration
		q   float64
	}{{s.P50, 0.5}, {s.P90, 0.9}, {s.P99, 0.99}, {s.P999, 0.999}} {
		exact := all[int(c.q*float64(len(all)))]
		if c.got < exact || float64(c.got) > float64(exact)*1.02+1 {
			t.Errorf("q%v: %v, exact %v", c.q, c.got, exact)
		}
	}
	if s.Max != all[len(all)-1] || s.Count != 20000 {
		t.Errorf("max %v count %d", s.Max, s.Count)
	}
	var n int64
	for i, b := range s.Buckets {
		n += b.Count
		if i > 0 && b.Le <= s.Buckets[i-1].Le {
			t.Errorf("bucket %d: %v after %v", i, b.Le, s.Buckets[i-1].Le)
		}
		// Every latency is counted in the first bucket whose bound is at
		// least it.
		lo := time.Duration(-1)
		if i > 0 {
			lo = s.Buckets[i-1].Le
		}
		want := 0
		for _, d := range all {
			if d > lo && d <= b.Le {
				want++
			}
		}
		if int64(want) != b.Count {
			t.Errorf("bucket %d (%v, %v]: %d, want %d", i, lo, b.Le, b.Count, want)
		}
	}
	if n != 20000 {
		t.Errorf("buckets count %d", n)
	}
}

func TestParseMix(t *testing.T) {
	mix, err := ParseMix("verify=90, signin=5,enroll=5")
	if err != nil || !slices.Equal(mix, []MixEntry{{MixVerify, 90}, {MixSignIn, 5}, {MixEnroll, 5}}) {
		t.Errorf("%v %v", mix, err)
	}
	if mix, err := ParseMix("verify,enroll=0"); err != nil || !slices.Equal(mix, []MixEntry{{MixVerify, 1}}) {
		t.Errorf("%v %v", mix, err)
	}
	for _, bad := range []string{"", "verify=x", "verify=-1", "login=3", "verify=1,verify=2", "enroll=0", "verify=10001", "verify=9000000000000000000"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestNiceAxis(t *testing.T) {
	for _, c := range []struct{ v, max float64 }{{0, 1}, {1, 1}, {1.0003, 1.5}, {2.1, 3}, {19500, 20000}, {7, 8}, {0.3, 0.3}, {101, 150}} {
		if got := niceMax(c.v); got != c.max && !(c.v == 0.3 && got > 0.299 && got < 0.301) {
			t.Errorf("niceMax(%v) = %v, want %v", c.v, got, c.max)
		}
	}
}

// The timeline of a short run labels its time axis with round numbers and
// marks its points, so that a run of one window still shows its figure.
func TestTimelineShortRun(t *testing.T) {
	one := timelineSVG("one window", "request", []TimelinePoint{{At: 300 * time.Millisecond, OpsPerSec: 19000}})
	if strings.Contains(one, "0000000") {
		t.Errorf("an axis label carries floating-point noise:\n%s", one)
	}
	if !strings.Contains(one, "<circle") {
		t.Errorf("the one point of the run is not marked:\n%s", one)
	}
	if none := timelineSVG("no window", "request", nil); !strings.Contains(none, "too short a run") {
		t.Errorf("an empty timeline does not say why:\n%s", none)
	}
	long := make([]TimelinePoint, 8)
	for i := range long {
		long[i] = TimelinePoint{At: time.Duration(i+1) * 250 * time.Millisecond, OpsPerSec: 1000}
	}
	if s := timelineSVG("long", "request", long); strings.Contains(s, "<circle") || strings.Contains(s, "0000000") {
		t.Errorf("a long run's timeline has markers or noisy labels:\n%s", s)
	}
}
