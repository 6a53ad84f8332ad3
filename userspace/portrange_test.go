package userspace

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

func TestPortPicker(t *testing.T) {
	inUse := map[int]bool{101: true}
	var tried []int
	open := func(port int) error {
		tried = append(tried, port)
		if inUse[port] {
			return fmt.Errorf("bind: %w", syscall.EADDRINUSE)
		}
		inUse[port] = true
		return nil
	}
	pp := portPicker{r: utilnet.PortRange{Base: 100, Size: 3}}
	for _, want := range [][]int{{100}, {101, 102}} {
		tried = nil
		if err := pp.listen(open); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(tried) != fmt.Sprint(want) {
			t.Errorf("tried %v, want %v", tried, want)
		}
	}
	tried = nil
	if err := pp.listen(open); !errors.Is(err, errPortRangeFull) {
		t.Errorf("full range: err %v", err)
	}
	if fmt.Sprint(tried) != "[100 101 102]" {
		t.Errorf("full range tried %v, want every port once", tried)
	}
	// A freed port is found again, starting after the last one handed out.
	inUse[100] = false
	tried = nil
	if err := pp.listen(open); err != nil || fmt.Sprint(tried) != "[100]" {
		t.Errorf("after freeing 100: tried %v, err %v", tried, err)
	}
	// Other errors are not retried on the next port.
	boom := errors.New("boom")
	if err := pp.listen(func(int) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("err %v, want boom", err)
	}
	// No range: the kernel chooses.
	tried = nil
	if err := (&portPicker{}).listen(open); err != nil || fmt.Sprint(tried) != "[0]" {
		t.Errorf("no range: tried %v, err %v", tried, err)
	}
}

func TestPortRangeOptionValidated(t *testing.T) {
	for _, r := range []utilnet.PortRange{{Base: 0, Size: 2}, {Base: 65535, Size: 2}, {Base: 10, Size: -1}} {
		if _, err := New(Options{Family: proxier.IPv4, PortRange: r}); err == nil {
			t.Errorf("range %+v accepted", r)
		}
	}
}

// Real sockets in a netns: listeners take ports from the range (TCP and UDP
// each their own), and a service port that finds the range full is skipped
// and counted without failing the sync.
func TestKernelPortRange(t *testing.T) {
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, "usports")
	reg := prometheus.NewRegistry()
	r := utilnet.PortRange{Base: 40100, Size: 2}
	p, err := New(Options{Family: proxier.IPv4, Kernel: NewFake(), Sockets: netnsSockets{ns: ns}, Registerer: reg, PortRange: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	services := func(names ...string) *proxier.Snapshot {
		b := newSnap(proxier.NodeInfo{Name: "node1"}).
			add(proxier.ServicePort{Name: spName("default", "dns", "dns", "UDP"), Protocol: "UDP", ClusterIP: addr("10.96.0.53"), Port: 53}, ep("10.244.2.10", 5353, "node2"))
		for i, n := range names {
			b = b.add(proxier.ServicePort{Name: spName("default", n, "http", ""), ClusterIP: addr(fmt.Sprintf("10.96.0.%d", 10+i)), Port: 80}, ep("10.244.2.10", 8080, "node2"))
		}
		return b.snap
	}
	snap := services("a", "b", "c")
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatalf("a full port range failed the sync: %v", err)
	}
	ls := p.Listeners()
	byProto := map[string][]int{}
	for _, l := range ls {
		if !r.Contains(l.ProxyPort) {
			t.Errorf("%s on port %d, outside %s", l.Name, l.ProxyPort, r)
		}
		byProto[string(l.Name.Protocol)] = append(byProto[string(l.Name.Protocol)], l.ProxyPort)
	}
	if len(byProto["TCP"]) != 2 || byProto["TCP"][0] == byProto["TCP"][1] || len(byProto["UDP"]) != 1 {
		t.Errorf("listeners %+v: want two TCP ones on the two ports of the range and the UDP one", ls)
	}
	if n := testutil.ToFloat64(p.metrics.skipped.WithLabelValues("listen failed")); n != 1 {
		t.Errorf("skipped{listen failed} = %v, want 1 (the third TCP service port)", n)
	}
	// The ports are really bound in the namespace.
	for _, port := range byProto["TCP"] {
		c, err := testrig.DialInNetns(ns, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		if err != nil {
			t.Errorf("proxy port %d: %v", port, err)
			continue
		}
		c.Close()
	}

	// Service a goes away and c is still waiting: the port a frees is c's in
	// the same sync, not a sync period later.
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: services("b", "c")}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range p.Listeners() {
		if l.Name.Protocol == "TCP" {
			names = append(names, l.Name.Name)
			if !r.Contains(l.ProxyPort) {
				t.Errorf("%s on port %d, outside %s", l.Name, l.ProxyPort, r)
			}
		}
	}
	if fmt.Sprint(names) != "[b c]" {
		t.Errorf("TCP listeners after removing a: %v, want [b c]", names)
	}
}
