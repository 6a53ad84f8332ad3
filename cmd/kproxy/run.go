package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/conntrack"
	"github.com/kproxy/kproxy/internal/apiwait"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/proxier/healthcheck"
)

// nodeWait bounds how long kproxy waits for its Node object at start (to
// learn its addresses and families); it then goes on without.
const nodeWait = 30 * time.Second

// runProxy is the daemon: it runs until SIGTERM or SIGINT, then stops
// cleanly and leaves the rules in place.
func runProxy(o *Options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d := &daemon{opts: o, cfg: o.Config}
	defer d.close()
	if err := d.checkAndConnect(ctx); err != nil {
		return err
	}
	d.learnNode(ctx)
	d.newMetrics()
	settings, err := d.prepareKernel(ctx)
	if err != nil {
		return err
	}
	if err := d.buildLoop(settings); err != nil {
		return err
	}
	return d.runUntilStopped(ctx, stop, settings)
}

// daemon is what runProxy builds, one step after the other.
type daemon struct {
	opts *Options
	cfg  *Config
	mode *mode

	// checkAndConnect
	name    string // this node's
	backend xtables.Backend
	client  *proxier.APIClient

	// learnNode
	clusterCIDRs []netip.Prefix
	node         *v1.Node // nil: it never appeared
	families     []proxier.Family

	// newMetrics
	reg     *prometheus.Registry
	metrics *proxier.Metrics

	// buildLoop
	health *healthcheck.ProxyHealth
	loop   *proxier.Loop
	closes []func() // released by close, the last first
}

// checkAndConnect checks that this node can run the mode, before it
// builds the API client.
func (d *daemon) checkAndConnect(ctx context.Context) error {
	var err error
	if d.name, err = nodeName(d.cfg); err != nil {
		return err
	}
	applyOOMScoreAdj(*d.cfg.OOMScoreAdj)
	if d.backend, err = startupChecks(ctx, d.opts); err != nil {
		return err
	}
	d.mode, _ = modeNamed(d.cfg.Mode) // startupChecks knows it
	rc, err := restConfig(d.cfg, d.opts.Master)
	if err != nil {
		return err
	}
	if d.client, err = proxier.NewAPIClient(rc); err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	return nil
}

// learnNode reads the Node object, if it comes, and picks the families.
func (d *daemon) learnNode(ctx context.Context) {
	d.clusterCIDRs, _ = parseClusterCIDRs(d.cfg.ClusterCIDR) // validated
	d.node = waitForNode(ctx, d.client, d.name)
	d.families = withTools(chooseFamilies(d.clusterCIDRs, d.node), d.backend, exec.LookPath)
	klog.InfoS("Starting kproxy", "version", version(), "mode", d.cfg.Mode, "node", d.name, "families", d.families)
}

// newMetrics builds the private registry /metrics serves.
func (d *daemon) newMetrics() {
	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = proxier.NewMetrics(d.reg)
}

// prepareKernel sets the conntrack sysctls and returns what the mode's
// Proxiers are built from.
func (d *daemon) prepareKernel(ctx context.Context) (modeSettings, error) {
	c := d.cfg
	if err := conntrack.Apply(ctx, conntrack.TunablesFromConfig(c.Conntrack), conntrack.FileSysctls{}); err != nil {
		// kube-proxy goes on too: a read-only /proc/sys must not stop the
		// rules from being programmed.
		klog.ErrorS(err, "Could not apply all conntrack sysctls")
	}
	local, err := localDetector(c, d.clusterCIDRs, d.node)
	if err != nil {
		return modeSettings{}, err
	}
	klog.InfoS("Detecting local traffic", "mode", c.DetectLocalMode, "by", local)
	settings := modeSettings{cfg: c, local: local, metrics: xtables.NewMetrics(d.reg), registerer: d.reg,
		tcpBeLiberal: c.Conntrack.TCPBeLiberal || tcpBeLiberalSet(), userspace: d.opts.Userspace, backend: d.backend}
	return settings, nil
}

// removeLeftovers removes what other modes and families left behind.
func (d *daemon) removeLeftovers(ctx context.Context, settings modeSettings) {
	if err := cleanupLeftovers(ctx, settings, d.families, d.node != nil); err != nil {
		// Leftovers are untidy, not fatal: the current mode still works.
		klog.ErrorS(err, "Could not remove all leftovers of other modes and families")
	}
}

