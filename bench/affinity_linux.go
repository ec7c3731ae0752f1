package bench

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs this process may run on, from
// sched_getaffinity.
func allowedCPUs() ([]int, bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, false
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, true
}

func cpuSet(cpus []int) *unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return &set
}

// bindThread binds the calling thread to cpus and returns a function
// restoring its previous binding.
func bindThread(cpus []int) (func(), error) {
	var prev unix.CPUSet
	if err := unix.SchedGetaffinity(0, &prev); err != nil {
		return nil, err
	}
	if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
		return nil, err
	}
	return func() { unix.SchedSetaffinity(0, &prev) }, nil
}

// bindProcess binds every thread of process pid (0: this one) to cpus.
// Threads created later inherit the binding of the thread creating them;
// the threads are listed again until a pass finds none new, so that one
// created while binding is not missed.
func bindProcess(pid int, cpus []int) error {
	if pid == 0 {
		pid = os.Getpid()
	}
	set := cpuSet(cpus)
	done := map[int]bool{}
	for range 10 {
		d, err := os.Open("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return err
		}
		found := false
		for _, n := range names {
			tid, err := strconv.Atoi(n)
			if err != nil || done[tid] {
				continue
			}
			found, done[tid] = true, true
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return err
			}
		}
		if !found {
			return nil
		}
	}
	return nil
}

// runQueueWait returns how long the threads of process pid have waited,
// runnable, for a CPU (the second field of /proc/PID/task/TID/schedstat,
// summed), and whether the system tells.
func runQueueWait(pid int) (time.Duration, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var total time.Duration
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
	}
	return total, true
}
