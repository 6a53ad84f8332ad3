package measure

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Kernel quiet: deleting a network namespace returns at once, and the
// kernel frees its tables afterwards in a worker (tens of seconds for a
// large nftables table). A proxy started meanwhile would be timed against
// that work, so the harness waits for it first.
const (
	quietInterval = 500 * time.Millisecond
	// quietShare is the system CPU time, as a share of one CPU, under
	// which the machine counts as quiet.
	quietShare = 0.10
	// quietSpells is how many intervals in a row must be quiet.
	quietSpells = 3
)

// WaitKernelQuiet waits until the machine's system CPU time stays under
// quietShare of one CPU for quietSpells intervals in a row, or max has
// passed. It returns how long it waited and whether the kernel went quiet.
func WaitKernelQuiet(ctx context.Context, max time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	prev, err := systemTicks()
	if err != nil {
		return 0, false, err
	}
	quiet := 0
	for time.Since(start) < max {
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(quietInterval):
		}
		cur, err := systemTicks()
		if err != nil {
			return time.Since(start), false, err
		}
		if float64(cur-prev)/clockTicks < quietShare*quietInterval.Seconds() {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
		if quiet >= quietSpells {
			return time.Since(start), true, nil
		}
	}
	return time.Since(start), false, nil
}

// systemTicks is the machine's system, irq and softirq time from
// /proc/stat, in clock ticks.
func systemTicks() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseSystemTicks(string(b))
}

func parseSystemTicks(stat string) (uint64, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var sum uint64
	for _, i := range []int{3, 6, 7} { // system, irq, softirq
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		sum += v
	}
	return sum, nil
}
