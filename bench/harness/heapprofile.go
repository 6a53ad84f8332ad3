package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// state, when RSS is read, after a forced collection so that it shows what
// is live rather than what the last collection saw mid-sync) and its
// runtime.MemStats (how much of RSS is heap, idle or released) into the
// results directory.
func (r *run) saveHeapProfile(ctx context.Context) error {
	profile, err := r.scrape.Fetch(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	text, err := r.scrape.Fetch(ctx, "/debug/pprof/heap?debug=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := os.MkdirAll(r.cfg.Out, 0o755); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	path := filepath.Join(r.cfg.Out, heapProfileFile(r.spec.Name, r.n, r.m, r.repeat))
	if err := os.WriteFile(path, profile, 0o644); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".pb.gz")+"-memstats.txt", memStats(text), 0o644); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	r.log.logf("    heap profile: %s", filepath.Base(path))
	return nil
}

// memStats is the runtime.MemStats part of a debug=1 heap profile.
func memStats(text []byte) []byte {
	if i := bytes.Index(text, []byte("# runtime.MemStats")); i >= 0 {
		return text[i:]
	}
	return nil
}
