package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// profilingFlag makes every proxy serve /debug/pprof/ on its metrics
// address (kube-proxy's --profiling; kproxy has the same flag). It is given
// to all proxies or none, so their flags stay identical.
const profilingFlag = "--profiling"

// withProfiling adds profilingFlag to every spec.
func withProfiling(specs []Spec) []Spec {
	out := make([]Spec, len(specs))
	for i, s := range specs {
		s.Extra = append(append([]string(nil), s.Extra...), profilingFlag)
		out[i] = s
	}
	return out
}

// heapProfileFile names the profile of one proxy, workload and repeat.
func heapProfileFile(proxy string, n, m, repeat int) string {
	return fmt.Sprintf("heap-%s-%dx%d-r%d.pb.gz", proxy, n, m, repeat)
}

// saveHeapProfile writes the proxy's live heap profile (taken at steady
// state, when RSS is read) into the results directory.
func (r *run) saveHeapProfile(ctx context.Context) error {
	b, err := r.scrape.Fetch(ctx, "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := os.MkdirAll(r.cfg.Out, 0o755); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	path := filepath.Join(r.cfg.Out, heapProfileFile(r.spec.Name, r.n, r.m, r.repeat))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	r.log.logf("    heap profile: %s", filepath.Base(path))
	return nil
}
