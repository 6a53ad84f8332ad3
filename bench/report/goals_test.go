package report

import (
	"math"
	"strings"
	"testing"
)

// Every goal names a metric the tables have: a renamed label must not
// silently turn a goal into "not measured".
func TestGoalsNameTableMetrics(t *testing.T) {
	for _, g := range Goals {
		if _, ok := metricByLabel(g.Stat); !ok {
			t.Errorf("goal %q (%s): no metric labelled %q…", g.Text, g.Proxy, g.Stat)
		}
	}
	for _, label := range headlineStats {
		if _, ok := metricByLabel(label); !ok {
			t.Errorf("headline: no metric labelled %q…", label)
		}
	}
}

func nftRuns() []*Results {
	up := NewRow("upstream-nftables", KindUpstream, "nftables", 10000, 2)
	up.FirstSyncMetric, up.PartialMetric, up.RSSMB, up.ProgP50 = 10, 0.2, 200, 1.5
	kp := NewRow("kproxy-nftables", KindKproxy, "nftables", 10000, 2)
	kp.FirstSyncMetric, kp.PartialMetric, kp.RSSMB, kp.ProgP50 = 1, 0.05, 80, 1.05
	kp2 := kp
	kp2.Repeat, kp2.RSSMB = 1, 120
	fl := NewRow("nft-floor", KindFloor, FloorNft, 10000, 2)
	fl.FirstSyncMetric, fl.PartialMetric = 0.8, 0.01
	return []*Results{{Rows: []Row{up, kp, kp2, fl}}}
}

func findGoal(t *testing.T, fs []GoalFinding, proxy, text string) GoalFinding {
	t.Helper()
	for _, f := range fs {
		if f.Goal.Proxy == proxy && f.Goal.Text == text {
			return f
		}
	}
	t.Fatalf("no finding for %s %q in %+v", proxy, text, fs)
	return GoalFinding{}
}

func TestCheckGoals(t *testing.T) {
	fs := CheckGoals(Goals, nftRuns())
	for _, c := range []struct{ text, measured, met string }{
		{"first full sync ≤ 1.5× the floor", "1.25× (1.000 / 0.800)", "yes"},
		{"one changed Service ≤ 0.1× upstream's partial sync", "0.25× (0.050 / 0.200)", "no"},
		{"one changed Service within 2× of a bare nft -f of a one-Service delta", "5× (0.050 / 0.010)", "no"},
		{"RSS ≤ 0.5× upstream", "0.5× (100.0 / 200.0)", "yes"}, // median of 80 and 120
		{"network programming p50 ≤ min-sync-period + 100 ms", "1.050", "yes"},
		{"cold start to first sync done ≤ 0.1× upstream", "–", "not measured"},
	} {
		f := findGoal(t, fs, "kproxy-nftables", c.text)
		if f.Measured != c.measured || f.Met != c.met {
			t.Errorf("%s: got %q %q, want %q %q", c.text, f.Measured, f.Met, c.measured, c.met)
		}
	}
	// 5k × 50 was not run: its goal says so.
	if f := findGoal(t, fs, "kproxy-nftables", "first full sync ≤ 0.05× upstream"); f.Workload != (Workload{5000, 50}) || f.Met != "not measured" {
		t.Errorf("goal on a workload not run: %+v", f)
	}
}

// Upstream over its time limit bounds the ratio from above.
func TestCheckGoalsUpstreamOverLimit(t *testing.T) {
	up := NewRow("upstream-nftables", KindUpstream, "nftables", 5000, 50)
	up.FirstSyncOver = 600
	kp := NewRow("kproxy-nftables", KindKproxy, "nftables", 5000, 50)
	kp.FirstSyncWall = 3
	g := Goal{"cold start", "kproxy-nftables", "upstream-nftables", "first sync, fresh node", 0.05, nil}
	f := CheckGoals([]Goal{g}, []*Results{{Rows: []Row{up, kp}}})[0]
	if f.Measured != "< 0.005× (3.000 / > 600)" || f.Met != "yes" {
		t.Errorf("got %q %q", f.Measured, f.Met)
	}
}

func TestHeadline(t *testing.T) {
	runs := nftRuns()
	w, ok := HeadlineWorkload(runs)
	if !ok || w != (Workload{10000, 2}) {
		t.Fatalf("HeadlineWorkload = %v %v", w, ok)
	}
	tab := Headline(runs, w)
	tableHas(t, tab,
		"| metric | upstream iptables | kproxy iptables | ratio | upstream nftables | kproxy nftables | ratio |",
		"| first sync: full sync duration, metric (s) | – | – | – | 10.000 | 1.000 | **0.10×** |",
		"| RSS at steady state (MB) | – | – | – | 200.0 | 100.0 (80.0–120.0) | **0.50×** |")
	if strings.Contains(tab, "⁴") {
		t.Errorf("footnote marks left in the headline:\n%s", tab)
	}
}

func TestRatioVerdictOverLimits(t *testing.T) {
	inf := F(math.Inf(1))
	over := func(limit float64) Stat { return Stat{Median: inf, Over: limit, Samples: 1} }
	val := func(v float64) Stat { return Stat{Median: F(v), Samples: 1} }
	for _, c := range []struct {
		a, b Stat
		want string
	}{
		{val(3), over(600), "yes"},                                    // ratio < 0.005
		{val(60), over(600), "unknown (divisor over its time limit)"}, // ratio < 0.1, goal 0.05
		{over(600), val(10), "no"},                                    // ratio > 60
		{over(0.1), val(10), "unknown (over its time limit)"},         // ratio > 0.01 only
		{over(600), over(600), "unknown (both over their time limits)"},
		{val(1), val(10), "no"},
		{val(0.4), val(10), "yes"},
	} {
		if got := ratioVerdict(c.a, c.b, 0.05); got != c.want {
			t.Errorf("ratioVerdict(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
	if got := boundVerdict(inf, 1.1); got != "no" {
		t.Errorf("a figure over its limit against a bound: %q, want no", got)
	}
}

// A later run that measured only kproxy does not pair with an earlier
// run's upstream: the ratio is the earlier run's pair, and the later
// figure stands alone only where no run measured both.
func TestHeadlineDoesNotMixRuns(t *testing.T) {
	later := NewRow("kproxy-nftables", KindKproxy, "nftables", 10000, 2)
	later.FirstSyncMetric, later.CPU = 5, 30
	runs := append(nftRuns(), &Results{Rows: []Row{later}})
	tab := Headline(runs, Workload{10000, 2})
	tableHas(t, tab, "| first sync: full sync duration, metric (s) | – | – | – | 10.000 | 1.000 | **0.10×** |")
	if !strings.Contains(tab, "| – | 30.00 | – |") {
		t.Errorf("kproxy's figure measured only in the later run is missing:\n%s", tab)
	}
}

func TestRunLineTrailingSlash(t *testing.T) {
	r := &Results{}
	r.Machine.Source.Commit = "0123456789abcdef"
	if got := RunLine(r, "bench/results/run-a/"); !strings.HasPrefix(got, "[run-a](bench/results/run-a/") {
		t.Errorf("RunLine = %q", got)
	}
}
