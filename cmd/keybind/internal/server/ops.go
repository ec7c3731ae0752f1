package server

import (
	_ "embed"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// OpenAPI is the OpenAPI 3.1 document of the HTTP API, served at
// /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Server) registerOps() {
	s.Handle(Route{Method: "GET", Path: "/healthz", Handler: s.healthz})
	s.Handle(Route{Method: "GET", Path: "/readyz", Handler: s.readyz})
	s.Handle(Route{Method: "GET", Path: "/metrics", Handler: s.serveMetrics})
	s.Handle(Route{Method: "GET", Path: "/v1/openapi.json", Handler: func(c *Ctx) error {
		c.Raw(fasthttp.StatusOK, "application/json", OpenAPI)
		return nil
	}})
	s.metrics.Collect(s.collectProcess)
}

// healthz answers 200 while the process serves: liveness, nothing more.
func (s *Server) healthz(c *Ctx) error {
	return c.JSON(fasthttp.StatusOK, map[string]any{
		"status":  "ok",
		"version": s.cfg.Version,
		"uptime":  time.Since(s.started).Round(time.Second).String(),
	})
}

// readyz answers 200 when the server should receive traffic: it is not
// shutting down and every ready check passes; 503 otherwise.
func (s *Server) readyz(c *Ctx) error {
	if s.draining.Load() {
		return &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeShuttingDown, Detail: "the server is shutting down", RetryAfter: 1}
	}
	s.mu.Lock()
	checks := append([]readyCheck(nil), s.readyChecks...)
	s.mu.Unlock()
	for _, rc := range checks {
		if err := rc.check(); err != nil {
			return &Problem{Status: fasthttp.StatusServiceUnavailable, Code: CodeUnavailable, Detail: rc.name + ": " + err.Error(), RetryAfter: 1}
		}
	}
	return c.JSON(fasthttp.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) serveMetrics(c *Ctx) error {
	w := &MetricWriter{b: make([]byte, 0, 32<<10)}
	s.metrics.write(w)
	c.Raw(fasthttp.StatusOK, "text/plain; version=0.0.4; charset=utf-8", w.b)
	return nil
}

var runtimeSamples = []struct {
	metric, name, help, typ string
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "Goroutines that currently exist.", "gauge"},
	{"/memory/classes/heap/objects:bytes", "go_heap_objects_bytes", "Bytes of live and not yet swept heap objects.", "gauge"},
	{"/memory/classes/total:bytes", "go_memory_total_bytes", "Memory mapped by the Go runtime.", "gauge"},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "Completed GC cycles.", "counter"},
	{"/gc/heap/allocs:objects", "go_heap_allocs_objects_total", "Heap objects allocated.", "counter"},
}

// collectProcess writes the process's CPU time (from getrusage, so a load
// generator can measure the server's own CPU), start time and runtime
// figures.
func (s *Server) collectProcess(w *MetricWriter) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		w.Family("process_cpu_seconds_total", "User and system CPU time of the process, from getrusage.", "counter")
		w.Sample("process_cpu_seconds_total", cpu.Seconds())
		w.Family("process_max_resident_memory_bytes", "Peak resident set size.", "gauge")
		w.Sample("process_max_resident_memory_bytes", float64(ru.Maxrss)*1024)
	}
	w.Family("process_start_time_seconds", "Start time of the process, in seconds since the Unix epoch.", "gauge")
	w.Sample("process_start_time_seconds", float64(s.started.UnixNano())/1e9)
	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, rs := range runtimeSamples {
		samples[i].Name = rs.metric
	}
	metrics.Read(samples)
	for i, rs := range runtimeSamples {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue
		}
		w.Family(rs.name, rs.help, rs.typ)
		w.Sample(rs.name, v)
	}
	w.Family("go_maxprocs", "GOMAXPROCS.", "gauge")
	w.Sample("go_maxprocs", float64(runtime.GOMAXPROCS(0)))
}
