package harness

import (
	"errors"
	"fmt"

	"github.com/kproxy/kproxy/bench/report"
)

// errDirty refuses a run whose figures could not be traced to a commit.
var errDirty = errors.New("the kproxy tree has uncommitted changes: commit them, or pass -allow-dirty " +
	"(every table and machine.md is then marked uncommitted)")

// checkProvenance refuses to measure kproxy built from anything but a clean
// commit unless AllowDirty is set. A prebuilt binary cannot be traced to a
// commit, so it counts as uncommitted.
func (h *harness) checkProvenance() error {
	if h.cfg.KproxyBinary != "" {
		h.res.Machine.Source = report.Provenance{}
	}
	src := h.res.Machine.Source
	if !src.Uncommitted() {
		h.log.logf("kproxy from commit %s (clean tree)", src.Commit)
		return nil
	}
	if !h.cfg.AllowDirty {
		if h.cfg.KproxyBinary != "" {
			return fmt.Errorf("a prebuilt kproxy (-kproxy) cannot be traced to a commit: pass -allow-dirty to use it anyway")
		}
		return errDirty
	}
	h.log.logf("kproxy: %s; results are marked uncommitted", src)
	return nil
}
