package userspace

import (
	"context"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// svcBuilder builds snapshot Services the way proxier does (Usable from
// proxier.CategorizeEndpoints), so tests consume the shared semantics.
type svcBuilder struct {
	node proxier.NodeInfo
	snap *proxier.Snapshot
}

func newSnap(node proxier.NodeInfo) *svcBuilder {
	return &svcBuilder{node: node, snap: &proxier.Snapshot{Family: proxier.IPv4, Node: node, Services: map[types.NamespacedName]*proxier.Service{}}}
}

func spName(ns, name, port string, proto v1.Protocol) proxier.ServicePortName {
	return proxier.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: proto}
}

// add adds one service port (a new Service, or another port of it).
func (b *svcBuilder) add(sp proxier.ServicePort, eps ...proxier.Endpoint) *svcBuilder {
	if sp.Protocol == "" {
		sp.Protocol = v1.ProtocolTCP
	}
	sp.Name.Protocol = sp.Protocol
	for i := range eps {
		eps[i].Local = eps[i].NodeName != "" && eps[i].NodeName == b.node.Name
	}
	p := proxier.Port{ServicePort: sp, Endpoints: eps, Usable: proxier.CategorizeEndpoints(&sp, eps, &b.node)}
	// A new *Service per call: like the tracker, a changed Service is a new object.
	old := b.snap.Services[sp.Name.NamespacedName]
	svc := &proxier.Service{Name: sp.Name.NamespacedName}
	if old != nil {
		svc.Ports = append(svc.Ports, old.Ports...)
	}
	svc.Ports = append(svc.Ports, p)
	b.snap.Services[sp.Name.NamespacedName] = svc
	return b
}

// clone returns a builder of a new snapshot sharing the unchanged Services.
func (b *svcBuilder) clone() *svcBuilder {
	n := newSnap(b.node)
	for k, v := range b.snap.Services {
		n.snap.Services[k] = v
	}
	return n
}

func (b *svcBuilder) remove(ns, name string) *svcBuilder {
	delete(b.snap.Services, types.NamespacedName{Namespace: ns, Name: name})
	return b
}

func ep(ip string, port int32, node string) proxier.Endpoint {
	return proxier.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, NodeName: node}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// netnsSockets opens the proxy's sockets inside a test network namespace
// (the test process itself stays in the root namespace).
type netnsSockets struct{ ns string }

func (s netnsSockets) ListenTCP(network string, a netip.AddrPort) (*net.TCPListener, error) {
	return AsTCPListener(testrig.ListenInNetns(s.ns, network, a.String()))
}

func (s netnsSockets) ListenUDP(network string, a netip.AddrPort) (*net.UDPConn, error) {
	return AsUDPConn(testrig.ListenPacketInNetns(s.ns, network, a.String()))
}

func (s netnsSockets) DialTCP(ctx context.Context, network string, a netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return AsTCPConn(testrig.DialContextInNetns(ctx, s.ns, network, a.String()))
}

func (s netnsSockets) DialUDP(network string, a netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := testrig.DoInNetns(s.ns, func() error {
		var err error
		c, err = net.DialUDP(network, nil, net.UDPAddrFromAddrPort(a))
		return err
	})
	return c, err
}
