//go:build !linux

package bench

import "time"

func allowedCPUs() ([]int, bool)             { return nil, false }
func bindThread([]int) (func(), error)       { return nil, errNoAffinity }
func bindProcess(int, []int) error           { return errNoAffinity }
func runQueueWait(int) (time.Duration, bool) { return 0, false }
