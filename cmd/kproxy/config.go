package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"
)

// Config is kube-proxy's KubeProxyConfiguration; kproxy never defines its
// own copy of the type.
type Config = kpconfig.KubeProxyConfiguration

const (
	configGroupVersion = "kubeproxy.config.k8s.io/v1alpha1"
	configKind         = "KubeProxyConfiguration"
)

// ipvsSchedulers are the schedulers the Linux IPVS module offers.
var ipvsSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

func ptr[T any](v T) *T { return &v }

// defaultConfig returns a config with kube-proxy's defaults.
func defaultConfig() *Config {
	c := &Config{}
	c.APIVersion, c.Kind = configGroupVersion, configKind
	setDefaults(c)
	return c
}

// setDefaults fills the fields left unset, with the values kube-proxy's
// v1alpha1 defaulting uses. Two deliberate differences, both documented in
// the flag help: the default mode is iptables on every platform, and
// iptables.localhostNodePorts defaults to false (see localhostNodePortsHelp).
func setDefaults(c *Config) {
	if c.BindAddress == "" {
		c.BindAddress = "0.0.0.0"
	}
	if c.HealthzBindAddress == "" {
		c.HealthzBindAddress = "0.0.0.0:10256"
	}
	if c.MetricsBindAddress == "" {
		c.MetricsBindAddress = "127.0.0.1:10249"
	}
	if c.Mode == "" {
		c.Mode = defaultMode
	}
	if c.DetectLocalMode == "" {
		c.DetectLocalMode = "ClusterCIDR"
	}
	if c.FeatureGates == nil {
		c.FeatureGates = map[string]bool{}
	}
	cc := &c.ClientConnection
	if cc.ContentType == "" {
		cc.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if cc.QPS == 0 {
		cc.QPS = 5
	}
	if cc.Burst == 0 {
		cc.Burst = 10
	}
	defDur(&c.ConfigSyncPeriod, 15*time.Minute)
	if c.OOMScoreAdj == nil {
		c.OOMScoreAdj = ptr(int32(-999))
	}
	if c.IPTables.MasqueradeBit == nil {
		c.IPTables.MasqueradeBit = ptr(int32(14))
	}
	if c.IPTables.LocalhostNodePorts == nil {
		c.IPTables.LocalhostNodePorts = ptr(false)
	}
	defDur(&c.IPTables.SyncPeriod, 30*time.Second)
	defDur(&c.IPTables.MinSyncPeriod, time.Second)
	defDur(&c.IPVS.SyncPeriod, 30*time.Second)
	if c.NFTables.MasqueradeBit == nil {
		c.NFTables.MasqueradeBit = ptr(int32(14))
	}
	defDur(&c.NFTables.SyncPeriod, 30*time.Second)
	defDur(&c.NFTables.MinSyncPeriod, time.Second)
	ct := &c.Conntrack
	if ct.MaxPerCore == nil {
		ct.MaxPerCore = ptr(int32(32 * 1024))
	}
	if ct.Min == nil {
		ct.Min = ptr(int32(128 * 1024))
	}
	if ct.TCPEstablishedTimeout == nil {
		ct.TCPEstablishedTimeout = &metav1.Duration{Duration: 24 * time.Hour}
	}
	if ct.TCPCloseWaitTimeout == nil {
		ct.TCPCloseWaitTimeout = &metav1.Duration{Duration: time.Hour}
	}
}

func defDur(d *metav1.Duration, v time.Duration) {
	if d.Duration == 0 {
		d.Duration = v
	}
}

// loadConfigFile reads a KubeProxyConfiguration (YAML or JSON) strictly:
// an unknown or duplicated field is an error naming it. Unset fields get
// kube-proxy's defaults.
func loadConfigFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	c, err := decodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

func decodeConfig(data []byte) (*Config, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	if tm.APIVersion != configGroupVersion || tm.Kind != configKind {
		return nil, fmt.Errorf("apiVersion %q kind %q: want apiVersion %q kind %q", tm.APIVersion, tm.Kind, configGroupVersion, configKind)
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("strict decoding: %w", err)
	}
	setDefaults(c)
	return c, nil
}

// encodeConfig is the YAML --write-config-to writes.
func encodeConfig(c *Config) ([]byte, error) {
	out := *c
	out.APIVersion, out.Kind = configGroupVersion, configKind
	return yaml.Marshal(&out)
}

// validateConfig checks everything kproxy uses and returns every problem,
// one per line, naming the flag or field.
func validateConfig(c *Config) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	mode, known := modeNamed(c.Mode)
	if !known {
		bad("mode (--proxy-mode) %q: must be one of %s", c.Mode, strings.Join(modeNames(), ", "))
	}
	validateAddressing(c, bad)
	validateMasqueradeBits(c, bad)
	// Like kube-proxy: the iptables section always, and the mode's own
	// section when it has one.
	checkPeriods(bad, "iptables", "iptables", c.IPTables.SyncPeriod.Duration, c.IPTables.MinSyncPeriod.Duration)
	if known && mode.SyncSection != "iptables" {
		minSync, sync := mode.SyncPeriods(c)
		checkPeriods(bad, mode.SyncSection, mode.SyncFlags, sync, minSync)
	}
	validateIPVS(c, bad)
	validateConntrack(c, bad)
	validateProcess(c, bad)
	return errors.Join(errs...)
}

