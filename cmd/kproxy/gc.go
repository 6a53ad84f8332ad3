package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is kproxy's GOGC. Nearly all of its heap is long-lived
// (informer caches, the tracker's state, the rules rendered per Service),
// so Go's default of 100 — collect when the heap has doubled — mostly
// keeps garbage around: at 10,000 Services the process sat at about twice
// its live heap. 25 keeps it within a quarter of it; the extra collections
// cost little CPU because kproxy allocates in bursts (syncs) and is idle
// otherwise. GOGC and GOMEMLIMIT in the environment still take precedence.
const defaultGCPercent = 25

// releaseMemory returns the heap a full sync left behind to the kernel.
// A full sync's transient data (the whole ruleset rendered, the kernel's
// rules read back, the transaction) is several times a partial sync's;
// the runtime would keep those pages as headroom for a heap that does not
// come back until the next full sync, an hour later. It runs in the
// background: a forced collection must not delay the next sync.
func releaseMemory() {
	go debug.FreeOSMemory()
}

// fullSyncGCPercent is kproxy's GOGC during a round with a full sync,
// whose garbage is nearly all transient (every Service rendered, the
// transaction's text): collecting at every quarter of growth made a
// 10,000-Service first sync spend about a tenth of its time more in the
// collector. releaseMemory hands the extra heap back after the round.
const fullSyncGCPercent = 100

func tuneGC() {
	if !gogcFromEnv() {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// relaxGCForFullSync raises GOGC for a round with a full sync and returns
// what restores it (nothing when GOGC comes from the environment).
func relaxGCForFullSync() (restore func()) {
	if gogcFromEnv() {
		return func() {}
	}
	old := debug.SetGCPercent(fullSyncGCPercent)
	return func() { debug.SetGCPercent(old) }
}

func gogcFromEnv() bool {
	_, set := os.LookupEnv("GOGC")
	return set
}
