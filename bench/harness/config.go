package harness

import (
	"fmt"
	"io"
	"time"
)

// Config is one benchmark run.
type Config struct {
	Ns      []int    // Service counts, grown in this order within each M
	Ms      []int    // endpoints per Service
	Proxies []string // Spec names to run; empty: all (unavailable ones are reported as such)
	Steps   []Step   // explicit workloads (see ParseWorkloads); replace Ns × Ms when set

	// Repeats is how many times every proxy is measured on every workload
	// (the order alternated between repeats); tables show the median.
	Repeats           int
	Probes            int           // network programming probes per proxy (>= 20 for p99 to mean much)
	ProbeGap          time.Duration // idle time before each probe (lets min-sync-period expire)
	PartialReps       int           // partial syncs per proxy (median reported)
	FirstPacketRounds int           // recorded connect() pairs (ClusterIP + direct)
	FirstPacketWarmup int
	Workers           int // parallel API creators

	// SyncTimeout bounds each wait for a sync: SyncTimeoutBase +
	// SyncTimeoutPerService × N.
	SyncTimeoutBase       time.Duration
	SyncTimeoutPerService time.Duration

	KproxyBinary   string // prebuilt kproxy; empty: build ./cmd/kproxy
	UpstreamBinary string // empty: testrig.UpstreamBinary("kube-proxy")
	// AllowDirty lets kproxy be built from a tree with uncommitted changes
	// (or taken prebuilt); every table and machine.md then says "uncommitted".
	AllowDirty bool
	// HeapProfiles runs every proxy with --profiling and saves its heap
	// profile at steady state beside the results (heap-<proxy>-NxM-r<i>.pb.gz).
	HeapProfiles bool

	Out     string    // results directory (results.json, results.md, machine.md, *.png)
	Command string    // the command line, for the report
	Log     io.Writer // progress
}

// Defaults fills unset fields.
func (c Config) Defaults() Config {
	if len(c.Ns) == 0 {
		c.Ns = []int{1000, 5000, 10000}
	}
	if len(c.Ms) == 0 {
		c.Ms = []int{2, 10}
	}
	if c.Repeats == 0 {
		c.Repeats = 3
	}
	if c.Probes == 0 {
		c.Probes = 20
	}
	if c.ProbeGap == 0 {
		c.ProbeGap = 1500 * time.Millisecond
	}
	if c.PartialReps == 0 {
		c.PartialReps = 5
	}
	if c.FirstPacketRounds == 0 {
		c.FirstPacketRounds = 1000
	}
	if c.FirstPacketWarmup == 0 {
		c.FirstPacketWarmup = 100
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.SyncTimeoutBase == 0 {
		c.SyncTimeoutBase = 2 * time.Minute
	}
	if c.SyncTimeoutPerService == 0 {
		// Generous (10k Services: 32 min) so a slow proxy still gets a
		// figure; one that exceeds it is reported as "> limit".
		c.SyncTimeoutPerService = 180 * time.Millisecond
	}
	return c
}

// Settings describes the run's parameters for the report.
func (c Config) Settings() string {
	return fmt.Sprintf("Every proxy measured %d times per workload, the order of the proxies reversed on every other repeat. "+
		"Per proxy, workload and repeat: %d partial syncs (median), %d network-programming probes, "+
		"%d first-packet connect pairs (after %d warm-up), %v idle before each probe. "+
		"Proxies run with default sync periods (--iptables-min-sync-period=1s) in a fresh node namespace, started once the kernel has freed the previous one (system CPU time under 10%% of a CPU for 1.5 s, at most 3 min); "+
		"probes come from a pod-like client (inside --cluster-cidr, so no masquerade) on the same node.",
		c.Repeats, c.PartialReps, c.Probes, c.FirstPacketRounds, c.FirstPacketWarmup, c.ProbeGap)
}

func (c Config) syncTimeout(n int) time.Duration {
	return c.SyncTimeoutBase + time.Duration(n)*c.SyncTimeoutPerService
}
