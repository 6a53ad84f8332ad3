package iptables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

func dump(t *testing.T, k Kernel) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{tableFilter, tableNAT, tableMangle} {
		out, err := k.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	return b.String()
}

func newFakeProxier(t *testing.T, k Kernel, m *xtables.Metrics) *Proxier {
	t.Helper()
	opts := flowOptions()
	opts.Kernel, opts.Metrics = k, m
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newTracker() *proxier.Tracker {
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, nil, time.Time{})
	tr.OnNode(flowtest.Node())
	return tr
}

func withVersion[T interface{ SetResourceVersion(string) }](obj T, v int) T {
	obj.SetResourceVersion(fmt.Sprint(v))
	return obj
}

// TestPartialEqualsFull replays a sequence of changes with partial syncs
// and checks after each step that the kernel state equals a fresh full
// sync of the same snapshot.
func TestPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	var services []*v1.Service
	var slices []*discovery.EndpointSlice
	for _, sc := range flowtest.Scenarios() {
		services = append(services, sc.Services...)
		slices = append(slices, sc.Slices...)
	}
	tr := newTracker()
	fake := NewFake()
	p := newFakeProxier(t, fake, nil)
	version := 10
	steps := []struct {
		name  string
		apply func()
	}{
		{"add everything", func() {
			for _, s := range services {
				tr.OnService(nil, s)
			}
			for _, s := range slices {
				tr.OnEndpointSlice(nil, s)
			}
		}},
		{"scale web to one endpoint", func() {
			old := slices[0]
			cur := old.DeepCopy()
			cur.Endpoints = cur.Endpoints[:1]
			version++
			tr.OnEndpointSlice(old, withVersion(cur, version))
			slices[0] = cur
		}},
		{"delete a Service and its slice", func() {
			tr.OnService(services[1], nil)
			tr.OnEndpointSlice(slices[1], nil)
		}},
		{"turn a NodePort into ClusterIP", func() {
			for i, s := range services {
				if s.Spec.Type == v1.ServiceTypeNodePort {
					cur := s.DeepCopy()
					cur.Spec.Type = v1.ServiceTypeClusterIP
					for j := range cur.Spec.Ports {
						cur.Spec.Ports[j].NodePort = 0
					}
					version++
					tr.OnService(s, withVersion(cur, version))
					services[i] = cur
					break
				}
			}
		}},
		{"remove all endpoints of a LoadBalancer", func() {
			for i, s := range slices {
				if strings.HasPrefix(s.Name, "lb-allowed") {
					tr.OnEndpointSlice(s, nil)
					slices[i] = nil
				}
			}
		}},
	}
	for i, st := range steps {
		st.apply()
		co := tr.Checkout()
		snap := co.Snapshots[proxier.IPv4]
		res, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: co.Changed[proxier.IPv4], Full: i == 0})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Full != (i == 0) {
			t.Errorf("%s: Full = %v", st.name, res.Full)
		}
		ref := NewFake()
		if _, err := newFakeProxier(t, ref, nil).Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			t.Fatal(err)
		}
		if got, want := dump(t, fake), dump(t, ref); got != want {
			t.Fatalf("%s: partial sync state differs from a full sync:\n--- partial\n%s\n--- full\n%s", st.name, got, want)
		}
		if i > 0 && res.Written[tableNAT] >= res.Rules[tableNAT] {
			t.Errorf("%s: partial sync wrote %d of %d nat rules", st.name, res.Written[tableNAT], res.Rules[tableNAT])
		}
	}
}

func scenarioSnapshot(t *testing.T) *proxier.Snapshot {
	t.Helper()
	sc := flowtest.Scenarios()[0]
	return sc.Snapshot()
}

// TestRestoreFailureKeepsRules injects a rejected restore: the previous
// rules stay, the error is a RestoreError, the result says so and the
// mode's failure metrics count it.
func TestRestoreFailureKeepsRules(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	m := xtables.NewMetrics(nil)
	p := newFakeProxier(t, fake, m)
	snap := scenarioSnapshot(t)
	first, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.KernelWrite <= 0 {
		t.Errorf("first sync's KernelWrite = %v, want the restore's time", first.KernelWrite)
	}
	before := dump(t, fake)
	fake.FailOn = xtables.FailOnce("Restore", errors.New("injected"))
	res, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: &proxier.Snapshot{Family: proxier.IPv4, Node: snap.Node}, Changed: proxier.NameSet{}})
	if !xtables.IsRestoreError(err) {
		t.Fatalf("Sync error = %v, want a RestoreError", err)
	}
	if !res.RestoreFailed || res.Full || res.KernelWrite <= 0 {
		t.Errorf("result = %+v, want a failed (and timed) restore of a partial sync", res)
	}
	if after := dump(t, fake); after != before {
		t.Errorf("rules changed after a failed restore")
	}
	proxier.NewMetrics(nil).RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Result: res, Err: err}, p)
	if got := testutil.ToFloat64(m.RestoreFailures.WithLabelValues("IPv4")); got != 1 {
		t.Errorf("restore failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.PartialRestoreFailures.WithLabelValues("IPv4")); got != 1 {
		t.Errorf("partial restore failures = %v, want 1", got)
	}
}

