package userspacebench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// setAffinity restricts every thread of process pid to cpus (all CPUs when
// cpus is empty). Threads created later inherit their creator's mask, so
// the whole process stays there.
func setAffinity(pid int, cpus ...int) error {
	var set unix.CPUSet
	if len(cpus) == 0 {
		for c := 0; c < runtime.NumCPU(); c++ { // the mask at start-up
			set.Set(c)
		}
	}
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		// A thread may exit between the listing and the call.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}
