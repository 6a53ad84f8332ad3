package main

import (
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/proxier"
)

func TestDetectLocalModes(t *testing.T) {
	cluster := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.7.0/24"}}}

	o, err := parseOptions([]string{"--detect-local-mode=NodeCIDR"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, err := localCIDRs(o.Config, cluster, node)
	if err != nil || !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("10.244.7.0/24")}) {
		t.Fatalf("NodeCIDR: %v, %v", got, err)
	}
	if _, err := localCIDRs(o.Config, cluster, nil); err == nil {
		t.Error("NodeCIDR without a Node object must be an error, not silently no detection")
	}

	o, err = parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := localCIDRs(o.Config, cluster, node); !reflect.DeepEqual(got, cluster) {
		t.Errorf("ClusterCIDR: %v", got)
	}

	for _, m := range []string{"BridgeInterface", "InterfaceNamePrefix", "Nope"} {
		if _, err := parseOptions([]string{"--detect-local-mode=" + m}, io.Discard); err == nil || !strings.Contains(err.Error(), "detectLocalMode") {
			t.Errorf("%s: want a validation error naming detectLocalMode, got %v", m, err)
		}
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
	got := withTools([]proxier.Family{proxier.IPv6, proxier.IPv4}, missing)
	if !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4}) {
		t.Errorf("families %v", got)
	}
	if got := withTools([]proxier.Family{proxier.IPv6}, missing); !reflect.DeepEqual(got, []proxier.Family{proxier.IPv4}) {
		t.Errorf("families %v", got)
	}
}