// TestFakeRejectsBadTableAtomically checks the fake's all-or-nothing
// table commit and line reporting, which the proxier relies on.
func TestFakeRejectsBadTableAtomically(t *testing.T) {
	fake := NewFake()
	in := "*filter\n:KUBE-A - [0:0]\n-A KUBE-A -j ACCEPT\nCOMMIT\n*nat\n:KUBE-B - [0:0]\n-A KUBE-B -j ACCEPT\n-A KUBE-MISSING -j ACCEPT\nCOMMIT\n"
	err := fake.Restore(context.Background(), []byte(in), false)
	var re *xtables.RestoreError
	if !errors.As(err, &re) || re.Line != 8 {
		t.Fatalf("err = %v, want a RestoreError at line 8", err)
	}
	if ok, _ := fake.ChainExists(context.Background(), tableFilter, "KUBE-A"); !ok {
		t.Errorf("filter, committed before the failure, was not applied")
	}
	if ok, _ := fake.ChainExists(context.Background(), tableNAT, "KUBE-B"); ok {
		t.Errorf("nat was partly applied")
	}
}

// TestCanaryAndFullResync flushes nat behind the proxier's back.
func TestCanaryAndFullResync(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	p := newFakeProxier(t, fake, nil)
	snap := scenarioSnapshot(t)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, fake)
	if flushed, err := p.Flushed(ctx); err != nil || flushed {
		t.Fatalf("Flushed = %v, %v right after a sync", flushed, err)
	}
	fake.Flush(tableNAT)
	if flushed, err := p.Flushed(ctx); err != nil || !flushed {
		t.Fatalf("Flushed = %v, %v after a flush, want true", flushed, err)
	}
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, fake); got != want {
		t.Errorf("full resync did not restore the rules:\n%s", got)
	}
}

// TestFullSyncRewritesAlteredChain changes one endpoint chain behind the
// proxier's back: kproxy keeps only sums of the chains it wrote, so the
// next full sync must notice the difference and render that Service again.
func TestFullSyncRewritesAlteredChain(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	p := newFakeProxier(t, fake, nil)
	snap := scenarioSnapshot(t)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, fake)
	sep := ""
	for _, line := range strings.Split(want, "\n") {
		if name, ok := strings.CutPrefix(line, ":KUBE-SEP-"); ok {
			sep = "KUBE-SEP-" + strings.Fields(name)[0]
			break
		}
	}
	if sep == "" {
		t.Fatalf("no endpoint chain in:\n%s", want)
	}
	altered := "*nat\n:" + sep + " - [0:0]\n-A " + sep + " -j RETURN\nCOMMIT\n"
	if err := fake.Restore(ctx, []byte(altered), true); err != nil {
		t.Fatal(err)
	}
	if dump(t, fake) == want {
		t.Fatal("the chain was not altered")
	}
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, fake); got != want {
		t.Errorf("full sync did not restore %s:\n%s", sep, got)
	}
}

// TestJumpRulesNotDuplicated runs several full syncs.
func TestJumpRulesNotDuplicated(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	p := newFakeProxier(t, fake, nil)
	snap := scenarioSnapshot(t)
	for range 3 {
		if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := fake.Save(ctx, tableNAT)
	if n := strings.Count(string(out), "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"); n != 1 {
		t.Errorf("PREROUTING jump appears %d times:\n%s", n, out)
	}
}

// TestStaleAndForeignChains: a full sync removes per-Service chains left
// by a previous run but never touches chains that are not ours.
func TestStaleAndForeignChains(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	pre := "*nat\n:KUBE-SVC-LEFTOVER000000 - [0:0]\n:KUBE-SEP-LEFTOVER000000 - [0:0]\n:CNI-FOREIGN - [0:0]\n:KUBE-SOMEONE-ELSE - [0:0]\n" +
		"-A KUBE-SVC-LEFTOVER000000 -j KUBE-SEP-LEFTOVER000000\n-A CNI-FOREIGN -j ACCEPT\nCOMMIT\n"
	if err := fake.Restore(ctx, []byte(pre), false); err != nil {
		t.Fatal(err)
	}
	p := newFakeProxier(t, fake, nil)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: scenarioSnapshot(t), Full: true}); err != nil {
		t.Fatal(err)
	}
	for chain, want := range map[string]bool{"KUBE-SVC-LEFTOVER000000": false, "KUBE-SEP-LEFTOVER000000": false, "CNI-FOREIGN": true, "KUBE-SOMEONE-ELSE": true} {
		if ok, _ := fake.ChainExists(ctx, tableNAT, chain); ok != want {
			t.Errorf("chain %s exists = %v, want %v", chain, ok, want)
		}
	}
}

