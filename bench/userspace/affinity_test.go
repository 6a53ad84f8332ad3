package userspacebench

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// startMask is the CPUs this process may use when it starts (a cpuset or
// taskset may have narrowed the machine's).
var startMask = func() unix.CPUSet {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		set.Set(0)
	}
	return set
}()

// allowedCPUs lists startMask.
func allowedCPUs() []int {
	var out []int
	for c := 0; c < len(startMask)*64; c++ {
		if startMask.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// setAffinity restricts every thread of process pid to cpus (startMask
// when cpus is empty). Threads created later inherit their creator's mask,
// so the whole process stays there.
func setAffinity(pid int, cpus ...int) error {
	set := startMask
	if len(cpus) > 0 {
		set.Zero()
		for _, c := range cpus {
			set.Set(c)
		}
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