// validateAddressing checks the settings that name addresses and ports:
// cluster CIDRs, local traffic detection, the userspace port range and
// the NodePort addresses.
func validateAddressing(c *Config, bad func(string, ...any)) {
	if _, err := parseClusterCIDRs(c.ClusterCIDR); err != nil {
		bad("clusterCIDR (--cluster-cidr): %v", err)
	}
	for _, err := range validateDetectLocal(c) {
		bad("%w", err)
	}
	if _, err := proxyPortRange(c); err != nil {
		bad("portRange (--proxy-port-range): %v", err)
	}
	for _, a := range c.NodePortAddresses {
		if a == "primary" {
			continue
		}
		if _, err := netip.ParsePrefix(a); err != nil {
			bad("nodePortAddresses (--nodeport-addresses) %q: must be a CIDR or \"primary\"", a)
		}
	}
}

func validateMasqueradeBits(c *Config, bad func(string, ...any)) {
	if b := *c.IPTables.MasqueradeBit; b < 0 || b > 31 {
		bad("iptables.masqueradeBit (--iptables-masquerade-bit) %d: must be in 0..31", b)
	}
	if b := *c.NFTables.MasqueradeBit; b < 0 || b > 31 {
		bad("nftables.masqueradeBit %d: must be in 0..31", b)
	}
}

// validateIPVS checks the ipvs section (its sync periods are checked with
// the mode's).
func validateIPVS(c *Config, bad func(string, ...any)) {
	if s := c.IPVS.Scheduler; s != "" && !slices.Contains(ipvsSchedulers, s) {
		bad("ipvs.scheduler (--ipvs-scheduler) %q: must be one of %s", s, strings.Join(ipvsSchedulers, ", "))
	}
	for _, cidr := range c.IPVS.ExcludeCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad("ipvs.excludeCIDRs (--ipvs-exclude-cidrs) %q: not a CIDR", cidr)
		}
	}
	checkNotNegative(bad, map[string]time.Duration{
		"ipvs.tcpTimeout (--ipvs-tcp-timeout)":       c.IPVS.TCPTimeout.Duration,
		"ipvs.tcpFinTimeout (--ipvs-tcpfin-timeout)": c.IPVS.TCPFinTimeout.Duration,
		"ipvs.udpTimeout (--ipvs-udp-timeout)":       c.IPVS.UDPTimeout.Duration,
	})
}

