// Package proxier is the mode-independent core of kproxy.
//
// Data flows one way:
//
//	informers → Tracker (strip, drop no-ops) → Snapshot (pure data, per IP
//	family) → Proxier.Sync (render pure, apply to the kernel) → SyncResult
//	(metrics, healthz, conntrack cleanup)
//
// Service semantics are decided here once, for every backend: which
// Services are ignored (ExternalName, headless, another proxy's), how a
// malformed object is reduced to its valid parts, and which endpoints a
// node may use for Cluster and Local traffic (CategorizeEndpoints:
// ready endpoints, else serving+terminating ones, narrowed by topology
// hints).
//
// A backend implements Proxier for one IP family. Loop drives one
// Proxier per family from a single Runner that enforces the minimum and
// maximum sync intervals, coalesces bursts and retries failures with
// backoff; any failure makes the next sync a full one.
package proxier