// TestCleanup removes everything of ours, keeps foreign chains and
// kubelet's KUBE-FIREWALL, and is idempotent (also without a sync).
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	if err := fake.Restore(ctx, []byte("*nat\n:CNI-FOREIGN - [0:0]\n-A POSTROUTING -j CNI-FOREIGN\nCOMMIT\n"), false); err != nil {
		t.Fatal(err)
	}
	opts := flowOptions()
	opts.Kernel = fake
	if err := Cleanup(ctx, opts); err != nil {
		t.Fatalf("cleanup of a clean system: %v", err)
	}
	p := newFakeProxier(t, fake, nil)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: scenarioSnapshot(t), Full: true}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Cleanup(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	got := dump(t, fake)
	for _, line := range strings.Split(got, "\n") {
		if testrig.MentionsOwnChain(line) && !strings.Contains(line, "KUBE-FIREWALL") {
			t.Errorf("left behind: %s", line)
		}
	}
	if !strings.Contains(got, "-A POSTROUTING -j CNI-FOREIGN") {
		t.Errorf("foreign rule removed:\n%s", got)
	}
}

// TestCleanupOfCleanSystemOnlyLists: where no chain of ours exists (every
// start of another mode), cleanup lists filter and nat once each and asks
// for the mangle canary: no command per jump rule.
func TestCleanupOfCleanSystemOnlyLists(t *testing.T) {
	fake := NewFake()
	var ops []string
	fake.FailOn = func(op string) error { ops = append(ops, op); return nil }
	opts := flowOptions()
	opts.Kernel = fake
	if err := Cleanup(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Save filter", "Save nat", "DeleteChain mangle " + chainCanary}; !slices.Equal(ops, want) {
		t.Errorf("cleanup of a clean system ran %q, want %q", ops, want)
	}
}

// TestCleanupUnlistedTableStillUnhooked: when a table cannot be listed,
// cleanup fails but still deletes its jump rules, so no stale chain of
// ours stays reachable, and cleans the other table fully.
func TestCleanupUnlistedTableStillUnhooked(t *testing.T) {
	ctx := context.Background()
	fake := NewFake()
	p := newFakeProxier(t, fake, nil)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: scenarioSnapshot(t), Full: true}); err != nil {
		t.Fatal(err)
	}
	fake.FailOn = xtables.FailOnce("Save nat", errors.New("injected"))
	opts := flowOptions()
	opts.Kernel = fake
	if err := Cleanup(ctx, opts); err == nil {
		t.Error("cleanup with nat unlistable reported success")
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT", "POSTROUTING"} {
		for _, rule := range fake.Chain(tableNAT, chain) {
			if testrig.MentionsOwnChain(rule) {
				t.Errorf("nat %s still jumps: %s", chain, rule)
			}
		}
	}
	for _, line := range strings.Split(dump(t, fake), "\n") {
		if strings.HasPrefix(line, "*nat") {
			break
		}
		if testrig.MentionsOwnChain(line) && !strings.Contains(line, "KUBE-FIREWALL") {
			t.Errorf("filter left behind: %s", line)
		}
	}
}

// TestRuleCountYardstick checks kube-proxy's ClusterIP-only rule count:
// nat rules = 5 + S*(2 + 3E).
func TestRuleCountYardstick(t *testing.T) {
	tr := newTracker()
	const S, E = 10, 10
	for s := range S {
		name := fmt.Sprintf("svc%d", s)
		tr.OnService(nil, flowtest.NewService(name, fmt.Sprintf("10.96.9.%d", s+1), []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)}))
		var eps []flowtest.EP
		for e := range E {
			eps = append(eps, flowtest.EP{IP: fmt.Sprintf("10.244.2.%d", 10*s+e+1), Node: flowtest.OtherNode})
		}
		tr.OnEndpointSlice(nil, flowtest.NewSlice(name+"-1", name, []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}, eps...))
	}
	p := newFakeProxier(t, NewFake(), nil)
	res, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: tr.Checkout().Snapshots[proxier.IPv4], Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Rules[tableNAT], 5+S*(2+3*E); got != want {
		t.Errorf("nat rules = %d, want %d", got, want)
	}
}

// TestChainNamesMatchKubeProxy pins a few hashes to kube-proxy's.
func TestChainNamesMatchKubeProxy(t *testing.T) {
	// Values from kube-proxy's own tests (ns1/svc1:p80 tcp).
	p := proxier.ServicePort{Name: proxier.ServicePortName{Port: "p80"}, Protocol: v1.ProtocolTCP}
	p.Name.Namespace, p.Name.Name = "ns1", "svc1"
	c := chainsFor(&p)
	if c.clusterPolicy != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("SVC chain = %s", c.clusterPolicy)
	}
	ep := proxier.Endpoint{IP: mustAddr("10.180.0.1"), Port: 80}
	if got := endpointChain(&c, &ep); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("SEP chain = %s", got)
	}
}
