package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResults() *Results {
	up := NewRow("upstream-iptables", KindUpstream, "iptables", 1000, 2)
	up.FirstSyncMetric, up.ProgP50, up.RSSMB, up.Rules = 2, 1.2, 60, 8000
	kp := NewRow("kproxy-iptables", KindKproxy, "iptables", 1000, 2)
	kp.FirstSyncMetric, kp.ProgP50, kp.RSSMB, kp.Rules = 1, 0.6, 30, 8000
	vm := NewRow("kproxy-ipvs", KindKproxy, "ipvs", 1000, 2)
	vm.Status, vm.Error = "unavailable", "needs a VM"
	fl := NewRow("floor", KindFloor, "iptables-restore", 1000, 2)
	fl.FirstSyncMetric, fl.Rules = 0.5, 8000
	kp5 := kp
	kp5.N, kp5.ProgP50, kp5.RSSMB = 5000, 2.5, 90
	return &Results{Started: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Command: "go run ./bench",
		Machine: Machine{CPUs: 2, MemoryGB: 23, Source: Provenance{Commit: "abc123", Clean: true}}, Rows: []Row{fl, kp, vm, up, kp5}}
}

func TestTable(t *testing.T) {
	r := sampleResults()
	if got := r.Workloads(); len(got) != 2 || got[0] != (Workload{1000, 2}) || got[1] != (Workload{5000, 2}) {
		t.Fatalf("Workloads = %v", got)
	}
	tab := r.Table(Workload{1000, 2})
	lines := strings.Split(tab, "\n")
	// Columns: upstream first, then kproxy modes, then the floor; ratio
	// columns only for kproxy rows that ran.
	head := "| metric | upstream-iptables | kproxy-iptables | kproxy-ipvs | floor | kproxy-iptables / upstream-iptables | kproxy-iptables / floor |"
	if lines[2] != head {
		t.Errorf("header\n%s\nwant\n%s", lines[2], head)
	}
	tableHas(t, tab,
		"| first sync: full sync duration, metric (s) | 2.000 | 1.000 | – | 0.500 | 0.50× | 2.00× |",
		"| RSS at steady state (MB) ⁴ | 60.0 | 30.0 | – | – | 0.50× | – |",
		"| status | ok | ok | unavailable: needs a VM | ok |  |  |")
	if strings.Contains(tab, "partial sync") {
		t.Errorf("table has a row without any measurement:\n%s", tab)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := sampleResults()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "results.md", "machine.md", "programming-latency.png", "memory.png", "full-sync.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// No partial-sync or first-packet data: no such plots.
	if _, err := os.Stat(filepath.Join(dir, "first-packet.png")); err == nil {
		t.Error("first-packet.png written without data")
	}
	back, err := Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(r.Rows) || back.Rows[1].ProgP50 != 0.6 || back.Rows[1].PartialMetric.Valid() {
		t.Errorf("round trip: %+v", back.Rows[1])
	}
}

// TestOverLimit checks that a proxy whose first sync ran out of time keeps
// its row with "> limit", and kproxy's ratio to it is an upper bound.
func TestOverLimit(t *testing.T) {
	r := sampleResults()
	for i := range r.Rows {
		if r.Rows[i].Proxy == "upstream-iptables" {
			r.Rows[i].Status, r.Rows[i].FirstSyncWall, r.Rows[i].FirstSyncOver = "failed", NaN, 1920
		}
		if r.Rows[i].Proxy == "kproxy-iptables" && r.Rows[i].N == 1000 {
			r.Rows[i].FirstSyncWall = 96
		}
	}
	tab := r.Table(Workload{1000, 2})
	tableHas(t, tab, "| first sync, fresh node: exec → done, wall (s) ¹ | > 1920 | 96.000 | – | – | < 0.05× | – |")
}

// tableHas checks that tab has every line in lines.
func tableHas(t *testing.T, tab string, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(tab, want+"\n") {
			t.Errorf("table lacks\n%s\ngot\n%s", want, tab)
		}
	}
}
