package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestMetricsLocalhostByDefault: without --metrics-bind-address kproxy
// serves /metrics on 127.0.0.1 only, so other hosts cannot scrape it.
func TestMetricsLocalhostByDefault(t *testing.T) {
	r := newRig(t)
	r.kp = testrig.StartProcess(t, r.node.Netns, r.bin, "--kubeconfig="+r.cp.KubeProxyKubeconfig,
		"--hostname-override="+r.node.Name, "--conntrack-max-per-core=0")
	r.waitMetric("kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"}", func(v float64) bool { return v > 0 }, 30*time.Second)
	out := testrig.Run(t, r.node.Netns, "ss", "-Hltn")
	var listeners []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && strings.HasSuffix(f[3], ":10249") {
			listeners = append(listeners, f[3])
		}
	}
	if len(listeners) != 1 || listeners[0] != "127.0.0.1:10249" {
		t.Fatalf("metrics listeners %q, want only 127.0.0.1:10249\n%s", listeners, out)
	}
	if _, err := testrig.ProbeTCP(r.topo.Client, net.JoinHostPort(r.node.IP, "10249"), time.Second); err == nil {
		t.Fatal("metrics port answers on the node's address")
	}
}

// TestLoadBalancerSourceRanges: in every mode that runs on this kernel, a
// LoadBalancer IP accepts only the sources its loadBalancerSourceRanges
// list (ipvs is covered by the ipvs VM tests).
func TestLoadBalancerSourceRanges(t *testing.T) {
	for _, mode := range []string{"iptables", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			pods := r.pods()
			for _, lb := range []struct {
				name, ip, lbIP string
				ranges         []string
			}{
				{"lb-allow", "10.96.16.1", "10.96.201.1", []string{testrig.ClientIP + "/32"}},
				{"lb-deny", "10.96.16.2", "10.96.201.2", []string{"203.0.113.0/24"}},
			} {
				if err := r.service(ctx, lb.name, lb.ip, pods[0]); err != nil {
					t.Fatal(err)
				}
				sc := r.cp.Client.CoreV1().Services(r.ns)
				svc, err := sc.Get(ctx, lb.name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				svc.Spec.Type, svc.Spec.LoadBalancerSourceRanges = v1.ServiceTypeLoadBalancer, lb.ranges
				if svc, err = sc.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lb.lbIP}}
				if _, err := sc.UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			r.start(nil, "--proxy-mode="+mode)
			deadline := time.Now().Add(30 * time.Second)
			for {
				reply, err := testrig.ProbeTCP(r.topo.Client, "10.96.201.1:80", time.Second)
				if err == nil && reply.Name == pods[0] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("allowed source: %v\n%s", err, r.kp.Tail(20))
				}
				time.Sleep(200 * time.Millisecond)
			}
			for range 3 {
				if reply, err := testrig.ProbeTCP(r.topo.Client, "10.96.201.2:80", time.Second); err == nil {
					t.Fatalf("blocked source answered by %s", reply.Name)
				}
			}
		})
	}
}

// TestLocalhostNodePorts (CVE-2020-8558): by default a NodePort does not
// answer on 127.0.0.1; with --iptables-localhost-nodeports it does, from
// the node itself, and a packet to 127.0.0.1 arriving from outside is
// dropped — it reaches neither the NodePort nor a service bound to the
// node's loopback.
func TestLocalhostNodePorts(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("localhost-nodeports=%v", on), func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			pods := r.pods()
			if err := r.service(ctx, "np", "10.96.17.1", pods[2]); err != nil {
				t.Fatal(err)
			}
			sc := r.cp.Client.CoreV1().Services(r.ns)
			svc, err := sc.Get(ctx, "np", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			svc.Spec.Type = v1.ServiceTypeNodePort
			svc.Spec.Ports[0].NodePort = 30777
			if _, err := sc.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			// A service bound to the node's loopback: what the CVE exposed.
			testrig.StartEchoServers(t, r.node.Netns, "node-loopback", "127.0.0.1", []int{9999}, testrig.TCP)
			r.start(nil, "--iptables-localhost-nodeports="+strconv.FormatBool(on))
			r.waitAnswer("10.96.17.1", []string{pods[2]}, 30*time.Second)
			if reply, err := testrig.ProbeTCP(r.node.Netns, net.JoinHostPort(r.node.IP, "30777"), 2*time.Second); err != nil || reply.Name != pods[2] {
				t.Fatalf("NodePort on the node IP: %v", err)
			}
			reply, err := testrig.ProbeTCP(r.node.Netns, "127.0.0.1:30777", time.Second)
			if on && (err != nil || reply.Name != pods[2]) {
				t.Fatalf("localhost NodePort from the node: %v", err)
			}
			if !on && err == nil {
				t.Fatalf("localhost NodePort answered (by %s) although off", reply.Name)
			}
			if !on {
				return
			}
			// From outside: SYNs to 127.0.0.1 sent straight at node1's MAC.
			before := dropCount(t, r.node.Netns)
			for _, port := range []uint16{30777, 9999} {
				if answered := martianSYN(t, r, port); answered {
					t.Errorf("a SYN to 127.0.0.1:%d from outside was answered", port)
				}
			}
			if after := dropCount(t, r.node.Netns); after <= before {
				t.Errorf("the anti-martian rule dropped nothing (%d → %d packets)", before, after)
			} else {
				t.Logf("FIGURE localhost-nodeports: 6 outside SYNs to 127.0.0.1 (NodePort and a loopback-bound service), none answered; the anti-martian rule dropped %d", after-before)
			}
		})
	}
}

