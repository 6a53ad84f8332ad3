package flowtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/kproxy/kproxy/proxier"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// NotProxied is the verdict of a packet no rule touches (it goes on to
// the node's routing: a timeout in testrig, whose nodes route everything
// unknown into a sink).
const NotProxied Verdict = "not proxied"

// BadInput is one entry of the bad-input corpus: malformed or extreme API
// objects and what a proxy must do with them — not crash, report each
// invalid object once, and still program the valid Services and the valid
// parts of the invalid ones.
type BadInput struct {
	Scenario
	// Node replaces this node's object (nil: Node()).
	Node *v1.Node
	// Reports are the objects that must be reported invalid, exactly once
	// each, as "Service ns/name" or "EndpointSlice ns/name".
	Reports []string
	// Programmed are the Services (names in namespace "default", or
	// "ns/name") that must have at least one port in the snapshot; every
	// other Service of the entry must have none.
	Programmed []string
	// APIAccepts is true when kube-apiserver validation accepts every
	// object of the entry, so the control-plane level can create them.
	APIAccepts bool
	// TraceOnly marks entries whose endpoints do not exist in testrig
	// (thousands of them): their cases are checked by tracers only.
	TraceOnly bool
}

// goodEndpoint is the endpoint every corpus Service uses unless it says
// otherwise: pod 0 of the other node, served by testrig's echo servers.
const goodEndpoint = "10.244.2.10:8080"

// corpus hands out ClusterIPs and NodePorts, so that every entry can be
// combined with every other one in a single snapshot.
type corpus struct {
	next     int
	nodePort int32
	out      []BadInput
}

// ip returns the next free ClusterIP (10.96.100.1 on).
func (c *corpus) ip() string {
	c.next++
	return fmt.Sprintf("10.96.%d.%d", 100+c.next/250, c.next%250+1)
}

func (c *corpus) np() int32 {
	c.nodePort++
	return 31000 + c.nodePort
}

// svc is a ClusterIP Service with port "p" TCP 80 and the next ClusterIP.
func (c *corpus) svc(name string, opts ...ServiceOpt) *v1.Service {
	return NewService(name, c.ip(), []v1.ServicePort{Port("p", tcp, 80, 0)}, opts...)
}

// slice is the usual slice of svc: port "p" 8080, endpoint goodEndpoint.
func (c *corpus) slice(svc string, mutate ...func(*discovery.EndpointSlice)) *discovery.EndpointSlice {
	sl := NewSlice(svc+"-1", svc, []discovery.EndpointPort{SlicePort("p", tcp, 8080)}, EP{IP: remote0, Node: OtherNode})
	for _, m := range mutate {
		m(sl)
	}
	return sl
}

// reaches is the case "a local pod reaches svc's port on its ClusterIP".
func reaches(svc, port string, endpoints ...string) Case {
	if len(endpoints) == 0 {
		endpoints = []string{goodEndpoint}
	}
	return Case{Name: svc + " port " + port + " works", Source: FromLocalPod, Service: svc, Port: port,
		Dest: ToClusterIP, Want: Forward, Endpoints: endpoints}
}

// add records an entry. The good Service of an entry whose objects are
// (partly) valid is checked with a "reaches" case by the entry itself.
func (c *corpus) add(e BadInput) { c.out = append(c.out, e) }

// simple adds an entry of one Service (changed by opts) with the usual
// slice, expected to be reported (when report) and still reachable on
// port "p" (when works).
func (c *corpus) simple(name string, report, works, api bool, opts ...ServiceOpt) {
	s := c.svc(name, opts...)
	e := BadInput{Scenario: Scenario{Name: name, Services: []*v1.Service{s}, Slices: []*discovery.EndpointSlice{c.slice(name)}}, APIAccepts: api}
	if report {
		e.Reports = []string{"Service default/" + name}
	}
	if works {
		e.Programmed = []string{name}
		e.Cases = []Case{reaches(name, "p")}
	}
	c.add(e)
}

// BadInputs returns the corpus: at least 50 entries.
func BadInputs() []BadInput {
	c := &corpus{}
	badServices(c)
	extremeServices(c)
	badSlices(c)
	extremeSlices(c)
	badNodes(c)
	return c.out
}

// Combined merges the entries that keep this node's default Node object
// into one scenario, as a cluster holding all of them at once would be.
func Combined(entries []BadInput) BadInput {
	all := BadInput{Scenario: Scenario{Name: "combined"}}
	for _, e := range entries {
		if e.Node != nil {
			continue
		}
		all.Services = append(all.Services, e.Services...)
		all.Slices = append(all.Slices, e.Slices...)
		all.Cases = append(all.Cases, e.Cases...)
		all.Reports = append(all.Reports, e.Reports...)
		all.Programmed = append(all.Programmed, e.Programmed...)
		all.TraceOnly = all.TraceOnly || e.TraceOnly
	}
	return all
}

// QualifiedName turns a Programmed entry into "ns/name".
func QualifiedName(s string) string {
	if strings.Contains(s, "/") {
		return s
	}
	return Namespace + "/" + s
}

// Build feeds the entry to a proxier.Tracker for this node (IPv4), as a
// running kproxy would receive it, and returns the checkout. invalid
// receives the reports (may be nil).
func (b *BadInput) Build(invalid func(kind, name string, err error)) proxier.Checkout {
	tr := proxier.NewTracker(ThisNode, []proxier.Family{proxier.IPv4}, invalid, time.Time{})
	node := b.Node
	if node == nil {
		node = Node()
	}
	tr.OnNode(node)
	for _, svc := range b.Services {
		tr.OnService(nil, svc)
	}
	for _, sl := range b.Slices {
		tr.OnEndpointSlice(nil, sl)
	}
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	return tr.Checkout()
}
