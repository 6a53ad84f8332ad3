package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kproxy/kproxy/bench/loadgen"
	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// run is one proxy on one workload.
type run struct {
	*harness
	spec   Spec
	n, m   int
	repeat int
	node   Node
	row    *report.Row
	scrape *measure.Scraper
	probes []string // ClusterIP:port of the probe Services created so far
}

// runProxy measures one proxy on the current workload. It returns the row
// (status "failed" with the error if a step failed; the steps before it keep
// their numbers) and the proxy's ruleset dump, if any.
func (h *harness) runProxy(ctx context.Context, spec Spec, n, m, repeat int) (report.Row, string) {
	row := report.NewRow(spec.Name, spec.Kind, spec.Mode, n, m)
	row.Repeat = repeat
	if spec.Unavailable != "" {
		row.Status, row.Error = "unavailable", spec.Unavailable
		return row, ""
	}
	r := &run{harness: h, spec: spec, n: n, m: m, repeat: repeat, node: spec.Node, row: &row}
	if r.node == nil {
		r.node = h.node
	}
	r.scrape = measure.NewScraper("http://"+MetricsAddr+"/metrics", r.node.Dial)
	dump, err := r.measure(ctx)
	// Probe objects go away after the proxy has stopped, so deleting them
	// costs it nothing.
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if derr := loadgen.DeleteRole(cctx, h.client, APINamespace, "probe", loadgen.Options{Workers: h.cfg.Workers}); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		row.Status, row.Error = "failed", err.Error()
	}
	row.LoadAvg = report.LoadAvg1()
	return row, dump
}

// measure runs the script: fresh node, start, first sync, ruleset, partial
// syncs, programming probes, first packet, process stats, restart.
func (r *run) measure(ctx context.Context) (string, error) {
	if r.echo != nil {
		r.echo.Close()
	}
	if err := r.node.Reset(r.s); err != nil {
		return "", err
	}
	r.waitKernelQuiet(ctx)
	var err error
	if r.echo, err = testrig.StartEchoServersIn(r.s, r.backend.Netns, r.backend.Name, r.backend.IP, []int{EchoPort}, testrig.TCP); err != nil {
		return "", err
	}
	p, first, err := r.start(ctx, "first sync")
	if over := (*overLimitError)(nil); errors.As(err, &over) {
		r.row.FirstSyncOver = over.limit.Seconds()
	}
	if err != nil {
		return "", err
	}
	defer p.Stop()
	r.row.FirstSyncWall, r.row.FirstSyncMetric = report.F(first.wall), report.F(first.metric)
	r.row.FirstSyncKernelWrite = report.F(first.kernelWrite)

	rules, dump, err := r.spec.Rules(r.node)
	if err != nil {
		return "", err
	}
	r.row.Rules, r.row.Chains, r.row.Bytes = rules.Rules, rules.Chains, rules.Bytes
	r.log.logf("    first sync after %.2fs (full sync %.3fs); %d rules, %d chains, %.1f MB", float64(r.row.FirstSyncWall), float64(r.row.FirstSyncMetric), rules.Rules, rules.Chains, float64(rules.Bytes)/1e6)

	if err := r.partial(ctx, p); err != nil {
		return dump, err
	}
	if err := r.programming(ctx, p); err != nil {
		return dump, err
	}
	if err := r.checkRules(); err != nil {
		return dump, err
	}
	if err := r.firstPacket(ctx, p); err != nil {
		return dump, err
	}
	st, err := p.Stats()
	if err != nil {
		return dump, err
	}
	r.row.RSSMB, r.row.HWMMB, r.row.CPU = report.F(float64(st.RSS)/1e6), report.F(float64(st.HWM)/1e6), report.F(st.TotalCPU())
	r.log.logf("    RSS %.1f MB (peak %.1f MB), CPU %.2fs", float64(r.row.RSSMB), float64(r.row.HWMMB), float64(r.row.CPU))
	if r.cfg.HeapProfiles {
		if err := r.saveHeapProfile(ctx); err != nil {
			return dump, err
		}
	}
	return dump, r.restart(ctx, p)
}

// firstSync is how a proxy's first sync went: exec to the end of the
// sync (wall), its duration by the proxy's metric, and the part of it in
// iptables-restore / nft by kproxy's metric (NaN for upstream).
type firstSync struct {
	wall, metric, kernelWrite float64
}