// dropCount is the packet counter of the "block incoming localnet
// connections" rule.
func dropCount(t *testing.T, ns string) int {
	t.Helper()
	out := testrig.Run(t, ns, "iptables", "-w", "-t", "filter", "-L", "KUBE-FIREWALL", "-v", "-x", "-n")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "localnet") {
			n, _ := strconv.Atoi(strings.Fields(l)[0])
			return n
		}
	}
	t.Fatalf("no anti-martian rule in KUBE-FIREWALL:\n%s", out)
	return 0
}

// martianSYN sends TCP SYNs from the client to 127.0.0.1:port as raw
// Ethernet frames addressed to node1, and reports whether a SYN-ACK came
// back.
func martianSYN(t *testing.T, r *rig, port uint16) bool {
	t.Helper()
	mac := linkMAC(t, r.node.Netns, "eth0")
	answered := false
	err := testrig.DoInNetns(r.topo.Client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		addr := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP), Halen: 6}
		copy(addr.Addr[:], mac)
		if err := unix.Bind(fd, addr); err != nil {
			return err
		}
		frame := synFrame(mac, ifi.HardwareAddr, net.ParseIP(testrig.ClientIP).To4(), net.IPv4(127, 0, 0, 1).To4(), 40000, port)
		for range 3 {
			if err := unix.Sendto(fd, frame, 0, addr); err != nil {
				return err
			}
		}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 0, Usec: 200000})
		buf := make([]byte, 2048)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 14+20+20 {
				continue
			}
			ip := buf[14:]
			ihl := int(ip[0]&0xf) * 4
			if ip[9] != unix.IPPROTO_TCP || n < 14+ihl+14 {
				continue
			}
			tcp := ip[ihl:]
			if binary.BigEndian.Uint16(tcp[0:2]) == port && binary.BigEndian.Uint16(tcp[2:4]) == 40000 && tcp[13]&0x12 == 0x12 {
				answered = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw SYN from the client: %v", err)
	}
	return answered
}

func linkMAC(t *testing.T, ns, dev string) net.HardwareAddr {
	t.Helper()
	out := testrig.Run(t, ns, "cat", "/sys/class/net/"+dev+"/address")
	mac, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// synFrame is an Ethernet + IPv4 + TCP SYN frame.
func synFrame(dst, src net.HardwareAddr, sip, dip net.IP, sport, dport uint16) []byte {
	f := make([]byte, 14+20+20)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_IP)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(ip[2:4], 40)
	copy(ip[12:16], sip)
	copy(ip[16:20], dip)
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip, 0))
	tcp := f[34:54]
	binary.BigEndian.PutUint16(tcp[0:2], sport)
	binary.BigEndian.PutUint16(tcp[2:4], dport)
	binary.BigEndian.PutUint32(tcp[4:8], 1)
	tcp[12], tcp[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:16], 64240)
	pseudo := uint32(0)
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(sip[i:])) + uint32(binary.BigEndian.Uint16(dip[i:]))
	}
	pseudo += unix.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:18], checksum(tcp, pseudo))
	return f
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