// buildLoop builds the mode's Proxiers, the health checks and the
// conntrack cleaners, and the sync loop that drives them. It starts
// nothing.
func (d *daemon) buildLoop(settings modeSettings) error {
	backends, err := newBackends(settings, d.families)
	if err != nil {
		return err
	}
	minSync, syncPeriod := d.mode.SyncPeriods(d.cfg)
	d.health = healthcheck.NewProxyHealth(healthcheck.ProxyHealthOptions{Timeout: 2 * syncPeriod, Metrics: d.metrics, Families: d.families})
	loopOpts := proxier.LoopOptions{
		Mode: d.mode.Name, MinSyncPeriod: minSync, SyncPeriod: syncPeriod,
		Backends: backends, Conntrack: map[proxier.Family]proxier.StaleFlowCleaner{},
		Health: d.health, Metrics: d.metrics, AfterSync: []proxier.AfterSync{d.health.AfterSync},
		BeforeFullSync: relaxGCForFullSync,
		AfterFullSync:  releaseMemory,
	}
	ifaceAddrs, listed := interfaceAddrs()
	for _, f := range d.families {
		if err := d.addFamily(&loopOpts, f, ifaceAddrs, listed); err != nil {
			return err
		}
	}
	invalid := func(kind, obj string, err error) {
		d.metrics.InvalidObjects.WithLabelValues(kind).Inc()
		proxier.LogInvalid(kind, obj, err)
	}
	d.loop = proxier.NewLoop(proxier.NewTracker(d.name, d.families, invalid, time.Now()), loopOpts)
	return nil
}

// addFamily gives the loop family f's conntrack cleaner and
// healthCheckNodePort servers.
func (d *daemon) addFamily(loopOpts *proxier.LoopOptions, f proxier.Family, ifaceAddrs []ifaceAddr, listed bool) error {
	cl, err := conntrack.New(conntrack.Options{Family: f, UnNATedTCP: d.mode.UnNATedTCP})
	if err != nil {
		return err
	}
	d.closes = append(d.closes, func() { _ = cl.Close() })
	loopOpts.Conntrack[f] = cl
	var hcAddrs []netip.Addr
	if listed {
		hcAddrs = healthCheckAddresses(d.cfg, f, d.node, ifaceAddrs)
	}
	if hcAddrs != nil && len(hcAddrs) == 0 {
		klog.ErrorS(nil, "No node address matches nodePortAddresses: no health check node port server for this family", "ipFamily", f, "nodePortAddresses", d.cfg.NodePortAddresses)
		return nil
	}
	sh := healthcheck.NewServiceHealth(healthcheck.ServiceHealthOptions{Family: f, Healthy: d.health.Healthy, Addresses: hcAddrs})
	d.closes = append(d.closes, sh.Close)
	loopOpts.AfterSync = append(loopOpts.AfterSync, sh.AfterSync)
	return nil
}