// start starts the proxy and waits for its first sync and for convergence.
func (r *run) start(ctx context.Context, what string) (Proc, firstSync, error) {
	t0 := time.Now()
	p, err := r.node.Start(r.s, r.spec.Args(r.cp.KubeProxyKubeconfig, r.node.Name()))
	if err != nil {
		return nil, firstSync{}, err
	}
	timeout := r.cfg.syncTimeout(r.n)
	s, err := r.waitMetrics(ctx, r.scrape, p, what, timeout, measure.Sample.Synced)
	if err != nil {
		p.Stop()
		return nil, firstSync{}, err
	}
	first := firstSync{wall: sinceUnix(s.LastSync, t0, s.At), metric: s.Full.MeanSince(measure.Hist{}),
		kernelWrite: s.FullKernelWrite.MeanSince(measure.Hist{})}
	if math.IsNaN(first.metric) {
		first.metric = s.Sync.MeanSince(measure.Hist{}) // a proxy that does not split full and partial
	}
	if _, err := r.waitMetrics(ctx, r.scrape, p, "convergence after "+what, timeout, measure.Sample.Converged); err != nil {
		p.Stop()
		// The sync itself finished: no "> limit" for it.
		return nil, firstSync{}, errors.New(err.Error())
	}
	return p, first, nil
}

// partial changes one load Service at a time and times the partial sync it
// causes: the metric (partial-sync histogram) and the wall time from the API
// update to the end of the sync.
func (r *run) partial(ctx context.Context, p Proc) error {
	if r.n == 0 {
		return nil
	}
	var metric, wall, kernelWrite []float64
	for i := 0; i < r.cfg.PartialReps; i++ {
		before, err := r.scrape.Scrape(ctx)
		if err != nil {
			return fmt.Errorf("partial sync: %w", err)
		}
		t0 := time.Now()
		if err := loadgen.TouchLoad(ctx, r.client, APINamespace, (i*7919)%r.n, r.m, t0); err != nil {
			return err
		}
		after, err := r.waitMetrics(ctx, r.scrape, p, "partial sync", r.cfg.syncTimeout(r.n), func(s measure.Sample) bool {
			return s.Sync.Count > before.Sync.Count && s.Converged()
		})
		if err != nil {
			return fmt.Errorf("partial sync %d: %w", i+1, err)
		}
		wall = append(wall, sinceUnix(after.LastSync, t0, after.At))
		if v := after.Partial.MeanSince(before.Partial); !math.IsNaN(v) {
			metric = append(metric, v)
		}
		if v := after.PartialKernelWrite.MeanSince(before.PartialKernelWrite); !math.IsNaN(v) {
			kernelWrite = append(kernelWrite, v)
		}
	}
	r.row.PartialMetric, r.row.PartialWall = report.F(measure.Median(metric)), report.F(measure.Median(wall))
	r.row.PartialKernelWrite = report.F(measure.Median(kernelWrite))
	r.log.logf("    partial sync %.3fs (API → done %.3fs), median of %d", float64(r.row.PartialMetric), float64(r.row.PartialWall), len(wall))
	return nil
}

// programming creates probe Services one at a time, each with the real echo
// server as its endpoint, and times creation → first answered connection
// through its ClusterIP.
func (r *run) programming(ctx context.Context, p Proc) error {
	var lat []float64
	first, err := r.scrape.Scrape(ctx)
	if err != nil {
		return fmt.Errorf("programming: %w", err)
	}
	timeout := r.cfg.syncTimeout(r.n)
	for i := 0; i < r.cfg.Probes; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.ProbeGap):
		}
		r.probeSeq++
		name := "probe-" + strconv.Itoa(r.probeSeq)
		t0 := time.Now()
		ip, err := loadgen.CreateProbe(ctx, r.client, APINamespace, name, r.backend.IP, EchoPort, t0)
		if err != nil {
			return err
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(loadgen.ServicePort))
		wctx, cancel := context.WithTimeout(ctx, timeout)
		at, _, err := measure.WaitAnswered(wctx, r.client_.Netns, addr, r.backend.Name, 50*time.Millisecond, 5*time.Millisecond)
		cancel()
		if err != nil {
			return fmt.Errorf("programming probe %d (%s): %w; proxy log tail:\n%s", i+1, name, err, p.Tail(10))
		}
		lat = append(lat, at.Sub(t0).Seconds())
		r.probes = append(r.probes, addr)
		if (i+1)%5 == 0 || i+1 == r.cfg.Probes {
			r.log.logf("    programming probe %d/%d: %.3fs", i+1, r.cfg.Probes, lat[len(lat)-1])
		}
	}
	last, err := r.waitMetrics(ctx, r.scrape, p, "convergence after the probes", timeout, measure.Sample.Converged)
	if err != nil {
		return err
	}
	r.row.ProgP50 = report.F(measure.Quantile(lat, 0.5))
	r.row.ProgP90 = report.F(measure.Quantile(lat, 0.9))
	r.row.ProgP99 = report.F(measure.Quantile(lat, 0.99))
	r.row.ProgSamples = len(lat)
	r.row.ProgMetricMean = report.F(last.Programming.MeanSince(first.Programming))
	r.log.logf("    network programming p50 %.3fs p90 %.3fs p99 %.3fs (proxy's metric: mean %.3fs)",
		float64(r.row.ProgP50), float64(r.row.ProgP90), float64(r.row.ProgP99), float64(r.row.ProgMetricMean))
	return nil
}

