package userspace

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// flowRender is one scenario rendered as Render does: the listener specs,
// the placeholder proxy ports and the rules that redirect to them.
type flowRender struct {
	specs  []listenerSpec
	ports  map[listenerKey]int
	src    *sourceClassifier
	tracer *xtables.Tracer
}

func newFlowRender(t *testing.T, snap *proxier.Snapshot, opts Options) *flowRender {
	o, err := opts.normalized()
	if err != nil {
		t.Fatal(err)
	}
	r := &flowRender{ports: map[listenerKey]int{}, src: newSourceClassifier(o.LocalDetector, snap.Node.IPs)}
	r.specs, _ = plan(snap)
	for i := range r.specs {
		r.ports[r.specs[i].Key] = renderPortBase + i
	}
	r.tracer = xtables.NewTracer(t, renderRules(r.specs, r.ports, &snap.Node, &o).Text)
	nodeIP := netip.MustParseAddr(flowtest.ThisNodeIP)
	r.tracer.RedirectAddr = nodeIP
	r.tracer.IsLocal = func(a netip.Addr) bool { return a == nodeIP || a.IsLoopback() }
	for _, j := range jumps { // Sync appends them (EnsureRule)
		r.tracer.Append(j.table, j.chain, j.rule())
	}
	return r
}

// TestFlowTable runs the shared packet-flow table against the rules and
// the listeners' endpoint choice, with no kernel: the tracer follows the
// packet to the REDIRECT, which must lead to the proxy port of the case's
// listener (internal for the ClusterIP, external for the other
// destinations), and the listener's balancer gives the endpoints. The
// proxy dials from the node, so the masquerade column does not apply.
func TestFlowTable(t *testing.T) {
	opts := Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR))}
	for _, sc := range append(flowtest.Scenarios(), flowtest.RemotePodScenario(true)) {
		t.Run(sc.Name, func(t *testing.T) {
			r := newFlowRender(t, sc.Snapshot(), opts)
			for _, c := range sc.Cases {
				pk, err := sc.Packet(&c)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.CheckAll(r.trace(t, &c, pk)); err != nil {
					t.Errorf("%s (%s): %v", c.Name, pk, err)
				}
			}
		})
	}
}

// trace returns every outcome of one packet: the verdict of the filter
// table, or the endpoints of the listener it was redirected to.
func (r *flowRender) trace(t *testing.T, c *flowtest.Case, pk flowtest.Packet) []flowtest.Outcome {
	p, natHook := pk.TraceStart("veth0")
	var outs []flowtest.Outcome
	for _, nat := range r.tracer.Run("nat", natHook, p) {
		filterHook := "OUTPUT"
		if pk.Source != flowtest.FromNode {
			filterHook = "FORWARD"
			if r.tracer.IsLocal(nat.Packet.Dst) {
				filterHook = "INPUT"
			}
		}
		for _, filter := range r.tracer.Run("filter", filterHook, nat.Packet) {
			switch {
			case filter.Verdict == "DROP":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Drop})
			case filter.Verdict == "REJECT":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Reject})
			case nat.Verdict != "REDIRECT":
				outs = append(outs, flowtest.Outcome{Verdict: "not proxied"})
			default:
				outs = append(outs, r.proxied(t, c, pk, nat.Packet.RedirectPort)...)
			}
		}
	}
	return outs
}

// proxied checks that port is the proxy port of the case's listener and
// returns the endpoints its balancer offers the client.
func (r *flowRender) proxied(t *testing.T, c *flowtest.Case, pk flowtest.Packet, port int) []flowtest.Outcome {
	class := external
	if c.Dest == flowtest.ToClusterIP {
		class = internal
	}
	i := slices.IndexFunc(r.specs, func(s listenerSpec) bool {
		return s.Key.Class == class && s.Key.Name.Name == c.Service && s.Key.Name.Port == c.Port
	})
	if i < 0 {
		t.Fatalf("%s: no %s listener of %s:%s", c.Name, class, c.Service, c.Port)
	}
	spec := &r.specs[i]
	if want := r.ports[spec.Key]; port != want {
		t.Errorf("%s: redirected to proxy port %d, want %d (%s)", c.Name, port, want, spec.Key)
	}
	set, _ := newBalancer(spec, map[netip.AddrPort]*backend{}).candidates(pk.Src, r.src)
	if len(set) == 0 {
		// The listener accepts and resets: no endpoint to dial.
		return []flowtest.Outcome{{Verdict: flowtest.Reject}}
	}
	var outs []flowtest.Outcome
	for _, be := range set {
		outs = append(outs, flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: be.addr.String(), Masquerade: c.Masquerade})
	}
	return outs
}
