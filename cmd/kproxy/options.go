package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
)

// localhostNodePortsHelp explains kproxy's one changed default.
const localhostNodePortsHelp = "Accept NodePort connections to 127.0.0.1 (iptables mode, IPv4 only). " +
	"kproxy defaults to false, unlike kube-proxy: it needs net.ipv4.conf.all.route_localnet=1, which makes " +
	"the whole node accept martian packets to 127.0.0.0/8 (CVE-2020-8558) and breaks no documented use case when off."

// Options is the parsed command line.
type Options struct {
	Config        *Config
	ConfigFile    string
	WriteConfigTo string
	Master        string
	Cleanup       bool
	Version       bool
	Userspace     UserspaceFlags
	// IPTablesBackend is --iptables-backend: auto, legacy or nft (a flag
	// only: KubeProxyConfiguration has no field for it).
	IPTablesBackend string
}

// bindFlags registers kube-proxy's flag names on fs, bound to o and c.
// Flag defaults are c's current values.
func bindFlags(fs *pflag.FlagSet, o *Options, c *Config) {
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "A KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1). Flags given explicitly override it.")
	fs.StringVar(&o.WriteConfigTo, "write-config-to", o.WriteConfigTo, "Write the effective configuration to this file and exit.")
	fs.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "Remove everything kproxy created, in every mode, and exit.")
	fs.BoolVar(&o.Version, "version", o.Version, "Print the version and exit.")
	fs.StringVar(&o.Master, "master", o.Master, "The address of the Kubernetes API server (overrides the kubeconfig).")

	cc := &c.ClientConnection
	fs.StringVar(&cc.Kubeconfig, "kubeconfig", cc.Kubeconfig, "Path to a kubeconfig file. Without it and --master, the in-cluster config is used.")
	fs.Float32Var(&cc.QPS, "kube-api-qps", cc.QPS, "QPS to use while talking with the API server.")
	fs.Int32Var(&cc.Burst, "kube-api-burst", cc.Burst, "Burst to use while talking with the API server.")
	fs.StringVar(&cc.ContentType, "kube-api-content-type", cc.ContentType, "Content type of requests sent to the API server (JSON is accepted as a fallback).")

	mode := (*string)(&c.Mode)
	fs.StringVar(mode, "proxy-mode", *mode, "Which proxy mode to use: "+modeChoices()+".")
	fs.StringVar(mode, "mode", *mode, "Alias of --proxy-mode.")
	fs.StringVar(&c.HostnameOverride, "hostname-override", c.HostnameOverride, "The name of this node, if not the hostname.")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", c.ClusterCIDR, "The pod CIDRs of the cluster, comma-separated (at most one per IP family). Traffic from outside them to a ClusterIP is masqueraded.")
	fs.StringVar((*string)(&c.DetectLocalMode), "detect-local-mode", string(c.DetectLocalMode), "How to tell local pod traffic: ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix.")
	fs.StringVar(&c.DetectLocal.BridgeInterface, "pod-bridge-interface", c.DetectLocal.BridgeInterface, "The bridge of local pods, for --detect-local-mode=BridgeInterface.")
	fs.StringVar(&c.DetectLocal.InterfaceNamePrefix, "pod-interface-name-prefix", c.DetectLocal.InterfaceNamePrefix, "The interface name prefix of local pods, for --detect-local-mode=InterfaceNamePrefix.")
	fs.BoolVar(&c.IPTables.MasqueradeAll, "masquerade-all", c.IPTables.MasqueradeAll, "SNAT all traffic sent to a ClusterIP.")
	fs.StringSliceVar(&c.NodePortAddresses, "nodeport-addresses", c.NodePortAddresses, "CIDRs (or \"primary\") of the local addresses that accept NodePort traffic; empty means all (primary in nftables mode).")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "ip:port of the /healthz and /livez server; empty disables it.")
	fs.BoolVar(&c.BindAddressHardFail, "bind-address-hard-fail", c.BindAddressHardFail, "Exit when the healthz or metrics server cannot listen, instead of going on without it.")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", c.MetricsBindAddress, "ip:port of the /metrics server; empty disables it.")
	fs.BoolVar(&c.EnableProfiling, "profiling", c.EnableProfiling, "Serve /debug/pprof/ on the metrics server.")
	fs.DurationVar(&c.ConfigSyncPeriod.Duration, "config-sync-period", c.ConfigSyncPeriod.Duration, "How often the informers resync from their caches.")
	fs.Int32Var(c.OOMScoreAdj, "oom-score-adj", *c.OOMScoreAdj, "The oom_score_adj of the kproxy process, in [-1000, 1000].")

	fs.Int32Var(c.IPTables.MasqueradeBit, "iptables-masquerade-bit", *c.IPTables.MasqueradeBit, "The fwmark bit (0..31) that marks packets to masquerade.")
	fs.DurationVar(&c.IPTables.SyncPeriod.Duration, "iptables-sync-period", c.IPTables.SyncPeriod.Duration, "The longest time between syncs of the rules.")
	fs.DurationVar(&c.IPTables.MinSyncPeriod.Duration, "iptables-min-sync-period", c.IPTables.MinSyncPeriod.Duration, "The shortest time between syncs of the rules.")
	fs.BoolVar(c.IPTables.LocalhostNodePorts, "iptables-localhost-nodeports", *c.IPTables.LocalhostNodePorts, localhostNodePortsHelp)
	fs.StringVar(&o.IPTablesBackend, "iptables-backend", o.IPTablesBackend, "Which iptables backend every mode writes to: auto (the one holding the node's rules, as kube-proxy's image's iptables-wrapper picks; nft when both are empty), legacy or nft.")

	v := &c.IPVS
	fs.DurationVar(&v.SyncPeriod.Duration, "ipvs-sync-period", v.SyncPeriod.Duration, "The longest time between syncs of the IPVS rules.")
	fs.DurationVar(&v.MinSyncPeriod.Duration, "ipvs-min-sync-period", v.MinSyncPeriod.Duration, "The shortest time between syncs of the IPVS rules.")
	fs.StringVar(&v.Scheduler, "ipvs-scheduler", v.Scheduler, "The IPVS scheduler (default rr).")
	fs.StringSliceVar(&v.ExcludeCIDRs, "ipvs-exclude-cidrs", v.ExcludeCIDRs, "CIDRs whose IPVS virtual servers kproxy must not touch.")
	fs.BoolVar(&v.StrictARP, "ipvs-strict-arp", v.StrictARP, "Set arp_ignore=1 and arp_announce=2.")
	fs.DurationVar(&v.TCPTimeout.Duration, "ipvs-tcp-timeout", v.TCPTimeout.Duration, "IPVS TCP session timeout (0 leaves it alone).")
	fs.DurationVar(&v.TCPFinTimeout.Duration, "ipvs-tcpfin-timeout", v.TCPFinTimeout.Duration, "IPVS TCP FIN_WAIT timeout (0 leaves it alone).")
	fs.DurationVar(&v.UDPTimeout.Duration, "ipvs-udp-timeout", v.UDPTimeout.Duration, "IPVS UDP timeout (0 leaves it alone).")

	ct := &c.Conntrack
	fs.Int32Var(ct.MaxPerCore, "conntrack-max-per-core", *ct.MaxPerCore, "Conntrack entries per CPU (0 leaves nf_conntrack_max alone).")
	fs.Int32Var(ct.Min, "conntrack-min", *ct.Min, "The least nf_conntrack_max kproxy sets.")
	fs.DurationVar(&ct.TCPEstablishedTimeout.Duration, "conntrack-tcp-timeout-established", ct.TCPEstablishedTimeout.Duration, "Idle timeout of established TCP connections (0 leaves it alone).")
	fs.DurationVar(&ct.TCPCloseWaitTimeout.Duration, "conntrack-tcp-timeout-close-wait", ct.TCPCloseWaitTimeout.Duration, "Conntrack timeout of TCP connections in CLOSE_WAIT (0 leaves it alone).")
	fs.BoolVar(&ct.TCPBeLiberal, "conntrack-tcp-be-liberal", ct.TCPBeLiberal, "Set nf_conntrack_tcp_be_liberal: out-of-window TCP packets are not marked INVALID.")
	fs.DurationVar(&ct.UDPTimeout.Duration, "conntrack-udp-timeout", ct.UDPTimeout.Duration, "Conntrack timeout of unreplied UDP flows (0 leaves it alone).")
	fs.DurationVar(&ct.UDPStreamTimeout.Duration, "conntrack-udp-timeout-stream", ct.UDPStreamTimeout.Duration, "Conntrack timeout of UDP streams (0 leaves it alone).")

	fs.StringVar(&c.PortRange, "proxy-port-range", c.PortRange, "Userspace mode: the host ports proxy listeners may use (begin-end, begin+offset or one port); empty, 0 or 0-0: ports the kernel chooses.")
	bindUserspaceFlags(fs, &o.Userspace)
}

