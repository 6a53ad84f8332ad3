package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/bench/harness"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// TestSmoke runs the whole harness at N=100, M=2 with every proxy, so the
// harness cannot rot. It checks that every row is there, that the
// measurements exist and are positive, and that the probes were answered
// through each proxy's rules. It asserts no timings.
func TestSmoke(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.RequireUpstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := t.TempDir()
	cfg := harness.Config{
		Ns: []int{100}, Ms: []int{2},
		Repeats: 1, Probes: 5, PartialReps: 2, FirstPacketRounds: 200, FirstPacketWarmup: 20,
		Out: out, Command: "go test ./bench/ -run TestSmoke", Log: testWriter{t},
		// The smoke test guards the harness, not figures: it runs on
		// work in progress too.
		AllowDirty: true,
	}
	res, err := harness.Run(ctx, t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]report.Row{}
	for _, r := range res.Rows {
		rows[r.Proxy] = r
	}
	want := []string{"upstream-iptables", "upstream-nftables", "floor", "nft-floor"}
	for _, mode := range harness.KproxyModes {
		want = append(want, "kproxy-"+mode)
	}
	for _, name := range want {
		r, ok := rows[name]
		if !ok {
			t.Errorf("no row for %s", name)
			continue
		}
		switch {
		case name == "kproxy-ipvs" && r.Status == "unavailable":
			continue // needs a VM (see README)
		case r.Status != "ok":
			t.Errorf("%s: status %s: %s", name, r.Status, r.Error)
			continue
		}
		checkRow(t, r, cfg)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if !strings.Contains(string(md), name) {
			t.Errorf("results.md does not mention %s", name)
		}
	}
	for _, f := range []string{"results.json", "machine.md", "programming-latency.png", "memory.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	if t.Failed() {
		t.Logf("results.md:\n%s", md)
	}
}

func checkRow(t *testing.T, r report.Row, cfg harness.Config) {
	t.Helper()
	positive := map[string]report.F{
		"first sync wall": r.FirstSyncWall, "first sync metric": r.FirstSyncMetric,
		"restart sync wall": r.RestartSyncWall, "restart sync metric": r.RestartSyncMetric,
		"partial sync wall": r.PartialWall, "RSS": r.RSSMB, "CPU": r.CPU,
	}
	if r.Mode == report.FloorNft {
		// A fresh load and a one-Service delta: nftables proxies have no
		// restore to compare a restart with.
		for _, what := range []string{"restart sync wall", "restart sync metric"} {
			delete(positive, what)
		}
	}
	if r.Kind == report.KindFloor {
		// A floor has no API update to time from: its partial figure is
		// the bare load of a one-Service delta.
		delete(positive, "partial sync wall")
		positive["partial sync (one-Service delta)"] = r.PartialMetric
	}
	if r.Mode == report.FloorIptables {
		positive["KUBE-SERVICES alone"] = r.KubeServicesWall
	}
	checkKernelWrite(t, r, positive)
	if r.Kind != report.KindFloor {
		positive["programming p50"] = r.ProgP50
		positive["programming p99"] = r.ProgP99
		positive["first packet p50"] = r.FirstPacketP50
		positive["direct p50"] = r.DirectP50
		// Every probe was answered by the echo server behind its ClusterIP
		// (so the proxy's rules routed it), and the ruleset names it.
		if r.ProgSamples != cfg.Probes {
			t.Errorf("%s: %d programming probes answered, want %d", r.Proxy, r.ProgSamples, cfg.Probes)
		}
		if r.FirstPacketN+r.FirstPacketFailed < cfg.FirstPacketRounds {
			t.Errorf("%s: %d first-packet samples, want %d", r.Proxy, r.FirstPacketN, cfg.FirstPacketRounds)
		}
	}
	for what, v := range positive {
		if !v.Valid() || v <= 0 {
			t.Errorf("%s: %s = %v, want a positive measurement", r.Proxy, what, float64(v))
		}
	}
	if r.Rules <= 0 {
		t.Errorf("%s: %d rules", r.Proxy, r.Rules)
	}
	if r.Kind != report.KindFloor && r.Rules > 0 && r.N != 100 {
		t.Errorf("%s: row for N=%d, want 100", r.Proxy, r.N)
	}
}

// checkKernelWrite adds to positive the parts of kproxy's syncs spent in
// iptables-restore / nft, and checks each is a part of its sync. (A
// restart of kproxy's iptables mode over its own rules may write nothing.)
func checkKernelWrite(t *testing.T, r report.Row, positive map[string]report.F) {
	t.Helper()
	parts := map[string][2]report.F{
		"first sync":   {r.FirstSyncKernelWrite, r.FirstSyncMetric},
		"partial sync": {r.PartialKernelWrite, r.PartialMetric},
	}
	switch r.Proxy {
	case "kproxy-nftables":
		parts["restart sync"] = [2]report.F{r.RestartKernelWrite, r.RestartSyncMetric}
	case "kproxy-iptables":
	default:
		return
	}
	for what, p := range parts {
		positive[what+" kernel write"] = p[0]
		if p[0] > p[1] {
			t.Errorf("%s: %s kernel write %v above the sync's %v", r.Proxy, what, float64(p[0]), float64(p[1]))
		}
	}
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
