package bench

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// errNoAffinity is returned where CPU affinity cannot be set (systems
// other than Linux): the runs then bound only GOMAXPROCS.
var errNoAffinity = errors.New("bench: CPU affinity is not supported on " + runtime.GOOS)

// CPUSplit is how a run shares the machine's cores: the server (or the
// in-process pipeline and the crypto ceiling) on Server, the load generator
// on Generator, disjoint, so that neither preempts the other and the
// ceiling is measured on the cores the server runs on.
type CPUSplit struct {
	Server, Generator []int
	// Pinned reports whether the sets are enforced with CPU affinity
	// (Linux); otherwise only their sizes bound GOMAXPROCS.
	Pinned bool
}

// SplitCPUs divides the CPUs this process may run on: the generator gets
// generator of them (default: half, rounded down, at least one) from the
// lowest, the server the rest. With a single CPU both share it.
func SplitCPUs(generator int) CPUSplit {
	cpus, pinned := allowedCPUs()
	if len(cpus) == 0 {
		cpus = make([]int, runtime.NumCPU())
		for i := range cpus {
			cpus[i] = i
		}
		pinned = false
	}
	if generator <= 0 {
		generator = max(1, len(cpus)/2)
	}
	if len(cpus) == 1 {
		return CPUSplit{Server: cpus, Generator: cpus, Pinned: pinned}
	}
	generator = min(generator, len(cpus)-1)
	return CPUSplit{Generator: cpus[:generator], Server: cpus[generator:], Pinned: pinned}
}

func (s CPUSplit) String() string {
	if !s.Pinned {
		return fmt.Sprintf("server %d cores, load generator %d (GOMAXPROCS only: no CPU affinity here)", len(s.Server), len(s.Generator))
	}
	return fmt.Sprintf("server on CPU %s, load generator on CPU %s", cpuList(s.Server), cpuList(s.Generator))
}

// cpuList formats CPU numbers as "0-3,6".
func cpuList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// onCPUs runs f on the calling goroutine, locked to its thread and that
// thread bound to cpus; the thread's binding is restored afterwards. Where
// affinity is not supported f runs unbound.
func onCPUs(cpus []int, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := bindThread(cpus)
	if err == nil {
		defer restore()
	}
	f()
}

// pinSelf binds every thread of this process to cpus and sets GOMAXPROCS
// to their number; the returned function binds them back to the CPUs the
// calling thread had and restores GOMAXPROCS.
func pinSelf(cpus []int) (undo func()) {
	prev := runtime.GOMAXPROCS(len(cpus))
	allowed, ok := allowedCPUs()
	if !ok || bindProcess(0, cpus) != nil {
		return func() { runtime.GOMAXPROCS(prev) }
	}
	return func() {
		bindProcess(0, allowed)
		runtime.GOMAXPROCS(prev)
	}
}
