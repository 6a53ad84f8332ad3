package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Stat is one figure of one proxy over its repeats on one workload.
type Stat struct {
	Median, Min, Max F
	// Over is the smallest time limit a sample did not finish within (0:
	// none). A sample over its limit counts as +Inf, so Median or Max may
	// be +Inf: the figure is then "> Over".
	Over    float64
	Samples int // samples with a value or over a limit
}

// Summarize returns the median and the min–max of values; overs[i] > 0
// marks sample i as not finished within that limit (overs may be nil).
// Samples with neither a value nor a limit are left out.
func Summarize(values []F, overs []float64) Stat {
	var xs []float64
	st := Stat{Median: NaN, Min: NaN, Max: NaN}
	for i, v := range values {
		switch {
		case v.Valid():
			xs = append(xs, float64(v))
		case i < len(overs) && overs[i] > 0:
			xs = append(xs, math.Inf(1))
			if st.Over == 0 || overs[i] < st.Over {
				st.Over = overs[i]
			}
		}
	}
	if len(xs) == 0 {
		return st
	}
	slices.Sort(xs)
	n := len(xs)
	st.Samples = n
	st.Min, st.Max = F(xs[0]), F(xs[n-1])
	// The mean of the two middle samples for an even count; with one of
	// them over the limit, the median is over it too.
	st.Median = F((xs[(n-1)/2] + xs[n/2]) / 2)
	return st
}

// over reports whether f stands for a sample over its limit.
func over(f F) bool { return math.IsInf(float64(f), 1) }

// value renders f, or "> limit" for a sample over it.
func (s Stat) value(f F, prec int) string {
	if over(f) {
		return fmt.Sprintf("> %.0f", s.Over)
	}
	return f.format(prec)
}

// Cell renders the median and, when the repeats differ, their range:
// "1.234 (1.100–1.300)".
func (s Stat) Cell(prec int) string {
	if s.Samples == 0 {
		return "–"
	}
	med := s.value(s.Median, prec)
	lo, hi := s.value(s.Min, prec), s.value(s.Max, prec)
	if s.Samples == 1 || lo == hi {
		return med
	}
	return fmt.Sprintf("%s (%s–%s)", med, lo, hi)
}

// Ratio renders a's median over b's with two decimals. A median over its
// limit makes the ratio a bound: "< x×" when b is over (b is larger than
// its limit), "> x×" when a is.
func Ratio(a, b Stat) string { return RatioIn("%.2f×", a, b) }

// RatioIn is Ratio with the number in format.
func RatioIn(format string, a, b Stat) string {
	switch {
	case over(a.Median) && over(b.Median):
		return "–"
	case over(b.Median):
		return "< " + ratio(format, a.Median, F(b.Over))
	case over(a.Median):
		return "> " + ratio(format, F(a.Over), b.Median)
	}
	return ratio(format, a.Median, b.Median)
}

// Group is one proxy's rows (one per repeat) on one workload.
type Group struct {
	Proxy string
	Kind  Kind
	Mode  string
	Rows  []Row
}

// Stat summarises one metric over the group's rows.
func (g Group) Stat(m metric) Stat {
	values := make([]F, len(g.Rows))
	overs := make([]float64, len(g.Rows))
	for i, r := range g.Rows {
		values[i], overs[i] = m.get(r), m.over(r)
	}
	return Summarize(values, overs)
}

// OK reports whether any repeat ran to the end.
func (g Group) OK() bool {
	return slices.ContainsFunc(g.Rows, func(r Row) bool { return r.Status == "ok" })
}

// Status is "ok" when every repeat was, else how many were and the first
// other status with its error.
func (g Group) Status() string {
	ok := 0
	other := ""
	for _, r := range g.Rows {
		switch {
		case r.Status == "ok":
			ok++
		case other == "":
			other = r.Status
			if r.Error != "" {
				other += ": " + oneLine(r.Error, 120)
			}
		}
	}
	if other == "" {
		return "ok"
	}
	if len(g.Rows) == 1 {
		return other
	}
	return strings.TrimSpace(fmt.Sprintf("ok %d/%d; %s", ok, len(g.Rows), other))
}

// kindOrder puts upstream first, then kproxy, then the floors.
var kindOrder = map[Kind]int{KindUpstream: 0, KindKproxy: 1, KindFloor: 2}

// GroupsOf returns one group per proxy measured on w: upstream first, then
// kproxy modes, then the floors, each in the order of its first row.
func (r *Results) GroupsOf(w Workload) []Group {
	var gs []Group
	index := map[string]int{}
	for _, row := range r.Rows {
		if row.N != w.N || row.M != w.M {
			continue
		}
		i, ok := index[row.Proxy]
		if !ok {
			i, index[row.Proxy] = len(gs), len(gs)
			gs = append(gs, Group{Proxy: row.Proxy, Kind: row.Kind, Mode: row.Mode})
		}
		gs[i].Rows = append(gs[i].Rows, row)
	}
	slices.SortStableFunc(gs, func(a, b Group) int { return kindOrder[a.Kind] - kindOrder[b.Kind] })
	return gs
}
