package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"net/netip"
	"slices"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestBadInputCorpus renders every entry of the bad-input corpus, and all
// of them at once: the output loads into the Fake (which rejects what
// iptables-restore rejects: unknown chains, bad lines), and the entry's
// cases hold when traced — the valid Services and valid parts work, the
// invalid parts are not proxied.
func TestBadInputCorpus(t *testing.T) {
	entries := flowtest.BadInputs()
	for _, e := range append(entries, flowtest.Combined(entries)) {
		t.Run(e.Name, func(t *testing.T) {
			snap := e.Build(nil).Snapshots[proxier.IPv4]
			out, err := Render(snap, flowOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := NewFake().Restore(context.Background(), []byte(out), true); err != nil {
				t.Fatalf("rendered rules do not load: %v", err)
			}
			traceCases(t, &e.Scenario, out)
		})
	}
}

// traceCases checks every case of sc against rendered rules.
func traceCases(t *testing.T, sc *flowtest.Scenario, rules string) {
	t.Helper()
	tr := newTracer(t, rules, flowtest.ThisNodeIP)
	for _, c := range sc.Cases {
		pk, err := sc.Packet(&c)
		if err != nil {
			t.Fatal(err)
		}
		outs := tr.trace(pk)
		if c.Want == flowtest.NotProxied {
			for _, o := range outs {
				if o.Verdict != flowtest.NotProxied {
					t.Errorf("%s (%s): %s, want not proxied", c.Name, pk, o)
				}
			}
			continue
		}
		if err := c.CheckAll(outs); err != nil {
			t.Errorf("%s (%s): %v", c.Name, pk, err)
		}
	}
}

// TestBadInputIncremental adds the corpus one entry at a time with partial
// syncs, then removes it again, and compares each state with a full sync.
func TestBadInputIncremental(t *testing.T) {
	ctx := context.Background()
	entries := flowtest.BadInputs()
	inc := NewFake()
	opts := flowOptions()
	opts.Kernel = inc
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, nil, flowtest.Node().CreationTimestamp.Time)
	tr.OnNode(flowtest.Node())
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	step := func(what string) {
		c := tr.Checkout()
		snap := c.Snapshots[proxier.IPv4]
		if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: c.Changed[proxier.IPv4]}); err != nil {
			t.Fatalf("%s: partial sync: %v", what, err)
		}
		full := NewFake()
		fo := flowOptions()
		fo.Kernel = full
		fp, _ := New(fo)
		if _, err := fp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			t.Fatalf("%s: full sync: %v", what, err)
		}
		for _, table := range []string{tableNAT, tableFilter} {
			a, _ := inc.Save(ctx, table)
			b, _ := full.Save(ctx, table)
			if string(a) != string(b) {
				t.Fatalf("%s: %s table after partial syncs differs from a full sync", what, table)
			}
		}
	}
	step("empty")
	// The scale entries are left out: every step re-renders everything,
	// and they exercise size, not change.
	entries = slices.DeleteFunc(entries, func(e flowtest.BadInput) bool {
		return e.Node != nil || e.TraceOnly || e.Name == "svc-1000-ports"
	})
	for _, e := range entries {
		for _, s := range e.Services {
			tr.OnService(nil, s)
		}
		for _, s := range e.Slices {
			tr.OnEndpointSlice(nil, s)
		}
		step("add " + e.Name)
	}
	for _, e := range entries {
		for _, s := range e.Slices {
			tr.OnEndpointSlice(s, nil)
		}
		for _, s := range e.Services {
			tr.OnService(s, nil)
		}
		step("remove " + e.Name)
	}
}

// TestKernelBadInputCorpus programs the whole corpus at once into a node
// with the real iptables-restore, and sends real traffic for every case
// whose endpoints exist in the rig.
func TestKernelBadInputCorpus(t *testing.T) {
	testrig.RequireRoot(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 1})
	for _, pod := range topo.Pods() {
		testrig.StartEchoServers(t, pod.Netns, pod.IP+":8080", pod.IP, []int{8080}, testrig.TCP)
	}
	k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: topo.Node(1).Netns})
	if err != nil {
		t.Fatal(err)
	}
	opts := flowOptions()
	opts.Kernel = k
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	all := flowtest.Combined(flowtest.BadInputs())
	snap := all.Build(nil).Snapshots[proxier.IPv4]
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatalf("the real iptables-restore rejects the corpus: %v", err)
	}
	probed := 0
	for _, c := range all.Cases {
		if c.Want != flowtest.Forward && c.Want != flowtest.Reject || c.Source != flowtest.FromLocalPod || len(c.Endpoints) > 1 {
			continue // thousands of endpoints do not exist; the tracer covers those
		}
		pk, err := all.Packet(&c)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := testrig.ProbeTCP(topo.Node(1).Pods[0].Netns, netip.AddrPortFrom(pk.Dst, uint16(pk.DstPort)).String(), 2e9)
		got := testrig.Classify(err)
		switch {
		case c.Want == flowtest.Forward && (got != testrig.Answered || reply.Name != c.Endpoints[0]):
			t.Errorf("%s: %s (%v), want an answer from %s", c.Name, got, err, c.Endpoints[0])
		case c.Want == flowtest.Reject && got != testrig.Refused:
			t.Errorf("%s: %s (%v), want refused", c.Name, got, err)
		}
		probed++
	}
	if probed < 40 {
		t.Fatalf("only %d cases probed", probed)
	}
	t.Logf("%d corpus cases probed with real traffic", probed)
}
