package flowtest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/proxier"
)

// Address plan, shared with testrig.
const (
	ThisNode    = "node1"
	OtherNode   = "node2"
	ThisNodeIP  = "198.51.100.11"
	OtherNodeIP = "198.51.100.12"
	ClientIP    = "198.51.100.100"
	ClusterCIDR = "10.244.0.0/16"
	// LocalPodIP is the address of pod 0 on this node, the default source
	// of "local pod" cases.
	LocalPodIP  = "10.244.1.10"
	RemotePodIP = "10.244.2.10"
)

// Source is where a connection starts.
type Source string

const (
	FromLocalPod  Source = "local-pod"  // a pod on this node
	FromRemotePod Source = "remote-pod" // a pod on another node, reaching this node
	FromNode      Source = "node"       // this node's own network stack
	FromOutside   Source = "outside"    // a client outside the cluster, routed to this node
)

// Dest is which of a Service's addresses a connection targets.
type Dest string

const (
	ToClusterIP      Dest = "clusterIP"
	ToNodePort       Dest = "nodePort" // this node's IP and the port's nodePort
	ToExternalIP     Dest = "externalIP"
	ToLoadBalancerIP Dest = "loadBalancerIP"
)

// Verdict is what happens to a connection's first packet.
type Verdict string

const (
	Forward Verdict = "forward" // DNATed to an endpoint
	Reject  Verdict = "reject"  // ICMP error (connection refused at once)
	Drop    Verdict = "drop"    // silently dropped (a timeout)
)

// Case is one connection attempt and what must happen to it.
type Case struct {
	Name   string
	Source Source
	// SourceIP overrides the source kind's default address (e.g. a
	// specific pod, for hairpin).
	SourceIP string
	Service  string // Service name, in namespace "default"
	Port     string // the Service port's name ("" for an unnamed port)
	Dest     Dest
	// DestIndex picks among externalIPs or LoadBalancer IPs.
	DestIndex int

	Want Verdict
	// Endpoints are the "ip:port" endpoints a Forward may reach; a tracer
	// must find exactly this set, real traffic only ever one of them.
	Endpoints []string
	// Masquerade says whether the endpoint sees the node's address instead
	// of the client's.
	Masquerade bool
}

// Scenario is a set of API objects for this node and the cases to check.
type Scenario struct {
	Name     string
	Services []*v1.Service
	Slices   []*discovery.EndpointSlice
	Cases    []Case
}

// Node is this node's API object.
func Node() *v1.Node {
	return &v1.Node{
		ObjectMeta: metaName("", ThisNode),
		Spec:       v1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ThisNodeIP}}},
	}
}

// Snapshot builds the IPv4 snapshot of the scenario through
// proxier.Tracker, exactly as a running kproxy would.
func (s *Scenario) Snapshot() *proxier.Snapshot {
	tr := proxier.NewTracker(ThisNode, []proxier.Family{proxier.IPv4}, nil, time.Time{})
	tr.OnNode(Node())
	for _, svc := range s.Services {
		tr.OnService(nil, svc)
	}
	for _, sl := range s.Slices {
		tr.OnEndpointSlice(nil, sl)
	}
	return tr.Checkout().Snapshots[proxier.IPv4]
}

// Packet is a connection's first packet, before any NAT.
type Packet struct {
	Source   Source
	Src, Dst netip.Addr
	DstPort  int
	Protocol v1.Protocol
}

func (p Packet) String() string {
	return fmt.Sprintf("%s %s -> %s:%d/%s", p.Source, p.Src, p.Dst, p.DstPort, p.Protocol)
}

// Packet resolves a case to addresses and ports.
func (s *Scenario) Packet(c *Case) (Packet, error) {
	var svc *v1.Service
	for _, x := range s.Services {
		if x.Name == c.Service {
			svc = x
		}
	}
	if svc == nil {
		return Packet{}, fmt.Errorf("case %s: no Service %q", c.Name, c.Service)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p v1.ServicePort) bool { return p.Name == c.Port })
	if i < 0 {
		return Packet{}, fmt.Errorf("case %s: Service %s has no port %q", c.Name, c.Service, c.Port)
	}
	sp := svc.Spec.Ports[i]
	p := Packet{Source: c.Source, Protocol: sp.Protocol, DstPort: int(sp.Port)}
	if p.Protocol == "" {
		p.Protocol = v1.ProtocolTCP
	}
	src := c.SourceIP
	if src == "" {
		src = map[Source]string{FromLocalPod: LocalPodIP, FromRemotePod: RemotePodIP, FromNode: ThisNodeIP, FromOutside: ClientIP}[c.Source]
	}
	var dst string
	switch c.Dest {
	case ToClusterIP:
		dst = svc.Spec.ClusterIP
	case ToNodePort:
		dst, p.DstPort = ThisNodeIP, int(sp.NodePort)
	case ToExternalIP:
		if c.DestIndex < len(svc.Spec.ExternalIPs) {
			dst = svc.Spec.ExternalIPs[c.DestIndex]
		}
	case ToLoadBalancerIP:
		if c.DestIndex < len(svc.Status.LoadBalancer.Ingress) {
			dst = svc.Status.LoadBalancer.Ingress[c.DestIndex].IP
		}
	}
	var err1, err2 error
	p.Src, err1 = netip.ParseAddr(src)
	p.Dst, err2 = netip.ParseAddr(dst)
	if err1 != nil || err2 != nil {
		return Packet{}, fmt.Errorf("case %s: bad source %q or destination %q", c.Name, src, dst)
	}
	return p, nil
}

// Outcome is what a backend did with one packet (one branch of it, for a
// tracer that follows every random choice).
type Outcome struct {
	Verdict    Verdict
	Endpoint   string // "ip:port" for Forward
	Masquerade bool
}

func (o Outcome) String() string {
	if o.Verdict == Forward {
		return fmt.Sprintf("forward to %s (masquerade %v)", o.Endpoint, o.Masquerade)
	}
	return string(o.Verdict)
}

// CheckAll compares every outcome a tracer found with the case: the same
// verdict everywhere, and for Forward exactly the wanted endpoint set with
// the wanted masquerading.
func (c *Case) CheckAll(outs []Outcome) error {
	if len(outs) == 0 {
		return fmt.Errorf("no outcome")
	}
	seen := map[string]bool{}
	for _, o := range outs {
		if err := c.Check(o); err != nil {
			return err
		}
		seen[o.Endpoint] = true
	}
	if c.Want == Forward && len(seen) != len(c.Endpoints) {
		var got []string
		for e := range seen {
			got = append(got, e)
		}
		slices.Sort(got)
		return fmt.Errorf("reached endpoints %v, want all of %v", got, c.Endpoints)
	}
	return nil
}

// Check compares one outcome with the case.
func (c *Case) Check(o Outcome) error {
	if o.Verdict != c.Want {
		return fmt.Errorf("got %s, want %s", o, c.Want)
	}
	if c.Want != Forward {
		return nil
	}
	if !slices.Contains(c.Endpoints, o.Endpoint) {
		return fmt.Errorf("got %s, want one of %s", o, strings.Join(c.Endpoints, ", "))
	}
	if o.Masquerade != c.Masquerade {
		return fmt.Errorf("got %s, want masquerade %v", o, c.Masquerade)
	}
	return nil
}
