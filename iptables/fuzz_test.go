package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// FuzzRender builds arbitrary (often malformed) Services and
// EndpointSlices, strips them with the Tracker and renders them. Whatever
// the input: Render succeeds and is deterministic, the output loads into
// the Fake (only existing chains, well-formed lines), no comment or chain
// name breaks iptables' limits, and no packet to a port that no Service
// defines is accepted, DNATed, rejected or dropped by our rules.
//
//	go test -run='^$' -fuzz='^FuzzRender$' -fuzztime=20s ./iptables
func FuzzRender(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("kproxy"))
	f.Add([]byte{3, 0, 0, 1, 4, 5, 0, 2, 1, 0, 80, 2, 2, 2, 1, 1, 1, 1, 2, 3, 1, 1, 0, 4, 4, 4, 4})
	f.Add([]byte{1, 2, 9, 9, 9, 3, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &fuzzGen{data: data}
		svcs := g.services()
		slices := g.slices(svcs)
		tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, func(string, string, error) {}, time.Time{})
		tr.OnNode(flowtest.Node())
		for _, s := range svcs {
			tr.OnService(nil, s)
		}
		for _, s := range slices {
			tr.OnEndpointSlice(nil, s)
		}
		snap := tr.Checkout().Snapshots[proxier.IPv4]
		opts := flowOptions()
		opts.LocalhostNodePorts = g.bool()
		out, err := Render(snap, opts)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		if again, _ := Render(snap, opts); again != out {
			t.Fatal("Render is not deterministic")
		}
		if err := NewFake().Restore(context.Background(), []byte(out), true); err != nil {
			t.Fatalf("rendered rules do not load: %v\n%s", err, out)
		}
		checkLimits(t, out)
		checkUndefinedPorts(t, snap, out, opts.LocalhostNodePorts)
	})
}

// checkLimits: comments fit iptables' 256 bytes and hold no quote or
// newline, chain names fit 28 characters.
func checkLimits(t *testing.T, rules string) {
	tables, err := xtables.ParseRestore(rules)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, tb := range tables {
		for _, c := range tb.Chains {
			if len(c) > 28 {
				t.Errorf("chain name %q longer than 28", c)
			}
		}
		for _, l := range tb.Lines {
			for i, w := range l.Words {
				if w == "--comment" && i+1 < len(l.Words) && (len(l.Words[i+1]) > 255 || strings.ContainsAny(l.Words[i+1], "\"\n")) {
					t.Errorf("line %d: comment %q breaks iptables' limits", l.LineNo, l.Words[i+1])
				}
			}
		}
	}
}

// checkUndefinedPorts traces packets to every address the rules mention,
// on a port no Service uses, from every source: none may be touched —
// except by the anti-martian rule, which drops packets to 127.0.0.0/8 that
// do not come from the loopback when localhost NodePorts are on.
func checkUndefinedPorts(t *testing.T, snap *proxier.Snapshot, rules string, localhostNodePorts bool) {
	used := map[int]bool{}
	var dsts []netip.Addr
	for _, svc := range snap.Services {
		for _, p := range svc.Ports {
			used[int(p.Port)], used[int(p.NodePort)], used[int(p.HealthCheckNodePort)] = true, true, true
			dsts = append(dsts, p.ClusterIP)
			dsts = append(dsts, p.ExternalIPs...)
			dsts = append(dsts, p.LoadBalancerIPs...)
		}
	}
	dsts = append(dsts, netip.MustParseAddr(flowtest.ThisNodeIP), netip.MustParseAddr("127.0.0.1"))
	port := 1
	for used[port] {
		port++
	}
	tr := newTracer(t, rules, flowtest.ThisNodeIP)
	srcs := map[flowtest.Source]string{flowtest.FromLocalPod: flowtest.LocalPodIP, flowtest.FromRemotePod: flowtest.RemotePodIP,
		flowtest.FromNode: flowtest.ThisNodeIP, flowtest.FromOutside: flowtest.ClientIP}
	for src, ip := range srcs {
		for _, dst := range dsts {
			for _, proto := range []string{"TCP", "UDP", "SCTP"} {
				pk := flowtest.Packet{Source: src, Src: netip.MustParseAddr(ip), Dst: dst, DstPort: port, Protocol: v1.Protocol(proto)}
				for _, o := range tr.trace(pk) {
					if localhostNodePorts && dst.IsLoopback() && o.Verdict == flowtest.Drop {
						continue
					}
					if o.Verdict != flowtest.NotProxied {
						t.Errorf("%s to undefined port %d: %s", pk, port, o)
					}
				}
			}
		}
	}
}

// FuzzParseRestore feeds arbitrary text to the restore parser the Fake
// and the stale-chain detection use: it never panics, and whatever the
// Fake accepts it dumps in a form that loads again to the same state.
//
// The seeds stay small: whole golden files as seeds stall Go's fuzzing
// engine on this machine (no progress after the baseline).
//
//	go test -run='^$' -fuzz='^FuzzParseRestore$' -fuzztime=20s ./iptables
func FuzzParseRestore(f *testing.F) {
	f.Add("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-ABC - [0:0]\n-A KUBE-SERVICES -m comment --comment \"default/web:http cluster IP\" -m tcp -p tcp -d 10.96.0.10 --dport 80 -j KUBE-SVC-ABC\n-A KUBE-SVC-ABC -m statistic --mode random --probability 0.5000000000 -j RETURN\nCOMMIT\n*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n")
	f.Add("*nat\n:KUBE-X - [0:0]\n-A KUBE-X -m comment --comment \"a b\" -j RETURN\n-X KUBE-X\nCOMMIT\n")
	f.Add("*filter\n-A INPUT \"unterminated\nCOMMIT\n")
	f.Add("*nat\n*filter\nCOMMIT\n")
	f.Add("-A INPUT -j ACCEPT\n")
	f.Fuzz(func(t *testing.T, data string) {
		tables, err := xtables.ParseRestore(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "table ") {
				t.Errorf("parse error without a line number: %v", err)
			}
			return
		}
		for _, tb := range tables {
			for _, l := range tb.Lines {
				if len(l.Words) == 0 {
					t.Errorf("line %d: empty rule", l.LineNo)
				}
			}
		}
		ctx := context.Background()
		fk := NewFake()
		if err := fk.Restore(ctx, []byte(data), false); err != nil {
			return
		}
		for _, table := range []string{tableFilter, tableNAT, tableMangle} {
			dump, err := fk.Save(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			again := NewFake()
			if err := again.Restore(ctx, dump, false); err != nil {
				t.Fatalf("the Fake's own dump of %s does not load: %v\n%s", table, err, dump)
			}
			dump2, _ := again.Save(ctx, table)
			if string(dump) != string(dump2) {
				t.Fatalf("%s: dump, load, dump differs:\n%s\n---\n%s", table, dump, dump2)
			}
		}
	})
}
