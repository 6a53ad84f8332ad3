package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// restoreGate puts a wrapper in front of every IPv4 iptables-restore name
// kproxy may run, so that a test can SIGKILL kproxy at a known point of a
// sync. Once armed with a stop, the next restore halts there, marks
// "stopped" and waits (kproxy's process group, the wrapper included, is
// then killed); every other restore passes straight through.
type restoreGate struct {
	t    *testing.T
	dir  string // the gate's marker files
	path string // PATH=<the wrappers>:…
}

// Where an armed restore halts.
const (
	// beforeRestore: the restore was started, the kernel saw nothing yet.
	beforeRestore = "before"
	// duringRestore: the real restore runs and has read every line but the
	// last COMMIT, so the kernel's transaction is open.
	duringRestore = "during"
	// afterRestore: the real restore committed and exited; kproxy has not
	// seen it finish (conntrack cleanup and metrics still to come).
	afterRestore = "after"
)

// restoreWrapper is the wrapper for one real binary; $stop is the armed
// point, read from the "armed" file the first restore takes.
const restoreWrapper = `#!/bin/bash
g=%q real=%q
mv "$g/armed" "$g/taken" 2>/dev/null || exec "$real" "$@"
stop=$(cat "$g/taken")
halt() { touch "$g/stopped"; while :; do sleep 1; done; }
[[ $stop == before ]] && halt
input="$g/input.$$" fifo="$g/fifo.$$"
cat >"$input"
if [[ $stop == during ]]; then
  mkfifo "$fifo"
  "$real" "$@" <"$fifo" & exec 3>"$fifo"
  head -n -1 "$input" >&3
  halt
fi
"$real" "$@" <"$input"
halt
`

func newRestoreGate(t *testing.T) *restoreGate {
	g := &restoreGate{t: t, dir: t.TempDir()}
	g.path = restoreWrappers(t, func(real string) string { return fmt.Sprintf(restoreWrapper, g.dir, real) })
	return g
}

// env puts the wrappers first in kproxy's PATH.
func (g *restoreGate) env() []string { return []string{g.path} }

// arm makes the next restore halt at stop.
func (g *restoreGate) arm(stop string) {
	for _, m := range []string{"taken", "stopped"} {
		os.Remove(filepath.Join(g.dir, m))
	}
	if err := os.WriteFile(filepath.Join(g.dir, "armed"), []byte(stop), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// awaitStopped fails the test unless an armed restore halted within d.
func (g *restoreGate) awaitStopped(d time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(g.dir, "stopped")); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.t.Fatalf("restore gate: no restore halted within %v", d)
}
