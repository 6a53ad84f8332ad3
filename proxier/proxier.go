package proxier

import (
	"context"
	"time"
)

// Proxier programs one IP family's datapath. The iptables, ipvs and
// userspace modes implement it.
type Proxier interface {
	// Sync makes the datapath match req.Snapshot. On a partial sync
	// (req.Full false) only the Services in req.Changed may differ from
	// the previous successful Sync. A failed Sync must leave the previous
	// datapath in place; the loop then retries with Full set.
	Sync(ctx context.Context, req SyncRequest) (SyncResult, error)
	// Cleanup removes everything this mode created for this family. It is
	// idempotent and succeeds when there is nothing to remove.
	Cleanup(ctx context.Context) error
}

// SyncRequest is one sync's input.
type SyncRequest struct {
	Snapshot *Snapshot
	Changed  NameSet
	Full     bool
}

// SyncResult is what a backend reports about one sync, failed or not; the
// loop records it (Metrics.RecordSync). Backends record no metric
// themselves.
type SyncResult struct {
	// Full is true when the backend rewrote everything (it may escalate a
	// partial sync, e.g. after its canary disappeared).
	Full bool
	// Rules counts the rules (or kernel objects) kproxy owns after the
	// sync, by table ("nat", "filter", "ipvs", ...). The mode-neutral
	// metrics leave them out: the modes that write iptables rules export
	// them under kube-proxy's iptables-named metrics (their ModeMetrics).
	Rules map[string]int
	// Written counts the rules sent to the kernel in this sync, by table.
	Written map[string]int
	// NoLocalEndpoints counts Local-policy service ports with no local
	// endpoint, by "internal" and "external".
	NoLocalEndpoints map[string]int
	// RestoreFailed is true when the kernel rejected the sync's rules
	// (iptables-restore failed): kube-proxy counts these apart from other
	// failures.
	RestoreFailed bool
	// KernelWrite is how long the program that loaded the sync's rules
	// ran (iptables-restore, nft -f), exec to exit: the part of the sync
	// spent in the kernel and its tools rather than in kproxy. Zero when
	// nothing was written or the mode does not time it. Only the sync's
	// main write counts (not, in nftables mode, the separate deletion of
	// chains flushed a sync earlier).
	KernelWrite time.Duration
	// Redirects are the service ports the backend redirects to listeners
	// of its own (userspace mode); nil for the modes that translate to
	// the endpoints in the kernel. The conntrack cleanup keeps the flows
	// answered by these listeners.
	Redirects Redirects
}

// Canary is implemented by backends that can tell when someone removed
// their rules behind their back; the loop checks it at every periodic sync
// and forces a full resync when it reports true.
type Canary interface {
	Flushed(ctx context.Context) (bool, error)
}

// ModeMetricsOwner is implemented by backends that own metrics named
// after their kernel interface; the loop records every sync of theirs
// there too.
type ModeMetricsOwner interface {
	ModeMetrics() ModeMetrics
}

// Background is implemented by backends with work of their own between
// syncs (the userspace mode's idle and drain sweeper). Constructors start
// nothing: the loop calls Run in a goroutine of its own when it starts,
// and Run returns when ctx is done.
type Background interface {
	Run(ctx context.Context)
}
