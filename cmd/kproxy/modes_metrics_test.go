package main

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/userspace"
)

// iptablesFamilyNames are kube-proxy's iptables-named metrics, which
// xtables.Metrics owns.
var iptablesFamilyNames = []string{
	"kubeproxy_sync_proxy_rules_iptables_total",
	"kubeproxy_sync_proxy_rules_iptables_last",
	"kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
	"kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
}

// modeUnderTest builds one mode's IPv4 proxier on a fake kernel, with the
// options the daemon would give it; breakRestore makes the kernel reject
// the next iptables-restore.
type modeUnderTest struct {
	mode  string
	build func(t *testing.T, s modeSettings) (p proxier.Proxier, breakRestore func())
	// snap: userspace opens a listener per service port, so it gets none.
	snap func() *proxier.Snapshot
	// brokenFull: the sync that meets the broken restore is full (ipvs and
	// userspace restore rules on every full sync, iptables on this
	// partial one too).
	brokenFull bool
	want       []string // of iptablesFamilyNames, those /metrics shows
}

func modesUnderTest() []modeUnderTest {
	scenario := func() *proxier.Snapshot { return flowtest.Scenarios()[0].Snapshot() }
	empty := func() *proxier.Snapshot { return &proxier.Snapshot{Family: proxier.IPv4, Node: scenario().Node} }
	return []modeUnderTest{
		{ModeIPTables, func(t *testing.T, s modeSettings) (proxier.Proxier, func()) {
			k := iptables.NewFake()
			o := iptablesOptions(s, proxier.IPv4)
			o.Kernel = k
			p, err := iptables.New(o)
			return must(t, p, err), func() { k.FailOn = xtables.FailOnce("Restore", errors.New("injected")) }
		}, scenario, false, iptablesFamilyNames},
		{ModeIPVS, func(t *testing.T, s modeSettings) (proxier.Proxier, func()) {
			k := ipvs.NewFake()
			o := ipvsOptions(s, proxier.IPv4)
			o.Kernel = k
			p, err := ipvs.New(o)
			return must(t, p, err), func() { k.FailOn = xtables.FailOnce("Restore", errors.New("injected")) }
		}, scenario, true, iptablesFamilyNames[:3]},
		{ModeUserspace, func(t *testing.T, s modeSettings) (proxier.Proxier, func()) {
			k := userspace.NewFake()
			o := userspaceOptions(s, proxier.IPv4)
			o.Kernel = k
			p, err := userspace.New(o)
			t.Cleanup(func() { _ = p.Close() })
			return must(t, p, err), func() { k.FailOn = xtables.FailOnce("Restore", errors.New("injected")) }
		}, empty, true, iptablesFamilyNames[:3]},
	}
}

func must[P proxier.Proxier](t *testing.T, p P, err error) P {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestModeMetricNames: every mode exports kube-proxy's iptables-named
// metrics through the sync loop's recording (restore failures included,
// which ipvs and userspace did not count before), and building the
// metrics and proxiers again on the same registry does not panic.
func TestModeMetricNames(t *testing.T) {
	ctx := context.Background()
	for _, m := range modesUnderTest() {
		t.Run(m.mode, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c := defaultConfig()
			c.Mode = kpconfig.ProxyMode(m.mode)
			for range 2 { // as a second family or a restarted mode would
				core := proxier.NewMetrics(reg)
				s := modeSettings{cfg: c, local: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR)), metrics: xtables.NewMetrics(reg)}
				p, breakRestore := m.build(t, s)
				if err := syncRecorded(ctx, core, p, m.mode, proxier.SyncRequest{Snapshot: m.snap(), Full: true}); err != nil {
					t.Fatal(err)
				}
				breakRestore()
				empty := &proxier.Snapshot{Family: proxier.IPv4, Node: m.snap().Node}
				if err := syncRecorded(ctx, core, p, m.mode, proxier.SyncRequest{Snapshot: empty, Changed: proxier.NameSet{}, Full: m.brokenFull}); err == nil {
					t.Fatal("sync with a broken iptables-restore succeeded")
				}
			}
			names := gatheredNames(t, reg)
			for _, n := range iptablesFamilyNames {
				if want := slices.Contains(m.want, n); names[n] != want {
					t.Errorf("%s in /metrics: %v, want %v", n, names[n], want)
				}
			}
		})
	}
}

// syncRecorded runs one sync of p and records it as the sync loop does.
func syncRecorded(ctx context.Context, m *proxier.Metrics, p proxier.Proxier, mode string, req proxier.SyncRequest) error {
	res, err := p.Sync(ctx, req)
	res.Full = res.Full || req.Full
	m.RecordSync(&proxier.SyncRecord{Family: req.Snapshot.Family, Mode: mode, Result: res, Err: err}, p)
	return err
}

func gatheredNames(t *testing.T, g prometheus.Gatherer) map[string]bool {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}