// runUntilStopped starts the servers and the informers, removes the
// leftovers of other modes while the informers list the cluster, then
// starts the sync loop, and waits for a signal or a fatal error (a server
// that must listen, a changed --config file, the informers). The first
// sync waits for both.
func (d *daemon) runUntilStopped(ctx context.Context, stop context.CancelFunc, settings modeSettings) error {
	c := d.cfg
	errc := make(chan error, 4)
	serve := func(what, addr string, h http.Handler) {
		if addr != "" {
			go serveRetrying(ctx, what, addr, h, c.BindAddressHardFail, errc, serverRetryInterval)
		}
	}
	serve("metrics", c.MetricsBindAddress, withProfiling(metricsHandler(d.reg), c.EnableProfiling))
	serve("healthz", c.HealthzBindAddress, d.health.Handler())
	if d.opts.ConfigFile != "" {
		go watchConfigFile(ctx, d.opts.ConfigFile, configPollInterval, func() { errc <- errConfigChanged })
	}

	go func() {
		if err := proxier.StartInformers(ctx, d.client, d.name, c.ConfigSyncPeriod.Duration, d.loop); err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()
	d.removeLeftovers(ctx, settings)
	loopDone := make(chan struct{})
	go func() { d.loop.Run(ctx); close(loopDone) }()

	var err error
	select {
	case <-ctx.Done():
		klog.InfoS("Stopping; the rules stay in place")
	case err = <-errc:
		klog.ErrorS(err, "Stopping")
		stop()
	}
	<-loopDone
	return err
}

// close releases what buildLoop opened, the last first.
func (d *daemon) close() {
	for i := len(d.closes) - 1; i >= 0; i-- {
		d.closes[i]()
	}
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	// Uncompressed: the page is tens of KB, and each gzip writer the
	// handler pools holds about 1 MB between scrapes.
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, DisableCompression: true}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// restConfig is the API client configuration: the in-cluster config
// without --kubeconfig and --master, protobuf with a JSON fallback,
// kube-proxy's QPS and burst, and a dialer that waits for an apiserver
// that is down (so the informers resume as soon as it is back, without
// client-go's growing backoff).
func restConfig(c *Config, master string) (*rest.Config, error) {
	cc := c.ClientConnection
	var (
		rc  *rest.Config
		err error
	)
	if cc.Kubeconfig == "" && master == "" {
		klog.InfoS("Neither --kubeconfig nor --master given, using the in-cluster configuration")
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: cc.Kubeconfig},
			&clientcmd.ConfigOverrides{ClusterInfo: clientcmdapi.Cluster{Server: master}}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("API client configuration: %w", err)
	}
	rc.ContentType = cc.ContentType
	rc.AcceptContentTypes = cc.AcceptContentTypes
	if rc.AcceptContentTypes == "" && cc.ContentType == runtime.ContentTypeProtobuf {
		rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	rc.QPS, rc.Burst = cc.QPS, int(cc.Burst)
	rc.UserAgent = "kproxy/" + version()
	rc.Dial = apiwait.NewDialer().DialContext
	return rc, nil
}

// waitForNode fetches this node's Node object, retrying for up to nodeWait
// (kubelet may register after kproxy starts). nil when it never appears.
func waitForNode(ctx context.Context, client *proxier.APIClient, name string) *v1.Node {
	deadline := time.Now().Add(nodeWait)
	ctx, cancel := context.WithDeadline(ctx, deadline) // the dialer waits for a down apiserver
	defer cancel()
	for {
		n, err := client.Node(ctx, name)
		if err == nil {
			return n
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			klog.InfoS("Warning: cannot read this node's Node object, going on without its addresses", "node", name, "err", err)
			return nil
		}
		if !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("Waiting for the Node object", "node", name, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// chooseFamilies enables a family when --cluster-cidr or the Node's
// addresses include it; with neither, IPv4 only. The first family is the
// node's primary one.
func chooseFamilies(clusterCIDRs []netip.Prefix, node *v1.Node) []proxier.Family {
	has := map[proxier.Family]bool{}
	var order []proxier.Family
	add := func(f proxier.Family) {
		if !has[f] {
			has[f] = true
			order = append(order, f)
		}
	}
	if node != nil {
		for _, a := range node.Status.Addresses {
			if a.Type != v1.NodeInternalIP && a.Type != v1.NodeExternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				add(proxier.FamilyOf(ip.Unmap()))
			}
		}
	}
	for _, p := range clusterCIDRs {
		add(proxier.FamilyOf(p.Addr()))
	}
	if len(order) == 0 {
		add(proxier.IPv4)
	}
	return order
}

// withTools drops IPv6 when ip6tables (of the backend in use) is not
// installed (every mode needs it), as kube-proxy falls back to single
// stack; it logs why.
func withTools(families []proxier.Family, b xtables.Backend, lookPath func(string) (string, error)) []proxier.Family {
	out := families[:0:0]
	for _, f := range families {
		if f == proxier.IPv6 {
			if _, err := lookPath(xtables.Binary(proxier.IPv6, b, "")); err != nil {
				klog.InfoS("Warning: ip6tables is not installed, IPv6 Services are not proxied", "err", err)
				continue
			}
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		out = append(out, proxier.IPv4)
	}
	return out
}

// applyOOMScoreAdj sets the process's oom_score_adj; failures (e.g. no
// privilege) are only logged, as kube-proxy does.
func applyOOMScoreAdj(v int32) {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(int(v))), 0); err != nil {
		klog.V(1).InfoS("Could not set oom_score_adj", "value", v, "err", err)
	}
}

// tcpBeLiberalSet reports whether nf_conntrack_tcp_be_liberal is on in
// this network namespace (whoever set it): then out-of-window packets are
// not INVALID and the rule dropping INVALID packets must not be written.
func tcpBeLiberalSet() bool {
	b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
