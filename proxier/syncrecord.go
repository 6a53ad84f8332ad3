package proxier

import (
	"time"

	"k8s.io/klog/v2"
)

// SyncRecord is everything one sync of one family produced. The loop
// fills it in; Metrics.RecordSync and the summary log line read it.
type SyncRecord struct {
	Family Family
	Mode   string
	// Result is the backend's; Result.Full is the kind of sync that ran
	// (asked for by the loop or escalated by the backend).
	Result SyncResult
	// Err is the backend's error; nil when the rules are programmed.
	Err     error
	Timings SyncTimings
	// Services is the snapshot's size; ChangedServices the Services whose
	// desired state changed since the previous checkout; EndpointChanges
	// the EndpointSlice changes that checkout took.
	Services, ChangedServices, EndpointChanges int
	// Triggers are the last-change-trigger-times of the EndpointSlice
	// changes this sync programs.
	Triggers []time.Time
	// StaleFlows is the conntrack cleanup after a successful sync; nil
	// when none ran.
	StaleFlows *StaleFlowCleanup
}

// SyncTimings are one family's sync as the loop's clock saw it.
type SyncTimings struct {
	// Checkout is how long building the snapshots took. With two
	// families each one's sync includes it, as each of kube-proxy's
	// per-family proxiers updates its own change trackers.
	Checkout time.Duration
	// Start: the backend's Sync was called. Programmed: it returned, with
	// the rules in the kernel if it succeeded. Done: stale conntrack flows
	// are deleted and the AfterSync hooks have run.
	Start, Programmed, Done time.Time
}

// Total is the whole sync, the span of kube-proxy's syncProxyRules that
// its sync duration metrics time: from the change trackers' update (our
// checkout) through the conntrack cleanup.
func (t SyncTimings) Total() time.Duration { return t.Checkout + t.Done.Sub(t.Start) }

// StaleFlowCleanup is what one conntrack cleanup did.
type StaleFlowCleanup struct {
	Took    time.Duration
	Deleted int
}

// outcome is the summary line's "result": ok, restore failed or failed.
func (r *SyncRecord) outcome() string {
	switch {
	case r.Err == nil:
		return "ok"
	case r.Result.RestoreFailed:
		return "restore failed"
	default:
		return "failed"
	}
}

// logSummary writes the one line per sync and family at the default
// level. A success reads "SyncProxyRules complete", the message (and the
// elapsed key) kube-proxy logs per sync at -v=2, which its users grep for;
// checkout, program and cleanup split elapsed into its phases, and
// kernelWrite is the part of program spent in iptables-restore or nft.
func (r *SyncRecord) logSummary() {
	kv := r.summary()
	if r.Err != nil {
		klog.ErrorS(r.Err, "Sync failed, keeping the previous rules and retrying with a full sync", kv...)
		return
	}
	klog.InfoS("SyncProxyRules complete", kv...)
}

// kind is "full" or "partial".
func (r *SyncRecord) kind() string {
	if r.Result.Full {
		return "full"
	}
	return "partial"
}

// summary is the summary line's keys and values.
func (r *SyncRecord) summary() []any {
	written := 0
	for _, n := range r.Result.Written {
		written += n
	}
	t := r.Timings
	kv := []any{"ipFamily", r.Family, "mode", r.Mode, "sync", r.kind(), "elapsed", t.Total(),
		"checkout", t.Checkout, "program", t.Programmed.Sub(t.Start), "cleanup", t.Done.Sub(t.Programmed)}
	if r.Result.KernelWrite > 0 { // the modes that time it, when they wrote
		kv = append(kv, "kernelWrite", r.Result.KernelWrite)
	}
	return append(kv, "services", r.Services, "changedServices", r.ChangedServices, "endpointChanges", r.EndpointChanges,
		"written", written, "result", r.outcome())
}