// addKlogFlags adds -v and --vmodule.
func addKlogFlags(fs *pflag.FlagSet) {
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(gfs.Lookup(name))
	}
	if f := fs.Lookup("v"); f != nil {
		f.Shorthand = "v"
	}
}

func newFlagSet(name string, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = true
	return fs
}

// parseOptions parses the command line. As kube-proxy, it applies the
// config file first and the flags given explicitly on top of it: the
// arguments are parsed twice, once to find --config, then again over the
// loaded file.
func parseOptions(args []string, stderr io.Writer) (*Options, error) {
	return parseOptionsWith(args, stderr, nil)
}

// parseOptionsWith is parseOptions with extra flags (registered twice,
// on both parses, so bind them to variables outside the Config).
func parseOptionsWith(args []string, stderr io.Writer, extra func(*pflag.FlagSet)) (*Options, error) {
	if extra == nil {
		extra = func(*pflag.FlagSet) {}
	}
	o := &Options{Config: defaultConfig(), Userspace: defaultUserspaceFlags(), IPTablesBackend: string(xtables.Auto)}
	fs := newFlagSet("kproxy", stderr)
	bindFlags(fs, o, o.Config)
	addKlogFlags(fs)
	extra(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	final := fs
	if o.ConfigFile != "" {
		c, err := loadConfigFile(o.ConfigFile)
		if err != nil {
			return nil, err
		}
		o2 := &Options{Config: c, Userspace: defaultUserspaceFlags(), IPTablesBackend: string(xtables.Auto)}
		fs2 := newFlagSet("kproxy", io.Discard)
		bindFlags(fs2, o2, c)
		addKlogFlags(fs2)
		extra(fs2)
		if err := fs2.Parse(args); err != nil {
			return nil, err
		}
		o, final = o2, fs2
	}
	applyNFTablesFlags(final, o.Config)
	if o.Version {
		return o, nil
	}
	_, backendErr := xtables.ParseBackend(o.IPTablesBackend)
	if err := errors.Join(validateConfig(o.Config), o.Userspace.validate(), backendErr); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return o, nil
}

// nodeName is --hostname-override, else the host name, lower-cased as
// kubelet registers it.
func nodeName(c *Config) (string, error) {
	n := strings.TrimSpace(c.HostnameOverride)
	if n == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("hostname: %w", err)
		}
		n = h
	}
	return strings.ToLower(n), nil
}

// applyNFTablesFlags gives the nftables mode what kube-proxy's flags give
// it: it has no flags of its own, --iptables-sync-period,
// --iptables-min-sync-period and --masquerade-all set its section, and
// NodePorts default to the node's primary address.
func applyNFTablesFlags(fs *pflag.FlagSet, c *Config) {
	if c.Mode != ModeNFTables {
		return
	}
	if fs.Changed("iptables-sync-period") {
		c.NFTables.SyncPeriod = c.IPTables.SyncPeriod
	}
	if fs.Changed("iptables-min-sync-period") {
		c.NFTables.MinSyncPeriod = c.IPTables.MinSyncPeriod
	}
	if fs.Changed("masquerade-all") {
		c.NFTables.MasqueradeAll = c.IPTables.MasqueradeAll
	}
	if len(c.NodePortAddresses) == 0 {
		c.NodePortAddresses = []string{"primary"}
	}
}
