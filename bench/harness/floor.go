package harness

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// floorReps is how many times each floor restore runs (median reported).
const floorReps = 3

// restoreRun is one timed iptables-restore.
type restoreRun struct {
	wall   float64 // seconds
	cpu    float64 // user + system seconds
	maxRSS float64 // MB
}

// floor measures a bare iptables-restore of dump: into an empty namespace
// (the floor of a full sync on a fresh node), --noflush over the identical
// loaded ruleset (the floor of a restart's full sync), --noflush of one
// Service's endpoint moving (the floor of a partial sync, see
// measure.IptablesEndpointSwap) and of only the nat KUBE-SERVICES chain
// (what upstream's partial sync writes at least).
func (h *harness) floor(n, m int, dump string) report.Row {
	row := report.NewRow("floor", report.KindFloor, report.FloorIptables, n, m)
	fresh := measure.ForFreshRestore(dump)
	rules := measure.CountRules(fresh)
	row.Rules, row.Chains, row.Bytes = rules.Rules, rules.Chains, rules.Bytes
	err := func() error {
		fwd, back, err := measure.IptablesEndpointSwap(fresh)
		if err != nil { // the other floors do not need it
			h.log.logf("    floor: no partial-sync floor: %v", err)
		}
		full, ns, err := h.freshLoads("floor", fresh, restoreArgv)
		if err != nil {
			return err
		}
		defer testrig.DeleteNetns(ns)
		setFresh(&row, full)
		noflush := []string{"iptables-restore", "-w", "--noflush"}
		kube, kubeServices := measure.KubeOnly(fresh), measure.KubeServicesOnly(fresh)
		var over, part, services []restoreRun
		for range floorReps {
			for _, load := range []struct {
				what    string
				payload string
				runs    *[]restoreRun
			}{
				{"over the same rules", kube, &over},
				{"of one Service's delta", fwd, &part}, {"of one Service's delta back", back, &part},
				{"of KUBE-SERVICES alone", kubeServices, &services},
			} {
				if load.payload == "" {
					continue // nothing to load (no delta, no KUBE-SERVICES rules)
				}
				r, err := timedLoad(ns, load.payload, noflush)
				if err != nil {
					return fmt.Errorf("--noflush restore %s: %w", load.what, err)
				}
				*load.runs = append(*load.runs, r)
			}
		}
		row.RestartSyncWall, row.RestartSyncMetric = medianOf(over, wallOf), medianOf(over, wallOf)
		row.PartialMetric = medianOf(part, wallOf) // no API update to time from
		row.KubeServicesWall = medianOf(services, wallOf)
		h.log.logf("    floor: restore into empty netns %.3fs, --noflush over same %.3fs, one Service's delta %.3fs, KUBE-SERVICES alone %.3fs",
			float64(row.FirstSyncWall), float64(row.RestartSyncWall), float64(row.PartialMetric), float64(row.KubeServicesWall))
		return nil
	}()
	if err != nil {
		row.Status, row.Error = "failed", err.Error()
	}
	row.LoadAvg = report.LoadAvg1()
	return row
}

var restoreArgv = []string{"iptables-restore", "-w"}

// freshLoads loads payload with argv floorReps times, each into a new
// namespace, and returns the timings and the last namespace, still loaded
// (the caller deletes it).
func (h *harness) freshLoads(prefix, payload string, argv []string) (runs []restoreRun, ns string, err error) {
	for range floorReps {
		if ns != "" {
			if err := testrig.DeleteNetns(ns); err != nil {
				return nil, "", err
			}
			h.waitKernelQuiet(context.Background())
		}
		ns = testrig.UniqueName(prefix)
		if err := testrig.CreateNetns(h.s, ns); err != nil {
			return nil, "", err
		}
		r, err := timedLoad(ns, payload, argv)
		if err != nil {
			testrig.DeleteNetns(ns)
			return nil, "", fmt.Errorf("%s into an empty netns: %w", argv[0], err)
		}
		runs = append(runs, r)
	}
	return runs, ns, nil
}

func wallOf(r restoreRun) float64 { return r.wall }

// medianOf is the median of one figure of runs.
func medianOf(runs []restoreRun, f func(restoreRun) float64) report.F {
	var xs []float64
	for _, r := range runs {
		xs = append(xs, f(r))
	}
	return report.F(measure.Median(xs))
}

// setFresh records the loads into an empty namespace as the floor of a
// first sync: wall time, CPU and peak RSS, medians.
func setFresh(row *report.Row, runs []restoreRun) {
	row.FirstSyncWall, row.FirstSyncMetric = medianOf(runs, wallOf), medianOf(runs, wallOf)
	row.CPU = medianOf(runs, func(r restoreRun) float64 { return r.cpu })
	row.RSSMB = medianOf(runs, func(r restoreRun) float64 { return r.maxRSS })
	row.HWMMB = row.RSSMB
}

// timedLoad runs argv in ns with payload on stdin and returns its wall time
// and resource usage.
func timedLoad(ns, payload string, argv []string) (restoreRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// "ip netns exec" execs the command, so the rusage is its own.
	cmd := testrig.Command(ctx, ns, argv...)
	cmd.Stdin = strings.NewReader(payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		return restoreRun{}, fmt.Errorf("%w: %s (offending line: %q)", err, msg, offendingLine(msg, payload))
	}
	r := restoreRun{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		r.maxRSS = float64(ru.Maxrss) * 1024 / 1e6 // Maxrss is in KB
	}
	return r, nil
}

// restoreLine finds the line number in iptables-restore's ("line 12:", "line 12 failed") and
// nft's ("/dev/stdin:12:3-10: Error") complaints.
var restoreLine = regexp.MustCompile(`(?m)line (\d+)\b|^\S*?:(\d+):\d+(?:-\d+)?: Error`)

// offendingLine returns the payload line the loader complained about.
func offendingLine(stderr, payload string) string {
	m := restoreLine.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1] + m[2])
	lines := strings.Split(payload, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}
