package measure

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcStats is what /proc says about a process.
type ProcStats struct {
	RSS      int64   // VmRSS, bytes
	HWM      int64   // VmHWM (peak RSS), bytes
	CPU      float64 // user + system seconds of the process itself
	Children float64 // user + system seconds of its waited-for children (e.g. iptables-restore)
}

// TotalCPU is the process's own CPU time plus its children's.
func (p ProcStats) TotalCPU() float64 { return p.CPU + p.Children }

// ReadProc reads /proc/<pid>/status and /proc/<pid>/stat.
func ReadProc(pid int) (ProcStats, error) {
	var ps ProcStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, fmt.Errorf("read proc stats: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return ps, fmt.Errorf("read proc stats: %s: %w", k, err)
		}
		if k == "VmRSS" {
			ps.RSS = kb << 10
		} else {
			ps.HWM = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("read proc stats: %w", err)
	}
	cpu, children, err := parseStatCPU(string(stat))
	if err != nil {
		return ps, fmt.Errorf("read proc stats of %d: %w", pid, err)
	}
	ps.CPU, ps.Children = cpu, children
	return ps, nil
}

// parseStatCPU returns utime+stime and cutime+cstime in seconds from the
// contents of /proc/<pid>/stat.
func parseStatCPU(stat string) (float64, float64, error) {
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after the last ')' start with field 3 (state).
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// utime, stime, cutime, cstime are fields 14..17, i.e. f[11..14].
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short stat %q", stat)
	}
	var v [4]float64
	for k := range v {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("stat field %d: %w", 14+k, err)
		}
		v[k] = float64(n) / clockTicks
	}
	return v[0] + v[1], v[2] + v[3], nil
}
