package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelUndefinedPortsUntouched: random worlds programmed into a real
// kernel. Raw probes from outside, from a pod and from the node — to every
// address the rules mention on ports and protocols no Service there
// defines, and straight to pods — must end exactly as they do with no
// proxy rules at all: same outcome, same answering server, same source
// address seen. The fuzz test proves this on traced rules; this proves it
// on packets.
func TestKernelUndefinedPortsUntouched(t *testing.T) {
	r := newKernelRig(t)
	ctx := context.Background()
	for _, seed := range flowtest.RandomSeeds(t, 3) {
		w := flowtest.NewRandomWorld(seed).UsePods(10, 3) // the topology's pods
		for range 150 {
			w.Step()
		}
		snap := w.Checkout().Snapshots[proxier.IPv4]
		probes := undefinedProbes(r.topo, snap)
		if err := r.p.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		bare := runRawProbes(probes)
		r.sync(t, snap, nil, true)
		proxied := runRawProbes(probes)
		outcomes := map[string]int{}
		for _, o := range bare {
			outcomes[strings.SplitN(o, " ", 2)[0]]++
		}
		differ := 0
		for i, p := range probes {
			if bare[i] != proxied[i] {
				differ++
				t.Errorf("seed %d: %s: %s with no rules, %s with kproxy's", seed, p, bare[i], proxied[i])
			}
		}
		t.Logf("seed %d: %d Services, %d raw probes (%v with no rules), %d differ from no proxy (%.0fs)",
			seed, len(snap.Services), len(probes), outcomes, differ, time.Since(start).Seconds())
	}
}

// rawProbe is one connection attempt from a namespace.
type rawProbe struct {
	from, fromName string
	proto          testrig.Proto
	addr           netip.AddrPort
}

func (p rawProbe) String() string {
	return fmt.Sprintf("%s %s from %s", p.proto, p.addr, p.fromName)
}

// undefinedProbes lists, from outside, a pod of node1 and node1 itself:
// every Service address of snap on TCP 8080 (the endpoints' echo port,
// which no Service defines) and on UDP 80; node1's address on an
// unused node port; and every pod directly on its echo port.
func undefinedProbes(topo *testrig.Topology, snap *proxier.Snapshot) []rawProbe {
	defined := map[netip.AddrPort]map[testrig.Proto]bool{}
	var addrs []netip.Addr
	for _, svc := range snap.Services {
		for _, p := range svc.Ports {
			for _, a := range append(append([]netip.Addr{p.ClusterIP}, p.ExternalIPs...), p.LoadBalancerIPs...) {
				if !a.IsValid() {
					continue
				}
				ap := netip.AddrPortFrom(a, uint16(p.Port))
				if defined[ap] == nil {
					defined[ap] = map[testrig.Proto]bool{}
				}
				defined[ap][testrig.Proto(strings.ToLower(string(p.Protocol)))] = true
				if !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	type target struct {
		proto testrig.Proto
		addr  netip.AddrPort
	}
	var targets []target
	for _, a := range addrs {
		for _, t := range []target{{testrig.TCP, netip.AddrPortFrom(a, 8080)}, {testrig.UDP, netip.AddrPortFrom(a, 80)}} {
			if !defined[t.addr][t.proto] {
				targets = append(targets, t)
			}
		}
	}
	node := netip.MustParseAddr(flowtest.ThisNodeIP)
	targets = append(targets, target{testrig.TCP, netip.AddrPortFrom(node, 32100)})
	for _, pod := range topo.Pods() {
		targets = append(targets, target{testrig.TCP, netip.AddrPortFrom(netip.MustParseAddr(pod.IP), uint16(flowtest.EchoPorts[0]))})
	}
	sources := []struct{ ns, name string }{
		{topo.Client, "outside"}, {topo.Node(1).Pods[0].Netns, "a pod of node1"}, {topo.Node(1).Netns, "node1"},
	}
	var probes []rawProbe
	for _, s := range sources {
		for _, t := range targets {
			probes = append(probes, rawProbe{from: s.ns, fromName: s.name, proto: t.proto, addr: t.addr})
		}
	}
	return probes
}

// runRawProbes sends each probe once, sixteen at a time, and describes
// how each ended: the outcome, and for an answer, who answered and which
// source it saw.
func runRawProbes(probes []rawProbe) []string {
	out := make([]string, len(probes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reply, err := testrig.Probe(p.from, p.proto, p.addr.String(), time.Second)
			outcome := testrig.Classify(err)
			out[i] = outcome.String()
			switch outcome {
			case testrig.Timeout, testrig.Unreachable:
				// A packet nobody takes gets an ICMP error before the timeout
				// in one run and not in the next (neighbour and ICMP state of
				// the rig), with or without rules: the two are one outcome.
				out[i] = "unanswered"
			case testrig.Answered:
				out[i] += fmt.Sprintf(" by %s, saw %s", reply.Name, reply.SeenIP())
			}
		}()
	}
	wg.Wait()
	return out
}
