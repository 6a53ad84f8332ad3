package report

import (
	"fmt"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart is one PNG: a value against N, a line per proxy and M.
type chart struct {
	file, title, ylabel string
	get                 func(Row) F
	floor               bool // include the floor row
}

var charts = []chart{
	{"programming-latency.png", "Network programming latency p50 (create → connection answered)", "seconds", func(r Row) F { return r.ProgP50 }, false},
	{"full-sync.png", "Full sync duration, fresh node (metric; floor: iptables-restore)", "seconds", func(r Row) F { return r.FirstSyncMetric }, true},
	{"partial-sync.png", "Partial sync duration, one Service changed (metric)", "seconds", func(r Row) F { return r.PartialMetric }, true},
	{"first-packet.png", "First-packet latency via ClusterIP p50 (TCP connect)", "microseconds", func(r Row) F { return r.FirstPacketP50 }, false},
	{"memory.png", "Proxy RSS at steady state", "MB", func(r Row) F { return r.RSSMB }, false},
}

// PlotFiles lists the PNG files Plot writes (if they have data).
func PlotFiles() []string {
	var fs []string
	for _, c := range charts {
		fs = append(fs, c.file)
	}
	return fs
}

// Plot writes the PNG charts into dir. A chart without data is skipped.
func (r *Results) Plot(dir string) error {
	for _, c := range charts {
		series := r.series(c)
		if len(series) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = c.title
		p.X.Label.Text = "N (Services)"
		p.Y.Label.Text = c.ylabel
		p.X.Min, p.Y.Min = 0, 0
		p.Legend.Top = true
		p.Legend.Left = true
		keys := make([]string, 0, len(series))
		for k := range series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var args []any
		for _, k := range keys {
			pts := series[k]
			sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
			args = append(args, k, pts)
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return fmt.Errorf("plot %s: %w", c.file, err)
		}
		if err := p.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, c.file)); err != nil {
			return fmt.Errorf("plot %s: %w", c.file, err)
		}
	}
	return nil
}

// series returns the chart's lines: per proxy and M, the median over the
// repeats against N.
func (r *Results) series(c chart) map[string]plotter.XYs {
	series := map[string]plotter.XYs{}
	m := metric{get: c.get}
	for _, w := range r.Workloads() {
		for _, g := range r.GroupsOf(w) {
			v := g.Stat(m).Median
			if !v.Valid() || (g.Kind == KindFloor && !c.floor) {
				continue
			}
			key := fmt.Sprintf("%s M=%d", g.Proxy, w.M)
			series[key] = append(series[key], plotter.XY{X: float64(w.N), Y: float64(v)})
		}
	}
	return series
}
