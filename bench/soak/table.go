package main

import (
	"fmt"
	"strings"
	"time"
)

// markdown is the soak's table, pasted as is into RELIABILITY.md.
func (r *result) markdown(c config) string {
	var b strings.Builder
	bg := ""
	if c.background > 0 {
		bg = fmt.Sprintf(", %d background Services × %d endpoints", c.background, c.endpoints)
	}
	fmt.Fprintf(&b, "`%s`\n\n", c.command)
	fmt.Fprintf(&b, "| soak (%s mode, %v, %.0f changes/s asked%s) | value |\n|---|---|\n", c.mode, r.elapsed.Round(time.Second), c.rate, bg)
	secs := r.elapsed.Seconds()
	fmt.Fprintf(&b, "| API changes applied | %d (%.1f/s achieved; %d of them background slice moves); %d refused or timed out, %d ticks dropped with all %d writers busy |\n",
		r.changes.Load(), float64(r.changes.Load())/max(secs, 1), r.touches.Load(), r.apiErrors.Load(), r.dropped.Load(), c.workers)
	fmt.Fprintf(&b, "| probes to %d unchanged Services / failed | %d / **%d** |\n", c.stable, r.probes.Load(), r.stableFailures.Load())
	fmt.Fprintf(&b, "| probes to churned Services ≥ %v after their last change / failed | %d / **%d** |\n", settle, r.churnProbes.Load(), r.churnFailures.Load())
	if c.mode == "iptables" {
		fmt.Fprintf(&b, "| nat Service dispatch rules, %d samples: min (at) / max; Services that never go away | %d (%v) / %d; %d |\n",
			r.rules.n, r.rules.lo, r.rules.lowestAt.Round(time.Second), r.rules.hi, c.stable+c.background)
	}
	r.memoryRows(&b)
	r.outageRows(&b, c)
	v := r.verdicts(c)
	if len(v) == 0 {
		v = []string{"all checks pass"}
	}
	fmt.Fprintf(&b, "| verdict | %s |\n", strings.Join(v, "; "))
	for _, n := range r.notes {
		fmt.Fprintf(&b, "\nnote: %s", n)
	}
	return b.String()
}

func (r *result) memoryRows(b *strings.Builder) {
	if len(r.samples) == 0 {
		fmt.Fprintf(b, "| kproxy RSS / goroutines at the end | %.1f MiB / %d |\n", r.end.rss, r.end.goroutines)
		return
	}
	s := r.samples[0]
	var peak sample
	var rss []string
	for _, x := range r.samples {
		peak.rss, peak.goroutines = max(peak.rss, x.rss), max(peak.goroutines, x.goroutines)
		rss = append(rss, fmt.Sprintf("%.0f", x.rss))
	}
	fmt.Fprintf(b, "| kproxy RSS after warm-up (%v) / end / max of 30 s samples | %.1f / %.1f / %.1f MiB (end %.2f× start) |\n",
		s.at.Round(time.Second), s.rss, r.end.rss, peak.rss, r.end.rss/s.rss)
	fmt.Fprintf(b, "| go_goroutines after warm-up / end / max | %d / %d / %d |\n", s.goroutines, r.end.goroutines, peak.goroutines)
	fmt.Fprintf(b, "| RSS every 30 s from %v, MiB | %s |\n", s.at.Round(time.Second), strings.Join(rss, " "))
}

func (r *result) outageRows(b *strings.Builder, c config) {
	f := &r.outage
	if !f.ran {
		return
	}
	fmt.Fprintf(b, "| kube-apiserver (pid %d) SIGKILLed at %v for %v; answering /readyz again after | %.1f s |\n", f.pid, c.killAfter, c.down, f.backAfter.Seconds())
	fmt.Fprintf(b, "| probes to unchanged Services while it was down | %d (failures are in the row above) |\n", r.downProbes.Load())
	fmt.Fprintf(b, "| churn writes refused while it was down (not counted above) | %d |\n", r.downErrors.Load())
	conv := "not converged within 3 min"
	if f.convergedOK {
		conv = fmt.Sprintf("%.2f s", f.converged.Seconds())
	}
	fmt.Fprintf(b, "| after it answered: marker Service created / kproxy converged (the marker's ClusterIP answered: every change made before it is programmed) | %.2f s / **%s** |\n",
		f.created.Seconds(), conv)
	fmt.Fprintf(b, "| kproxy's pending-change gauges first read 0 (churn continuing), after it answered / from moments of steady churn before the kill | %s / %s |\n",
		pendingFigure(f.noPending), pendingFigures(f.steadyNoPending))
	fmt.Fprintf(b, "| kproxy RSS steady (just before the kill) / max while down / max from the restart to 60 s after convergence | %.1f / %.1f / %.1f MiB (max %.2f× steady) |\n",
		f.rssSteady, f.rssDown, f.rssAfter, f.rssRatio())
}

func pendingFigure(d time.Duration) string {
	if d == 0 {
		return "never within 3 min"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func pendingFigures(ds []time.Duration) string {
	if len(ds) == 0 {
		return "not measured"
	}
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2f", d.Seconds())
		if d < 0 {
			s[i] = fmt.Sprintf("> %.0f", steadyWaitLimit.Seconds())
		}
	}
	return strings.Join(s, ", ") + " s"
}
