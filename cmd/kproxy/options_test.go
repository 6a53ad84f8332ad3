package main

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Config
	checks := map[string][2]any{
		"mode":               {string(c.Mode), "iptables"},
		"healthz":            {c.HealthzBindAddress, "0.0.0.0:10256"},
		"metrics":            {c.MetricsBindAddress, "127.0.0.1:10249"},
		"masqueradeBit":      {*c.IPTables.MasqueradeBit, int32(14)},
		"syncPeriod":         {c.IPTables.SyncPeriod.Duration, 30 * time.Second},
		"minSyncPeriod":      {c.IPTables.MinSyncPeriod.Duration, time.Second},
		"localhostNodePorts": {*c.IPTables.LocalhostNodePorts, false},
		"maxPerCore":         {*c.Conntrack.MaxPerCore, int32(32768)},
		"min":                {*c.Conntrack.Min, int32(131072)},
		"established":        {c.Conntrack.TCPEstablishedTimeout.Duration, 24 * time.Hour},
		"closeWait":          {c.Conntrack.TCPCloseWaitTimeout.Duration, time.Hour},
		"configSyncPeriod":   {c.ConfigSyncPeriod.Duration, 15 * time.Minute},
		"contentType":        {c.ClientConnection.ContentType, "application/vnd.kubernetes.protobuf"},
		"qps":                {c.ClientConnection.QPS, float32(5)},
		"burst":              {c.ClientConnection.Burst, int32(10)},
	}
	for name, gw := range checks {
		if gw[0] != gw[1] {
			t.Errorf("%s = %v, want %v", name, gw[0], gw[1])
		}
	}
}

func TestFlags(t *testing.T) {
	o, err := parseOptions([]string{
		"--mode=ipvs", "--hostname-override=n1", "--cluster-cidr=10.244.0.0/16,fd00::/48",
		"--masquerade-all", "--nodeport-addresses=198.51.100.0/24,primary", "--iptables-masquerade-bit=3",
		"--iptables-min-sync-period=2s", "--iptables-sync-period=1m", "--iptables-localhost-nodeports=true",
		"--ipvs-scheduler=wrr", "--ipvs-sync-period=10s", "--ipvs-min-sync-period=1s", "--ipvs-strict-arp",
		"--ipvs-exclude-cidrs=10.0.0.0/8", "--ipvs-tcp-timeout=5m", "--ipvs-tcpfin-timeout=1m", "--ipvs-udp-timeout=30s",
		"--conntrack-max-per-core=0", "--conntrack-min=7", "--conntrack-tcp-timeout-established=1h",
		"--conntrack-tcp-timeout-close-wait=2m", "--conntrack-tcp-be-liberal", "--conntrack-udp-timeout=31s",
		"--conntrack-udp-timeout-stream=121s", "--metrics-bind-address=127.0.0.1:1", "--healthz-bind-address=",
		"--config-sync-period=1m", "--kubeconfig=/k", "--master=https://x", "-v=4",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Config
	got := []any{string(c.Mode), c.HostnameOverride, c.ClusterCIDR, c.IPTables.MasqueradeAll, c.NodePortAddresses,
		*c.IPTables.MasqueradeBit, c.IPTables.MinSyncPeriod.Duration, c.IPTables.SyncPeriod.Duration, *c.IPTables.LocalhostNodePorts,
		c.IPVS.Scheduler, c.IPVS.SyncPeriod.Duration, c.IPVS.MinSyncPeriod.Duration, c.IPVS.StrictARP, c.IPVS.ExcludeCIDRs,
		c.IPVS.TCPTimeout.Duration, c.IPVS.TCPFinTimeout.Duration, c.IPVS.UDPTimeout.Duration,
		*c.Conntrack.MaxPerCore, *c.Conntrack.Min, c.Conntrack.TCPEstablishedTimeout.Duration, c.Conntrack.TCPCloseWaitTimeout.Duration,
		c.Conntrack.TCPBeLiberal, c.Conntrack.UDPTimeout.Duration, c.Conntrack.UDPStreamTimeout.Duration,
		c.MetricsBindAddress, c.HealthzBindAddress, c.ConfigSyncPeriod.Duration, c.ClientConnection.Kubeconfig, o.Master}
	want := []any{"ipvs", "n1", "10.244.0.0/16,fd00::/48", true, []string{"198.51.100.0/24", "primary"},
		int32(3), 2 * time.Second, time.Minute, true,
		"wrr", 10 * time.Second, time.Second, true, []string{"10.0.0.0/8"},
		5 * time.Minute, time.Minute, 30 * time.Second,
		int32(0), int32(7), time.Hour, 2 * time.Minute,
		true, 31 * time.Second, 121 * time.Second,
		"127.0.0.1:1", "", time.Minute, "/k", "https://x"}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("field %d = %#v, want %#v", i, got[i], want[i])
		}
	}
	if o, err := parseOptions([]string{"--proxy-mode=userspace"}, io.Discard); err != nil || o.Config.Mode != "userspace" {
		t.Errorf("--proxy-mode=userspace: %v", err)
	}
}

