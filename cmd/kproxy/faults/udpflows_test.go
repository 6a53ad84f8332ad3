package faults

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
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

	flows := r.openUDPFlows(t, func(by map[string]int) bool {
		return by[stay[0]] >= 4 && by[stay[1]] >= 4 && by[leave] >= 2
	})
	before := r.markFlows(t, m, flows)
	r.syncUnrelatedChange(ctx)
	for _, f := range flows {
		if e, ok := r.flowEntry(t, f.flow); !ok || e.Mark != udpMark {
			t.Errorf("flow from port %d (on %s): a sync of an unrelated change deleted its conntrack entry (now %v)", f.flow.LocalPort(), f.endpoint, e)
		}
	}
	if err := r.kp.Stop(); err != nil {
		t.Fatal(err)
	}
	r.udpEndpoints(ctx, "dns", stay...) // the endpoint leaves while kproxy is down
	r.start(nil, m.args...)
	r.waitSynced(0)

	kept := r.checkEntriesAfterRestart(t, m, flows, before, leave)
	r.checkFlowsAfterRestart(t, m, flows, leave)
	if t.Failed() {
		return
	}
	moved := "flows of remaining endpoints kept their endpoint, those of the endpoint that left moved"
	if m.listener {
		moved = "every flow answered at once, by a remaining endpoint"
	}
	t.Logf("FIGURE udp-restart %s: %d UDP flows across a restart: %d conntrack entries kept, %d deleted; %s", m.name, len(flows), kept, len(flows)-kept, moved)
}

// checkEntriesAfterRestart checks the flows' conntrack entries after the
// first sync of the restarted kproxy, before any flow sent again: the
// entries of flows to remaining endpoints (in userspace mode: all, or none
// when the listener's port changed) are the very ones marked before (same
// reply source), the others are gone. It returns how many were kept.
func (r *rig) checkEntriesAfterRestart(t *testing.T, m udpMode, flows []udpFlow, before map[int]testrig.ConntrackEntry, leave string) (kept int) {
	t.Helper()
	for _, f := range flows {
		e, ok := r.flowEntry(t, f.flow)
		wantKept := f.endpoint != leave
		if m.listener {
			wantKept = !m.newPorts
		}
		switch {
		case wantKept && (!ok || e.Mark != udpMark):
			t.Errorf("flow from port %d (on %s): conntrack entry %v flushed by the restart (now %v, present %v)", f.flow.LocalPort(), f.endpoint, before[f.flow.LocalPort()], e, ok)
		case wantKept && e.ReplySrc != before[f.flow.LocalPort()].ReplySrc:
			t.Errorf("flow from port %d: reply source %s, was %s", f.flow.LocalPort(), e.ReplySrc, before[f.flow.LocalPort()].ReplySrc)
		case !wantKept && ok:
			t.Errorf("flow from port %d (on %s) keeps its conntrack entry %v: its endpoint (or listener port) is gone", f.flow.LocalPort(), f.endpoint, e)
		}
		if ok {
			kept++
		}
	}
	return kept
}

// checkFlowsAfterRestart asks every flow again: each is answered, never by
// the endpoint that left; in the kernel modes the flows of remaining
// endpoints are answered by the same endpoint as before.
func (r *rig) checkFlowsAfterRestart(t *testing.T, m udpMode, flows []udpFlow, leave string) {
	t.Helper()
	for _, f := range flows {
		got, err := f.flow.Ask(2 * time.Second)
		switch {
		case err != nil:
			t.Errorf("flow from port %d (was on %s): %v", f.flow.LocalPort(), f.endpoint, err)
		case got == leave:
			t.Errorf("flow from port %d reaches %s, which left the Service while kproxy was down", f.flow.LocalPort(), leave)
		case !m.listener && f.endpoint != leave && got != f.endpoint:
			t.Errorf("flow from port %d moved from %s to %s: its conntrack entry was flushed by the restart", f.flow.LocalPort(), f.endpoint, got)
		}
	}
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
	flow, err := testrig.OpenUDPFlow(r.client(), udpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if got, err := flow.Ask(2 * time.Second); err != nil || got != pods[1] {
		t.Fatalf("before scaling to zero: %q, %v", got, err)
	}
	r.checkFlowEntry(t, m, flow, pods[1])

	r.udpEndpoints(ctx, "dns")
	if err := eventually(10*time.Second, func() error {
		if e, ok := r.flowEntry(t, flow); ok {
			return fmt.Errorf("conntrack entry %v kept", e)
		}
		return nil
	}); err != nil {
		t.Fatalf("after scaling to zero: %v\n%s", err, r.kp.Tail(20))
	}
	// The client keeps sending on the same socket: every datagram is
	// refused, and none leaves an entry behind.
	for i := range 5 {
		if got, err := flow.Ask(time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("datagram %d with no endpoints: answer %q, error %v; want refused", i+1, got, err)
		}
	}
	if e, ok := r.flowEntry(t, flow); ok {
		t.Fatalf("a rejected datagram left conntrack entry %v", e)
	}

	r.udpEndpoints(ctx, "dns", pods[2])
	start := time.Now()
	if err := eventually(10*time.Second, func() error {
		got, err := flow.Ask(300 * time.Millisecond)
		if err == nil && got != pods[2] {
			err = fmt.Errorf("answered by %s, want %s", got, pods[2])
		}
		return err
	}); err != nil {
		t.Fatalf("the same socket after scaling back: %v\n%s", err, r.kp.Tail(20))
	}
	took := time.Since(start)
	r.checkFlowEntry(t, m, flow, pods[2])
	t.Logf("FIGURE udp-zero-and-back %s: refused with no endpoint (entry deleted), the same UDP socket answered %.1fs after an endpoint came back", m.name, took.Seconds())
}

// checkFlowEntry checks that flow has one conntrack entry and that its
// replies come from pod's echo port (kernel modes) or kproxy's listener
// (userspace mode).
func (r *rig) checkFlowEntry(t *testing.T, m udpMode, flow *testrig.UDPFlow, pod string) {
	t.Helper()
	e, ok := r.flowEntry(t, flow)
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
