//go:build kind

package kind

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// hostSysctls are the machine-wide settings under /proc/sys (kernel, vm, fs:
// the trees no network namespace has a copy of), path → value.
type hostSysctls map[string]string

// libModulesBefore: whether /lib/modules existed before the cluster (dockerd
// creates it for kind's bind mount; down must remove it again).
var libModulesBefore = func() bool { _, err := os.Stat("/lib/modules"); return err == nil }()

func readHostSysctls() hostSysctls {
	out := hostSysctls{}
	for _, tree := range []string{"kernel", "vm", "fs"} {
		_ = filepath.WalkDir(filepath.Join("/proc/sys", tree), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil {
				out[path] = strings.TrimSpace(string(b))
			}
			return nil
		})
	}
	return out
}

// snapshotHostSysctls reads them twice and leaves out what changed in
// between (counters, random values): the rest must not change at all.
func snapshotHostSysctls() hostSysctls {
	a, b := readHostSysctls(), readHostSysctls()
	for k, v := range a {
		if b[k] != v {
			delete(a, k)
		}
	}
	return a
}

// diff lists the settings whose value differs in after (volatile ones that
// only one snapshot kept are left out).
func (before hostSysctls) diff(after hostSysctls) string {
	var lines []string
	for k, v := range before {
		if w, ok := after[k]; ok && w != v && !volatileSysctl(k) {
			lines = append(lines, fmt.Sprintf("  %s: %q → %q", k, v, w))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// volatileSysctl: values the kernel changes by itself over minutes.
func volatileSysctl(path string) bool {
	for _, p := range []string{"/random/", "/ns_last_pid", "-nr", "-state", "/pty/nr", "/perf_event_max_sample_rate", "/tainted", "/quota/"} {
		if strings.Contains(path, p) {
			return true
		}
	}
	return false
}