// checkRules checks that the kernel state names every probe ClusterIP, so a
// probe answered through the proxy's rules and not by accident.
func (r *run) checkRules() error {
	rules, dump, err := r.spec.Rules(r.node)
	if err != nil {
		return err
	}
	for _, addr := range r.probes {
		ip, _, _ := net.SplitHostPort(addr)
		if !strings.Contains(dump, ip) {
			return fmt.Errorf("probe %s answered, but the ruleset (%d rules) does not mention it", addr, rules.Rules)
		}
	}
	return nil
}

// firstPacket times TCP connects through the probe ClusterIPs (round robin,
// so over many rule positions) and straight to the backend pod.
func (r *run) firstPacket(ctx context.Context, p Proc) error {
	before, err := r.scrape.Scrape(ctx)
	if err != nil {
		return fmt.Errorf("first packet: %w", err)
	}
	direct := net.JoinHostPort(r.backend.IP, strconv.Itoa(EchoPort))
	via, dir, failed, err := measure.ConnectTimes(r.client_.Netns, r.probes, direct, r.cfg.FirstPacketRounds, r.cfg.FirstPacketWarmup, time.Second)
	if err != nil {
		return fmt.Errorf("first packet: %w", err)
	}
	r.row.FirstPacketFailed = failed
	// A rare connect timeout on a loaded machine is noise, not a broken
	// proxy; many are not.
	if failed*100 > 2*r.cfg.FirstPacketRounds {
		return fmt.Errorf("first packet: %d of %d connects failed", failed, 2*r.cfg.FirstPacketRounds)
	}
	after, err := r.scrape.Scrape(ctx)
	if err != nil {
		return fmt.Errorf("first packet: %w", err)
	}
	us := measure.Micros(via)
	ds := measure.Micros(dir)
	r.row.FirstPacketP50, r.row.FirstPacketP99 = report.F(measure.Quantile(us, 0.5)), report.F(measure.Quantile(us, 0.99))
	r.row.DirectP50, r.row.DirectP99 = report.F(measure.Quantile(ds, 0.5)), report.F(measure.Quantile(ds, 0.99))
	r.row.FirstPacketN = len(us)
	note := ""
	if failed > 0 {
		note = fmt.Sprintf(" (%d connects failed)", failed)
	}
	if after.Sync.Count != before.Sync.Count {
		note += fmt.Sprintf(" (the proxy synced %d times meanwhile)", after.Sync.Count-before.Sync.Count)
	}
	r.log.logf("    first packet via ClusterIP p50 %.0fµs p99 %.0fµs, direct p50 %.0fµs p99 %.0fµs%s",
		float64(r.row.FirstPacketP50), float64(r.row.FirstPacketP99), float64(r.row.DirectP50), float64(r.row.DirectP99), note)
	return nil
}

// restart stops the proxy (its rules stay) and starts it again: the first
// sync of the new process is a full sync over the existing rules.
func (r *run) restart(ctx context.Context, p Proc) error {
	if err := p.Stop(); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	p2, first, err := r.start(ctx, "first sync after restart")
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	defer p2.Stop()
	r.row.RestartSyncWall, r.row.RestartSyncMetric = report.F(first.wall), report.F(first.metric)
	r.row.RestartKernelWrite = report.F(first.kernelWrite)
	r.log.logf("    restart: first sync after %.2fs (full sync %.3fs)", first.wall, first.metric)
	return p2.Stop()
}
