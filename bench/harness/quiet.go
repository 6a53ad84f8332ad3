package harness

import (
	"context"
	"time"

	"github.com/kproxy/kproxy/bench/measure"
)

// maxQuietWait bounds the wait for the kernel to finish freeing a deleted
// namespace's rules before the next measurement.
const maxQuietWait = 3 * time.Minute

// waitKernelQuiet waits until the kernel has done the work a deleted
// namespace left (see measure.WaitKernelQuiet), so that it is not timed
// as part of the next proxy's or floor's figures; it logs a long wait.
func (h *harness) waitKernelQuiet(ctx context.Context) {
	waited, quiet, err := measure.WaitKernelQuiet(ctx, maxQuietWait)
	switch {
	case err != nil:
		h.log.logf("    cannot tell whether the kernel is quiet: %v", err)
	case !quiet:
		h.log.logf("    kernel still busy after %s; measuring anyway", waited.Round(time.Second))
	case waited > 5*time.Second:
		h.log.logf("    waited %s for the kernel to free the previous namespace", waited.Round(time.Second))
	}
}
