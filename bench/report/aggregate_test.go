package report

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name     string
		values   []F
		overs    []float64
		med      F
		min, max F
		cell     string
	}{
		{"odd", []F{3, 1, 2}, nil, 2, 1, 3, "2.00 (1.00–3.00)"},
		{"even: mean of the middle two", []F{4, 1, 2, 3}, nil, 2.5, 1, 4, "2.50 (1.00–4.00)"},
		{"unmeasured samples left out", []F{NaN, 5, NaN}, nil, 5, 5, 5, "5.00"},
		{"all equal: no range", []F{7, 7}, nil, 7, 7, 7, "7.00"},
		{"one over the limit: only the max", []F{1, NaN, 2}, []float64{0, 60, 0}, 2, 1, F(math.Inf(1)), "2.00 (1.00–> 60)"},
		{"most over: the median too", []F{1, NaN, NaN}, []float64{0, 60, 90}, F(math.Inf(1)), 1, F(math.Inf(1)), "> 60 (1.00–> 60)"},
	} {
		st := Summarize(tc.values, tc.overs)
		if st.Median != tc.med || st.Min != tc.min || st.Max != tc.max {
			t.Errorf("%s: got median %v min %v max %v, want %v %v %v", tc.name, st.Median, st.Min, st.Max, tc.med, tc.min, tc.max)
		}
		if got := st.Cell(2); got != tc.cell {
			t.Errorf("%s: cell %q, want %q", tc.name, got, tc.cell)
		}
	}
	if st := Summarize([]F{NaN}, nil); st.Samples != 0 || st.Cell(1) != "–" {
		t.Errorf("nothing measured: %+v %q", st, st.Cell(1))
	}
}

// TestRatioFromMedians checks that a ratio divides medians (not means, not
// the samples of one repeat) and is a bound when a median is over a limit.
func TestRatioFromMedians(t *testing.T) {
	k := Summarize([]F{1, 2, 9}, nil)  // median 2, mean 4
	up := Summarize([]F{8, 4, 1}, nil) // median 4
	if got := Ratio(k, up); got != "0.50×" {
		t.Errorf("Ratio = %s, want 0.50×", got)
	}
	slow := Summarize([]F{NaN, NaN}, []float64{100, 100})
	if got := Ratio(k, slow); got != "< 0.02×" {
		t.Errorf("Ratio over a limit = %s, want < 0.02×", got)
	}
	if got := Ratio(slow, k); got != "> 50.00×" {
		t.Errorf("Ratio of a limit = %s, want > 50.00×", got)
	}
}

// TestTableRepeats checks the table of a run with repeats: medians with
// their range, ratios of medians, a status that counts failed repeats, and
// kproxy-nftables divided by upstream iptables, its peer and the nft floor.
func TestTableRepeats(t *testing.T) {
	var rows []Row
	add := func(proxy string, kind Kind, mode string, rep int, rss F) {
		r := NewRow(proxy, kind, mode, 1000, 2)
		r.Repeat, r.RSSMB = rep, rss
		rows = append(rows, r)
	}
	for rep, rss := range []F{100, 120, 110} {
		add("upstream-iptables", KindUpstream, "iptables", rep, rss)
		add("upstream-nftables", KindUpstream, "nftables", rep, rss*2)
		add("kproxy-nftables", KindKproxy, "nftables", rep, rss/2)
	}
	rows[len(rows)-1].Status, rows[len(rows)-1].Error = "failed", "no sync"
	fl := NewRow("nft-floor", KindFloor, FloorNft, 1000, 2)
	fl.RSSMB = 11
	ipt := NewRow("floor", KindFloor, FloorIptables, 1000, 2)
	ipt.RSSMB = 5
	r := &Results{Rows: append(rows, ipt, fl)}
	tab := r.Table(Workload{1000, 2})
	tableHas(t, tab,
		"| metric | upstream-iptables | upstream-nftables | kproxy-nftables | floor | nft-floor | kproxy-nftables / upstream-iptables | kproxy-nftables / upstream-nftables | kproxy-nftables / nft-floor |",
		"| status | ok | ok | ok 2/3; failed: no sync | ok | ok |  |  |  |",
		"| RSS at steady state (MB) ⁴ | 110.0 (100.0–120.0) | 220.0 (200.0–240.0) | 55.0 (50.0–60.0) | 5.0 | 11.0 | 0.50× | 0.25× | 5.00× |")
}
