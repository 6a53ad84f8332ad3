package ipvs

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendering (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	snap := scenario().checkout().Snapshots["IPv4"]
	out, err := Render(snap, Options{LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16"))})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render.golden", out)
	again, _ := Render(snap, Options{LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16"))})
	if again != out {
		t.Error("Render is not deterministic")
	}
}

func TestRenderOptions(t *testing.T) {
	snap := scenario().checkout().Snapshots["IPv4"]
	out, err := Render(snap, Options{Scheduler: "wrr", MasqueradeAll: true, MasqueradeBit: 5,
		NodePortAddresses: []string{"198.51.100.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render-options.golden", out)
	if _, err := Render(snap, Options{NodePortAddresses: []string{"not-a-cidr"}}); err == nil {
		t.Error("bad --nodeport-addresses accepted")
	}
}

// Each semantic decision the builder makes, checked on the State itself.
func TestBuildSemantics(t *testing.T) {
	opts := &Options{}
	o, _ := opts.withDefaults()
	s := Build(scenario().checkout().Snapshots["IPv4"], &o)
	vs := func(k string) *VirtualServer {
		for key, v := range s.VirtualServers {
			if key.String() == k {
				return v
			}
		}
		return nil
	}
	has := func(set, entry string) bool { return s.Sets[set][entry] }
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"ClusterIP has both endpoints", vs("TCP 10.96.0.10:80") != nil && len(vs("TCP 10.96.0.10:80").Dests) == 2},
		{"terminating endpoint unused while a ready one exists", vs("UDP 10.96.0.53:53") != nil && len(vs("UDP 10.96.0.53:53").Dests) == 1},
		{"affinity is persistence", vs("TCP 10.96.0.20:80") != nil && vs("TCP 10.96.0.20:80").Timeout == 60},
		{"no endpoints: no virtual server, REJECT entry", vs("TCP 10.96.0.30:80") == nil && has("KUBE-NO-ENDPOINTS", "10.96.0.30,tcp:80")},
		{"no endpoints: address still bound", s.Addrs[netip.MustParseAddr("10.96.0.30")]},
		{"NodePort on node address", vs("TCP 198.51.100.11:30080") != nil && has("KUBE-NODE-PORT", "198.51.100.11,tcp:30080")},
		{"ETP=Local NodePort without local endpoint: Cluster endpoints (upstream ipvs), DROP from outside",
			vs("TCP 198.51.100.11:30081") != nil && len(vs("TCP 198.51.100.11:30081").Dests) == 1 &&
				has("KUBE-EXTERNAL-NO-LOCAL", "198.51.100.11,tcp:30081") && has("KUBE-NODE-PORT-LOCAL", "198.51.100.11,tcp:30081") &&
				!has("KUBE-NO-LOCAL-ENDPOINTS", "198.51.100.11,tcp:30081")},
		{"ETP=Local with a local endpoint: no DROP from outside", !has("KUBE-EXTERNAL-NO-LOCAL", "198.51.100.11,tcp:30082")},
		{"ETP=Local ClusterIP still uses all endpoints", vs("TCP 10.96.0.41:80") != nil && len(vs("TCP 10.96.0.41:80").Dests) == 1},
		{"health check node port", has("KUBE-HEALTH-CHECK-NODE-PORT", "198.51.100.11,tcp:32000")},
		{"LB source range", has("KUBE-LOAD-BALANCER-FW", "203.0.113.5,tcp:80") && has("KUBE-LOAD-BALANCER-SOURCE-CIDR", "203.0.113.5,tcp:80,192.0.2.0/24")},
		{"external IP bound and served by local endpoints only (ETP=Local)", s.Addrs[netip.MustParseAddr("203.0.113.9")] &&
			vs("TCP 203.0.113.9:80") != nil && len(vs("TCP 203.0.113.9:80").Dests) == 1 && has("KUBE-EXTERNAL-IP-LOCAL", "203.0.113.9,tcp:80")},
		{"ETP=Local LB not masqueraded", has("KUBE-LOAD-BALANCER-LOCAL", "203.0.113.5,tcp:80")},
		{"hairpin entries", has("KUBE-LOOP-BACK", "10.244.1.10,tcp:8080,10.244.1.10")},
		{"ITP=Local without local endpoint: DROP", vs("TCP 10.96.0.60:80") == nil && has("KUBE-NO-LOCAL-ENDPOINTS", "10.96.0.60,tcp:80")},
	} {
		if !c.ok {
			t.Errorf("%s: not so in\n%s", c.name, s.Dump())
		}
	}
}

// The source-range exception comes from proxier.PortPolicy, as in every
// mode: with the node's address in a range, the LB IP itself may be the
// source (traffic from the node looping back), not the node's addresses.
func TestBuildSourceRangeException(t *testing.T) {
	w := newWorld(makeNode("node1", "198.51.100.11"))
	w.set(makeService("default", "lb", "10.96.0.50", []string{"80"}, nodePort(30082),
		loadBalancer("203.0.113.6", "198.51.100.0/24")), "10.244.2.12@node2")
	opts := &Options{}
	o, _ := opts.withDefaults()
	s := Build(w.checkout().Snapshots["IPv4"], &o)
	set := s.Sets["KUBE-LOAD-BALANCER-SOURCE-CIDR"]
	if !set["203.0.113.6,tcp:80,198.51.100.0/24"] || !set["203.0.113.6,tcp:80,203.0.113.6/32"] || len(set) != 2 {
		t.Errorf("source entries %v", set)
	}
}
