package main

import (
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

func TestDetectLocalModes(t *testing.T) {
	cluster := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.7.0/24"}}}
	configFile := writeFile(t, `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
detectLocalMode: InterfaceNamePrefix
detectLocal:
  interfaceNamePrefix: cali
`)
	for _, tc := range []struct {
		args  []string
		local string // the IPv4 "is local" match
	}{
		{nil, "-s 10.244.0.0/16"},
		{[]string{"--detect-local-mode=NodeCIDR"}, "-s 10.244.7.0/24"},
		{[]string{"--detect-local-mode=BridgeInterface", "--pod-bridge-interface=cbr0"}, "-i cbr0"},
		{[]string{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=veth"}, "-i veth+"},
		{[]string{"--config=" + configFile}, "-i cali+"},
		{[]string{"--config=" + configFile, "--detect-local-mode=BridgeInterface", "--pod-bridge-interface=br-pods"}, "-i br-pods"},
	} {
		o, err := parseOptions(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		d, err := localDetector(o.Config, cluster, node)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.Join(xtables.IfLocal(d.ForFamily(proxier.IPv4)), " "); got != tc.local {
			t.Errorf("%v: local match %q, want %q", tc.args, got, tc.local)
		}
	}

	o, err := parseOptions([]string{"--detect-local-mode=NodeCIDR"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localDetector(o.Config, cluster, nil); err == nil {
		t.Error("NodeCIDR without a Node object must be an error, not silently no detection")
	}
}

// Like kube-proxy, the interface modes need their interface; kproxy also
// refuses names no interface can have (they would fail every restore).
func TestDetectLocalValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--detect-local-mode=Nope"}, `detectLocalMode (--detect-local-mode) "Nope": must be one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix`},
		{[]string{"--detect-local-mode=BridgeInterface"}, "detectLocal.bridgeInterface (--pod-bridge-interface) with detectLocalMode BridgeInterface: must not be empty"},
		{[]string{"--detect-local-mode=InterfaceNamePrefix"}, "detectLocal.interfaceNamePrefix (--pod-interface-name-prefix) with detectLocalMode InterfaceNamePrefix: must not be empty"},
		{[]string{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=veth+"}, "contains one of"},
		{[]string{"--detect-local-mode=BridgeInterface", "--pod-bridge-interface=a-very-long-bridge0"}, "longer than 15 bytes"},
		{[]string{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=abcdefghijklmno"}, "longer than 14 bytes"},
	} {
		if _, err := parseOptions(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want it to contain %q", tc.args, err, tc.msg)
		}
	}
	// The interface of the mode not chosen is not checked.
	if _, err := parseOptions([]string{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=veth", "--pod-bridge-interface=bad/name"}, io.Discard); err != nil {
		t.Errorf("unused --pod-bridge-interface rejected: %v", err)
	}
}

func TestModeOptionsPerFamily(t *testing.T) {
	o, err := parseOptions([]string{"--nodeport-addresses=10.0.0.0/8,fd00::/64", "--conntrack-tcp-be-liberal"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := modeSettings{cfg: o.Config, tcpBeLiberal: true}
	if got := iptablesOptions(s, proxier.IPv6).NodePortAddresses; !reflect.DeepEqual(got, []string{"fd00::/64"}) {
		t.Errorf("IPv6 nodeport addresses %v: another family's CIDR would make ip6tables-restore fail", got)
	}
	if got := iptablesOptions(s, proxier.IPv4); !got.TCPBeLiberal || !reflect.DeepEqual(got.NodePortAddresses, []string{"10.0.0.0/8"}) {
		t.Errorf("IPv4 options %+v", got)
	}
}

func TestWithToolsDropsIPv6WithoutIP6tables(t *testing.T) {
	missing := func(name string) (string, error) {
		if name == "ip6tables" {
			return "", io.EOF
		}
		return "/usr/sbin/" + name, nil
	}
	got := withTools([]proxier.Family{proxier.IPv6, proxier.IPv4}, xtables.Plain, missing)
	if !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4}) {
		t.Errorf("families %v", got)
	}
	if got := withTools([]proxier.Family{proxier.IPv6}, xtables.Plain, missing); !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4}) {
		t.Errorf("families %v", got)
	}
	// The backend's ip6tables counts: plain ip6tables alone is not enough
	// for nft.
	nftMissing := func(name string) (string, error) {
		if name == "ip6tables-nft" {
			return "", io.EOF
		}
		return "/usr/sbin/" + name, nil
	}
	if got := withTools([]proxier.Family{proxier.IPv4, proxier.IPv6}, xtables.NFT, nftMissing); !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4}) {
		t.Errorf("nft without ip6tables-nft: families %v", got)
	}
	if got := withTools([]proxier.Family{proxier.IPv4, proxier.IPv6}, xtables.Legacy, nftMissing); !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4, proxier.IPv6}) {
		t.Errorf("legacy: families %v", got)
	}
}

// TestRenderDetectLocalInterface: the detector built from the flags
// reaches the rules of every mode (their exact rules are the backends'
// golden files).
func TestRenderDetectLocalInterface(t *testing.T) {
	for mode, want := range map[string]string{
		"iptables": "! -i veth+ -p tcp -m comment --comment \"default/web:http cluster IP\"",
		"ipvs":     "--match-set KUBE-CLUSTER-IP dst,dst ! -i veth+ -j KUBE-MARK-MASQ",
	} {
		var stdout, stderr strings.Builder
		args := []string{"render", "-f", "testdata/cluster.yaml", "--hostname-override=node1", "--proxy-mode=" + mode,
			"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=veth"}
		if code := run(args, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("%s: output lacks %q:\n%s", mode, want, stdout.String())
		}
	}
}