// TestConfigFileThenFlags: the file is applied first, defaults fill what
// it leaves out, and flags given explicitly win.
func TestConfigFileThenFlags(t *testing.T) {
	p := writeFile(t, `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.244.0.0/16
clientConnection:
  kubeconfig: /from/file
  qps: 50
iptables:
  masqueradeBit: 9
  syncPeriod: 10s
conntrack:
  maxPerCore: 0
`)
	o, err := parseOptions([]string{"--config", p, "--iptables-sync-period=20s", "--hostname-override=x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Config
	if *c.IPTables.MasqueradeBit != 9 || c.ClientConnection.Kubeconfig != "/from/file" || c.ClientConnection.QPS != 50 {
		t.Errorf("file values lost: %+v", c)
	}
	if c.IPTables.SyncPeriod.Duration != 20*time.Second || c.HostnameOverride != "x" {
		t.Errorf("flags did not override the file: sync %v host %q", c.IPTables.SyncPeriod.Duration, c.HostnameOverride)
	}
	if *c.Conntrack.MaxPerCore != 0 || *c.Conntrack.Min != 131072 || c.ClientConnection.Burst != 10 || c.IPTables.MinSyncPeriod.Duration != time.Second {
		t.Errorf("defaults not applied under the file: %+v", c.Conntrack)
	}

	// --write-config-to round-trips.
	out := filepath.Join(t.TempDir(), "out.yaml")
	var stdout, stderr strings.Builder
	if code := run([]string{"--config", p, "--masquerade-all", "--write-config-to", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("write-config-to: exit %d: %s", code, stderr.String())
	}
	back, err := loadConfigFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !back.IPTables.MasqueradeAll || *back.IPTables.MasqueradeBit != 9 || back.ClusterCIDR != "10.244.0.0/16" {
		t.Errorf("written config lost values: %+v", back.IPTables)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ content, msg string }{
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbogusField: 1\n", `unknown field "bogusField"`},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables:\n  masqueradeBits: 1\n", `unknown field "masqueradeBits"`},
		{"apiVersion: v1\nkind: ConfigMap\n", `want apiVersion "kubeproxy.config.k8s.io/v1alpha1"`},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: kernelspace\n", `mode (--proxy-mode) "kernelspace"`},
		{"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nnftables:\n  masqueradeBit: 40\n", "nftables.masqueradeBit 40: must be in 0..31"},
		{"{not yaml", "not YAML or JSON"},
	} {
		_, err := parseOptions([]string{"--config", writeFile(t, tc.content)}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("config %q: error %v, want it to contain %q", tc.content, err, tc.msg)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--proxy-mode=kernelspace"}, `must be one of iptables, ipvs, userspace, nftables`},
		{[]string{"--proxy-mode=nftables", "--iptables-min-sync-period=1m"}, "nftables.minSyncPeriod 1m0s (--iptables-min-sync-period) must not be greater than nftables.syncPeriod 30s"},
		{[]string{"--iptables-masquerade-bit=32"}, "must be in 0..31"},
		{[]string{"--iptables-masquerade-bit=-1"}, "must be in 0..31"},
		{[]string{"--cluster-cidr=10.0.0.0/33"}, "is not a CIDR"},
		{[]string{"--cluster-cidr=10.0.0.0/8,11.0.0.0/8"}, "more than one CIDR of the same IP family"},
		{[]string{"--nodeport-addresses=nope"}, `must be a CIDR or "primary"`},
		{[]string{"--iptables-min-sync-period=1m", "--iptables-sync-period=30s"}, "must not be greater than"},
		{[]string{"--iptables-sync-period=0"}, "must be positive"},
		{[]string{"--proxy-mode=ipvs", "--ipvs-min-sync-period=1m"}, "ipvs.minSyncPeriod"},
		{[]string{"--ipvs-scheduler=fastest"}, "ipvs.scheduler"},
		{[]string{"--ipvs-exclude-cidrs=x"}, "ipvs.excludeCIDRs"},
		{[]string{"--conntrack-min=-1"}, "conntrack.min"},
		{[]string{"--conntrack-udp-timeout=-1s"}, "must not be negative"},
		{[]string{"--metrics-bind-address=localhost"}, "want ip:port"},
		{[]string{"--healthz-bind-address=host:1"}, "not an IP address"},
		{[]string{"--detect-local-mode=Magic"}, "detectLocalMode"},
		{[]string{"--oom-score-adj=-1001"}, "oomScoreAdj"},
		{[]string{"--proxy-port-range=5-3"}, "portRange"},
		{[]string{"--proxy-port-range=70000-70001"}, "portRange"},
		{[]string{"--proxy-port-range=0-10"}, "starts below port 1"},
		{[]string{"--udp-timeout=0"}, "--udp-timeout"},
		{[]string{"--userspace-tcp-idle-timeout=-1s"}, "--userspace-tcp-idle-timeout"},
		{[]string{"--userspace-drain-timeout=-1s"}, "--userspace-drain-timeout"},
		{[]string{"--no-such-flag"}, "unknown flag"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseOptions(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want it to contain %q", tc.args, err, tc.msg)
		}
	}
	// Every problem is reported at once.
	_, err := parseOptions([]string{"--proxy-mode=x", "--iptables-masquerade-bit=40"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "mode") || !strings.Contains(err.Error(), "0..31") {
		t.Errorf("want both problems reported, got %v", err)
	}
}

func TestChooseFamilies(t *testing.T) {
	node := func(addrs ...string) *v1.Node {
		n := &v1.Node{}
		for _, a := range addrs {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: a})
		}
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: "fd00::1"})
		return n
	}
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		cidrs []netip.Prefix
		node  *v1.Node
		want  []proxier.Family
	}{
		{nil, nil, []proxier.Family{proxier.IPv4}},
		{nil, node("198.51.100.1"), []proxier.Family{proxier.IPv4}},
		{nil, node("fd00::1"), []proxier.Family{proxier.IPv6}},
		{[]netip.Prefix{p("10.0.0.0/8")}, node("fd00::1"), []proxier.Family{proxier.IPv6, proxier.IPv4}},
		{[]netip.Prefix{p("10.0.0.0/8"), p("fd00::/48")}, nil, []proxier.Family{proxier.IPv4, proxier.IPv6}},
	} {
		if got := chooseFamilies(tc.cidrs, tc.node); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("chooseFamilies(%v, %v) = %v, want %v", tc.cidrs, tc.node, got, tc.want)
		}
	}
}

