package measure

import (
	"context"
	"testing"
	"time"
)

func TestParseSystemTicks(t *testing.T) {
	got, err := parseSystemTicks("cpu  10 2 300 4000 5 60 70 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\n")
	if err != nil || got != 430 {
		t.Errorf("parseSystemTicks = %d, %v; want 430 (system+irq+softirq)", got, err)
	}
	if _, err := parseSystemTicks("intr 1 2 3\n"); err == nil {
		t.Error("a first line that is not the cpu total parsed")
	}
}

// On this machine the wait ends: either the kernel is quiet or max is
// reached; it never runs past max by more than an interval.
func TestWaitKernelQuietEnds(t *testing.T) {
	max := 3 * time.Second
	waited, _, err := WaitKernelQuiet(context.Background(), max)
	if err != nil {
		t.Fatal(err)
	}
	if waited > max+2*quietInterval {
		t.Errorf("waited %v, max %v", waited, max)
	}
	if waited < quietSpells*quietInterval {
		t.Errorf("waited %v: fewer than %d intervals", waited, quietSpells)
	}
}
