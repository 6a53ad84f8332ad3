package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads GOGC's current value (by setting it to itself).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestFullSyncRelaxesGC: a round with a full sync runs at
// fullSyncGCPercent and restores kproxy's GOGC after; a GOGC from the
// environment is left alone.
func TestFullSyncRelaxesGC(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set {
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	defer debug.SetGCPercent(debug.SetGCPercent(defaultGCPercent))
	restore := relaxGCForFullSync()
	if got := gcPercent(); got != fullSyncGCPercent {
		t.Errorf("GOGC during a full sync = %d, want %d", got, fullSyncGCPercent)
	}
	restore()
	if got := gcPercent(); got != defaultGCPercent {
		t.Errorf("GOGC after the full sync = %d, want %d", got, defaultGCPercent)
	}

	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	restore = relaxGCForFullSync()
	if got := gcPercent(); got != 50 {
		t.Errorf("GOGC=50 from the environment became %d during a full sync", got)
	}
	restore()
	if got := gcPercent(); got != 50 {
		t.Errorf("GOGC=50 from the environment became %d after it", got)
	}
}
