package harness

import (
	"context"
	"fmt"
	"net"

	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/internal/testrig"
)

// Node is where a proxy under test runs. The harness resets it before every
// proxy, starts the proxy in it, reads its metrics through Dial and inspects
// its kernel state through Exec.
//
// Extension point: the ipvs mode needs a kernel with IPVS, i.e. a VM. A VM
// implementation of Node starts the proxy in the VM, runs commands there
// (ipvsadm), dials its metrics port, reads /proc there for Proc.Stats, and
// routes ProbeNetns' traffic through the VM; Spec.Node selects it.
type Node interface {
	// Name is the Kubernetes node name (--hostname-override).
	Name() string
	// Reset makes the node pristine: no rules, no conntrack entries, no
	// processes. Called before every proxy.
	Reset(s testrig.Scope) error
	// Start starts a proxy with args (args[0] is the binary).
	Start(s testrig.Scope, args []string) (Proc, error)
	// Exec runs a command on the node and returns its stdout.
	Exec(args ...string) (string, error)
	// Dial connects from inside the node (e.g. to the metrics address).
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// Proc is a running proxy.
type Proc interface {
	PID() int
	Stats() (measure.ProcStats, error)
	Exited() (bool, error)
	Stop() error
	Tail(lines int) string
}

// NetnsNode is a node namespace of the rig's topology.
type NetnsNode struct {
	Topo  *testrig.Topology
	Index int // 1-based node index
}

var _ Node = (*NetnsNode)(nil)

func (n *NetnsNode) node() *testrig.Node { return n.Topo.Node(n.Index) }

// Name implements Node.
func (n *NetnsNode) Name() string { return n.node().Name }

// Reset implements Node: it deletes the node's namespaces and builds them
// again.
func (n *NetnsNode) Reset(s testrig.Scope) error { return n.Topo.RebuildNode(s, n.Index) }

// Start implements Node.
func (n *NetnsNode) Start(s testrig.Scope, args []string) (Proc, error) {
	p, err := testrig.StartProcessIn(s, n.node().Netns, args...)
	if err != nil {
		return nil, err
	}
	return netnsProc{p}, nil
}

// Exec implements Node.
func (n *NetnsNode) Exec(args ...string) (string, error) {
	return testrig.Exec(n.node().Netns, args...)
}

// Dial implements Node.
func (n *NetnsNode) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return testrig.DialContextInNetns(ctx, n.node().Netns, network, addr)
}

type netnsProc struct{ *testrig.Process }

func (p netnsProc) Stats() (measure.ProcStats, error) {
	if exited, _ := p.Exited(); exited {
		return measure.ProcStats{}, fmt.Errorf("%s (pid %d) has exited", p.Name, p.PID())
	}
	return measure.ReadProc(p.PID())
}

func (p netnsProc) Tail(lines int) string { return p.Process.Tail(lines) }