func TestNodeName(t *testing.T) {
	if n, _ := nodeName(&Config{HostnameOverride: " Node-A "}); n != "node-a" {
		t.Errorf("nodeName = %q", n)
	}
	h, _ := os.Hostname()
	if n, _ := nodeName(&Config{}); n != strings.ToLower(h) {
		t.Errorf("nodeName without override = %q, want %q", n, h)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"--version"}, nil, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "kproxy ") {
		t.Errorf("--version: exit %d, %q", code, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"--help"}, nil, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--iptables-localhost-nodeports") {
		t.Errorf("--help: exit %d, %q", code, stderr.String())
	}
	if code := run([]string{"--iptables-masquerade-bit=99"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("invalid flag: exit %d, want 2", code)
	}
}

// TestNFTablesTakesKubeProxysFlags: as in kube-proxy, the nftables mode
// has no flags of its own; the iptables sync periods and --masquerade-all
// set its section, over its config file, and NodePorts default to the
// primary address.
func TestNFTablesTakesKubeProxysFlags(t *testing.T) {
	o, err := parseOptions([]string{"--proxy-mode=nftables", "--iptables-sync-period=1m", "--iptables-min-sync-period=2s", "--masquerade-all"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n := o.Config.NFTables
	if n.SyncPeriod.Duration != time.Minute || n.MinSyncPeriod.Duration != 2*time.Second || !n.MasqueradeAll {
		t.Errorf("nftables section %+v, want the flags' periods and masqueradeAll", n)
	}
	if got := o.Config.NodePortAddresses; !slices.Equal(got, []string{"primary"}) {
		t.Errorf("nodePortAddresses %q, want [primary]", got)
	}

	file := writeFile(t, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n"+
		"nodePortAddresses: [198.51.100.0/24]\nnftables:\n  syncPeriod: 2m\n  masqueradeAll: true\n")
	o, err = parseOptions([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n = o.Config.NFTables
	if n.SyncPeriod.Duration != 2*time.Minute || !n.MasqueradeAll || !slices.Equal(o.Config.NodePortAddresses, []string{"198.51.100.0/24"}) {
		t.Errorf("from the file: nftables %+v, nodePortAddresses %q", n, o.Config.NodePortAddresses)
	}

	o, err = parseOptions([]string{"--proxy-mode=iptables", "--iptables-sync-period=1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Config.NFTables.SyncPeriod.Duration != 30*time.Second || len(o.Config.NodePortAddresses) != 0 {
		t.Errorf("iptables mode changed the nftables section or the NodePort addresses: %+v %q", o.Config.NFTables, o.Config.NodePortAddresses)
	}
}