func validateConntrack(c *Config, bad func(string, ...any)) {
	checkNotNegative(bad, map[string]time.Duration{
		"conntrack.tcpEstablishedTimeout (--conntrack-tcp-timeout-established)": c.Conntrack.TCPEstablishedTimeout.Duration,
		"conntrack.tcpCloseWaitTimeout (--conntrack-tcp-timeout-close-wait)":    c.Conntrack.TCPCloseWaitTimeout.Duration,
		"conntrack.udpTimeout (--conntrack-udp-timeout)":                        c.Conntrack.UDPTimeout.Duration,
		"conntrack.udpStreamTimeout (--conntrack-udp-timeout-stream)":           c.Conntrack.UDPStreamTimeout.Duration,
	})
	if *c.Conntrack.MaxPerCore < 0 {
		bad("conntrack.maxPerCore (--conntrack-max-per-core) %d: must not be negative", *c.Conntrack.MaxPerCore)
	}
	if *c.Conntrack.Min < 0 {
		bad("conntrack.min (--conntrack-min) %d: must not be negative", *c.Conntrack.Min)
	}
}

// validateProcess checks the settings of the process itself: OOM score,
// API client and servers.
func validateProcess(c *Config, bad func(string, ...any)) {
	if v := *c.OOMScoreAdj; v < -1000 || v > 1000 {
		bad("oomScoreAdj (--oom-score-adj) %d: must be in -1000..1000", v)
	}
	if c.ConfigSyncPeriod.Duration <= 0 {
		bad("configSyncPeriod (--config-sync-period) %v: must be positive", c.ConfigSyncPeriod.Duration)
	}
	if c.ClientConnection.QPS < 0 || c.ClientConnection.Burst < 0 {
		bad("clientConnection qps %v / burst %d (--kube-api-qps, --kube-api-burst): must not be negative", c.ClientConnection.QPS, c.ClientConnection.Burst)
	}
	for name, addr := range map[string]string{
		"healthzBindAddress (--healthz-bind-address)": c.HealthzBindAddress,
		"metricsBindAddress (--metrics-bind-address)": c.MetricsBindAddress,
	} {
		if err := checkBindAddress(addr); err != nil {
			bad("%s %q: %v", name, addr, err)
		}
	}
}

// checkNotNegative reports each named duration below zero.
func checkNotNegative(bad func(string, ...any), durations map[string]time.Duration) {
	for name, d := range durations {
		if d < 0 {
			bad("%s %v: must not be negative", name, d)
		}
	}
}

// checkPeriods checks the sync periods of configuration section, set by
// the flags --<flags>-sync-period and --<flags>-min-sync-period.
func checkPeriods(bad func(string, ...any), section, flags string, sync, minSync time.Duration) {
	if sync <= 0 {
		bad("%s.syncPeriod (--%s-sync-period) %v: must be positive", section, flags, sync)
	}
	if minSync < 0 {
		bad("%s.minSyncPeriod (--%s-min-sync-period) %v: must not be negative", section, flags, minSync)
	}
	if minSync > sync {
		bad("%s.minSyncPeriod %v (--%s-min-sync-period) must not be greater than %s.syncPeriod %v", section, minSync, flags, section, sync)
	}
}

// checkBindAddress accepts "" (server disabled) or "ip:port".
func checkBindAddress(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want ip:port: %w", err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("not an IP address: %q", host)
	}
	if _, err := netip.ParseAddrPort(net.JoinHostPort("0.0.0.0", port)); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// parseClusterCIDRs parses the comma-separated --cluster-cidr: at most one
// CIDR per family.
func parseClusterCIDRs(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	seen := map[bool]bool{}
	for _, part := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", part)
		}
		if seen[p.Addr().Is4()] {
			return nil, fmt.Errorf("%q: more than one CIDR of the same IP family", s)
		}
		seen[p.Addr().Is4()] = true
		out = append(out, p.Masked())
	}
	return out, nil
}

// proxyPortRange parses portRange (--proxy-port-range): "begin-end",
// "begin+offset" or one port; "", "0" and "0-0" mean kernel-chosen ports,
// as in kube-proxy.
func proxyPortRange(c *Config) (utilnet.PortRange, error) {
	switch c.PortRange {
	case "", "0", "0-0":
		return utilnet.PortRange{}, nil
	}
	r, err := utilnet.ParsePortRange(c.PortRange)
	if err != nil {
		return utilnet.PortRange{}, err
	}
	if r.Base < 1 {
		return utilnet.PortRange{}, fmt.Errorf("%q starts below port 1", c.PortRange)
	}
	return *r, nil
}
