package xtables

import (
	"fmt"
	"net/netip"
	"testing"
)

// fatalRecorder records the first failure instead of stopping the test.
type fatalRecorder struct{ msg string }

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	if f.msg == "" {
		f.msg = fmt.Sprintf(format, args...)
	}
}

const traceRules = `*nat
:SVC - [0:0]
:SEP-A - [0:0]
:SEP-B - [0:0]
-A SVC -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.50000000000 -j SEP-A
-A SVC -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j SEP-B
-A SVC -d 10.96.0.2/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 40001
-A SEP-A -p tcp -m tcp -j DNAT --to-destination 10.244.1.10:8080
-A SEP-B -p tcp -m tcp -j DNAT --to-destination 10.244.2.10:8080
COMMIT
*filter
:GUARD - [0:0]
-A GUARD -p tcp -m multiport --dports 40001 -m addrtype --dst-type LOCAL -m conntrack ! --ctstate DNAT -j DROP
COMMIT
`

func newTestTracer(t *testing.T) *Tracer {
	tr := NewTracer(t, traceRules)
	node := netip.MustParseAddr("198.51.100.11")
	tr.RedirectAddr = node
	tr.IsLocal = func(a netip.Addr) bool { return a == node || a.IsLoopback() }
	tr.InsertRule("nat", "PREROUTING", "-j SVC")
	tr.Append("filter", "INPUT", []string{"-j", "GUARD"})
	return tr
}

func tcpTo(dst string, port int) TracePacket {
	return TracePacket{Src: netip.MustParseAddr("10.244.1.11"), Dst: netip.MustParseAddr(dst), DstPort: port, Protocol: "tcp", In: "veth0"}
}

// A random choice is followed both ways.
func TestTracerFollowsBothWaysOfARandomChoice(t *testing.T) {
	outs := newTestTracer(t).Run("nat", "PREROUTING", tcpTo("10.96.0.1", 80))
	var got []string
	for _, o := range outs {
		got = append(got, o.Verdict+" "+o.Packet.DNAT)
	}
	if fmt.Sprint(got) != "[DNAT 10.244.1.10:8080 DNAT 10.244.2.10:8080]" {
		t.Errorf("outcomes %v, want both endpoints", got)
	}
}

// A REDIRECT sends the packet to the node's port and counts as DNAT for
// conntrack: the guard against direct connections lets it pass and
// drops a direct one.
func TestTracerRedirect(t *testing.T) {
	tr := newTestTracer(t)
	outs := tr.Run("nat", "PREROUTING", tcpTo("10.96.0.2", 80))
	if len(outs) != 1 || outs[0].Verdict != "REDIRECT" || outs[0].Packet.RedirectPort != 40001 || outs[0].Packet.Dst != tr.RedirectAddr {
		t.Fatalf("redirect outcome %+v", outs)
	}
	if v := tr.Run("filter", "INPUT", outs[0].Packet)[0].Verdict; v != "" {
		t.Errorf("redirected packet: filter verdict %q, want none", v)
	}
	if v := tr.Run("filter", "INPUT", tcpTo("198.51.100.11", 40001))[0].Verdict; v != "DROP" {
		t.Errorf("direct connection to the proxy port: verdict %q, want DROP", v)
	}
}

// A match the tracer does not know fails the test.
func TestTracerRejectsUnknownMatches(t *testing.T) {
	rec := &fatalRecorder{}
	tr := NewTracer(rec, "*filter\n:X - [0:0]\n-A X -m owner --uid-owner 0 -j DROP\nCOMMIT\n")
	tr.Run("filter", "X", tcpTo("10.96.0.1", 80))
	if rec.msg == "" {
		t.Error("an unknown match was ignored")
	}
}
