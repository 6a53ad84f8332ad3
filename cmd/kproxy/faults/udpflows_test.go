package faults

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// udpIP is the ClusterIP of the UDP Service of these tests (port 53 →
// the pods' UDP echo on 8080).
const udpIP = "10.96.53.10"

var udpAddr = netip.AddrPortFrom(netip.MustParseAddr(udpIP), 53)

// TestUDPFlowsAcrossRestart: kproxy restarted while long-lived UDP flows run
// (one socket each, as DNS clients keep), in every mode. kube-proxy flushes
// such flows on every restart (kubernetes/kubernetes#122740); kproxy must
// keep the conntrack entries of flows whose endpoint is still in the
// Service (they keep their endpoint) and delete those of an endpoint that
// left while it was down (they move to a live one). Before the restart, a
// sync of an unrelated change must keep every entry too.
//
// In the userspace mode every entry leads to kproxy's own listener, not to
// an endpoint: with a --proxy-port-range the listener gets its port back
// after the restart, so every entry is kept, and the new process picks live
// endpoints for them (it never knew the one that left). With kernel-chosen
// ports the new listener has another port: every entry is deleted at the
// first sync (kept, it would lead to a port nobody listens on), and every
// flow is answered at once.
func TestUDPFlowsAcrossRestart(t *testing.T) { forEachUDPMode(t, testUDPFlowsAcrossRestart) }

func testUDPFlowsAcrossRestart(t *testing.T, m udpMode) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	stay, leave := pods[1:3], pods[3]
	r.udpService(ctx, "dns", append(slices.Clone(stay), leave)...)
	r.start(nil, m.args...)
	r.waitSynced(0)

	svc := r.udp()
	flows := svc.OpenFlows(t, func(by map[string]int) bool {
		return by[stay[0]] >= 4 && by[stay[1]] >= 4 && by[leave] >= 2
	})
	before := svc.MarkFlows(t, flows, udpMark, !m.listener)
	r.syncUnrelatedChange(ctx)
	svc.CheckMarked(t, flows, udpMark, "a sync of an unrelated change")
	if err := r.kp.Stop(); err != nil {
		t.Fatal(err)
	}
	r.udpEndpoints(ctx, "dns", stay...) // the endpoint leaves while kproxy is down
	r.start(nil, m.args...)
	r.waitSynced(0)

	// Before any flow sends again: in the kernel modes the entries of
	// flows to remaining endpoints are kept; in the userspace mode all of
	// them, or none when the listener's port changed.
	kept := svc.CheckEntriesKept(t, flows, before, udpMark, func(f testrig.EndpointFlow) bool {
		if m.listener {
			return !m.newPorts
		}
		return f.Endpoint != leave
	})
	svc.CheckAnswers(t, flows, leave, !m.listener)
	if t.Failed() {
		return
	}
	moved := "flows of remaining endpoints kept their endpoint, those of the endpoint that left moved"
	if m.listener {
		moved = "every flow answered at once, by a remaining endpoint"
	}
	t.Logf("FIGURE udp-restart %s: %d UDP flows across a restart: %d conntrack entries kept, %d deleted; %s", m.name, len(flows), kept, len(flows)-kept, moved)
}

// TestUDPScaleToZeroAndBack: a UDP client that keeps one socket while its
// Service goes to zero endpoints and back, in every mode. When the last
// endpoint goes, the flow's conntrack entry is deleted, so its datagrams
// meet the reject rule (refused at once, not black-holed, and no entry is
// confirmed); as soon as an endpoint is back the same socket is answered
// by it, not held by an entry made while there was none (kube-proxy
// regressed here in 1.32, #139628).
func TestUDPScaleToZeroAndBack(t *testing.T) { forEachUDPMode(t, testUDPScaleToZeroAndBack) }

func testUDPScaleToZeroAndBack(t *testing.T, m udpMode) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	r.udpService(ctx, "dns", pods[1])
	r.start(nil, m.args...)
	r.waitSynced(0)
	svc := r.udp()
	flow, err := testrig.OpenUDPFlow(svc.Client, udpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if got, err := flow.Ask(2 * time.Second); err != nil || got != pods[1] {
		t.Fatalf("before scaling to zero: %q, %v", got, err)
	}
	r.checkFlowEntry(t, m, flow, pods[1])

	tail := func() string { return r.kp.Tail(20) }
	r.udpEndpoints(ctx, "dns")
	// The client keeps sending on the same socket: every datagram is
	// refused, and none leaves an entry behind.
	svc.CheckScaledToZero(t, flow, 5, tail)
	r.udpEndpoints(ctx, "dns", pods[2])
	took := testrig.WaitAnsweredBy(t, flow, pods[2], tail)
	r.checkFlowEntry(t, m, flow, pods[2])
	t.Logf("FIGURE udp-zero-and-back %s: refused with no endpoint (entry deleted), the same UDP socket answered %.1fs after an endpoint came back", m.name, took.Seconds())
}

// checkFlowEntry checks that flow has one conntrack entry and that its
// replies come from pod's echo port (kernel modes) or kproxy's listener
// (userspace mode).
func (r *rig) checkFlowEntry(t *testing.T, m udpMode, flow *testrig.UDPFlow, pod string) {
	t.Helper()
	e, ok := r.udp().Entry(t, flow)
	if !ok {
		t.Fatalf("flow from port %d has no conntrack entry", flow.LocalPort())
	}
	if want := netip.AddrPortFrom(netip.MustParseAddr(pod), echoPort); !m.listener && e.ReplySrc != want {
		t.Errorf("flow's conntrack entry %v: replies from %s, want %s", e, e.ReplySrc, want)
	}
	if m.listener && !m.isProxyPort(e.ReplySrc.Port()) {
		t.Errorf("flow's conntrack entry %v: replies not from a proxy port", e)
	}
}
