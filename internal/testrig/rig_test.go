package testrig

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRootNetnsUntouched builds everything the rig has (topology, processes,
// control plane) in a subtest, lets its cleanups run, and then checks that the
// root namespace is exactly as before and nothing is left behind.
func TestRootNetnsUntouched(t *testing.T) {
	RequireRoot(t)
	before, err := SnapshotRootNetns()
	if err != nil {
		t.Fatal(err)
	}
	var namespaces []string
	var pids []int
	t.Run("build", func(t *testing.T) {
		topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 2})
		namespaces = topo.Namespaces()
		node := topo.Node(1)
		// Rules, sets and sysctls inside a node must stay there.
		Run(t, node.Netns, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE")
		if err := SetSysctl(node.Netns, "net.ipv4.conf.all.route_localnet", "1"); err != nil {
			t.Fatal(err)
		}
		p := StartProcess(t, node.Netns, "sleep", "600")
		pids = append(pids, p.PID())
		if _, err := UpstreamBinary(BinKubeAPIServer); err == nil {
			cp := StartControlPlane(t, topo)
			pids = append(pids, cp.APIServerPID(), cp.Etcd().PID())
		}
		after, err := SnapshotRootNetns()
		if err != nil {
			t.Fatal(err)
		}
		if d := before.Diff(after); d != "" {
			t.Errorf("root namespace changed while the rig was up:\n%s", d)
		}
	})
	after, err := SnapshotRootNetns()
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(after); d != "" {
		t.Errorf("root namespace changed:\n%s", d)
	}
	for _, ns := range namespaces {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("netns %s left behind", ns)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still alive after cleanup (%v)", pid, err)
		}
	}
}

func TestSnapshotDiffSeesChanges(t *testing.T) {
	a := RootSnapshot{"ip -o addr show": normalize("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever")}
	b := RootSnapshot{"ip -o addr show": normalize("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft 100sec preferred_lft 100sec")}
	if d := a.Diff(b); d != "" {
		t.Errorf("lifetimes should not count: %s", d)
	}
	c := RootSnapshot{"ip -o addr show": a["ip -o addr show"] + "\n4: eth0 inet 198.51.100.1/24"}
	if d := a.Diff(c); !strings.Contains(d, "+ 4: eth0 inet 198.51.100.1/24") {
		t.Errorf("diff misses an added address: %q", d)
	}
}

func TestStartProcessInNetns(t *testing.T) {
	ns := NewNetns(t, "proc")
	p := StartProcess(t, ns, "sh", "-c", "echo started; ip -o link show; exec sleep 600")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Log(), "lo:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log := p.Log()
	if !strings.Contains(log, "started") || !strings.Contains(log, "lo:") || strings.Contains(log, "eth0") {
		t.Errorf("process output (should see only the netns loopback): %q", log)
	}
	if err := syscall.Kill(p.PID(), 0); err != nil {
		t.Fatalf("pid %d not running: %v", p.PID(), err)
	}
	// Its network namespace is ns, not ours.
	link, _ := os.Readlink("/proc/" + itoa(p.PID()) + "/ns/net")
	self, _ := os.Readlink("/proc/self/ns/net")
	if link == self {
		t.Errorf("process runs in the root netns (%s)", link)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Errorf("still running after Stop")
	}
}

func TestSysctlStaysInNetns(t *testing.T) {
	ns := NewNetns(t, "sysctl")
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err := SetSysctl(ns, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(Run(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); v != "1" {
		t.Errorf("ip_forward in netns = %s, want 1", v)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(host) {
		t.Errorf("host ip_forward changed from %q to %q", host, now)
	}
	if err := SetSysctl("", "net.ipv4.ip_forward", "1"); err == nil {
		t.Errorf("SetSysctl in the root namespace must be refused")
	}
}

// TestMainScopeSharedControlPlane shows the TestMain pattern: objects built in a
// MainScope live until Close, which removes all of them.
func TestMainScopeSharedControlPlane(t *testing.T) {
	RequireRoot(t)
	RequireUpstream(t)
	s := &MainScope{}
	defer s.Close()
	topo, err := BuildTopology(s, TopologyOptions{Nodes: 1, PodsPerNode: 1})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := StartControlPlaneIn(s, topo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cp.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	pid := cp.APIServerPID()
	s.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("apiserver pid %d alive after Close", pid)
	}
	if left, _ := ListNetns(NetnsPrefix + topo.ID); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
