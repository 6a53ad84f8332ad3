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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/conntrack"
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
	c := o.Config

	name, err := nodeName(c)
	if err != nil {
		return err
	}
	applyOOMScoreAdj(*c.OOMScoreAdj)
	backend, err := startupChecks(ctx, o)
	if err != nil {
		return err
	}
	rc, err := restConfig(c, o.Master)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	clusterCIDRs, _ := parseClusterCIDRs(c.ClusterCIDR) // validated
	node := waitForNode(ctx, client, name)
	families := withTools(chooseFamilies(clusterCIDRs, node), backend, exec.LookPath)
	klog.InfoS("Starting kproxy", "version", version(), "mode", c.Mode, "node", name, "families", families)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxier.NewMetrics(reg)

	if err := conntrack.Apply(ctx, conntrack.TunablesFromConfig(c.Conntrack), conntrack.FileSysctls{}); err != nil {
		// kube-proxy goes on too: a read-only /proc/sys must not stop the
		// rules from being programmed.
		klog.ErrorS(err, "Could not apply all conntrack sysctls")
	}

	local, err := localDetector(c, clusterCIDRs, node)
	if err != nil {
		return err
	}
	klog.InfoS("Detecting local traffic", "mode", c.DetectLocalMode, "by", local)
	settings := modeSettings{cfg: c, local: local, metrics: xtables.NewMetrics(reg), registerer: reg,
		tcpBeLiberal: c.Conntrack.TCPBeLiberal || tcpBeLiberalSet(), userspace: o.Userspace, backend: backend}
	if err := cleanupLeftovers(ctx, settings, families, node != nil); err != nil {
		// Leftovers are untidy, not fatal: the current mode still works.
		klog.ErrorS(err, "Could not remove all leftovers of other modes and families")
	}
	backends, err := newBackends(settings, families)
	if err != nil {
		return err
	}
	m, _ := modeNamed(c.Mode) // startupChecks knows it
	minSync, syncPeriod := m.SyncPeriods(c)
	health := healthcheck.NewProxyHealth(healthcheck.ProxyHealthOptions{Timeout: 2 * syncPeriod, Metrics: metrics, Families: families})
	loopOpts := proxier.LoopOptions{
		Mode: string(c.Mode), MinSyncPeriod: minSync, SyncPeriod: syncPeriod,
		Backends: backends, Conntrack: map[proxier.Family]proxier.StaleFlowCleaner{},
		Health: health, Metrics: metrics, AfterSync: []proxier.AfterSync{health.AfterSync},
	}
	ifaceAddrs, listed := interfaceAddrs()
	for _, f := range families {
		cl, err := conntrack.New(conntrack.Options{Family: f, UnNATedTCP: m.UnNATedTCP})
		if err != nil {
			return err
		}
		defer cl.Close()
		loopOpts.Conntrack[f] = cl
		var hcAddrs []netip.Addr
		if listed {
			hcAddrs = healthCheckAddresses(c, f, node, ifaceAddrs)
		}
		if hcAddrs != nil && len(hcAddrs) == 0 {
			klog.ErrorS(nil, "No node address matches nodePortAddresses: no health check node port server for this family", "ipFamily", f, "nodePortAddresses", c.NodePortAddresses)
			continue
		}
		sh := healthcheck.NewServiceHealth(healthcheck.ServiceHealthOptions{Family: f, Healthy: health.Healthy, Addresses: hcAddrs})
		defer sh.Close()
		loopOpts.AfterSync = append(loopOpts.AfterSync, sh.AfterSync)
	}
	invalid := func(kind, obj string, err error) {
		metrics.InvalidObjects.WithLabelValues(kind).Inc()
		proxier.LogInvalid(kind, obj, err)
	}
	loop := proxier.NewLoop(proxier.NewTracker(name, families, invalid, time.Now()), loopOpts)

	errc := make(chan error, 4)
	serve := func(what, addr string, h http.Handler) {
		if addr != "" {
			go serveRetrying(ctx, what, addr, h, c.BindAddressHardFail, errc, serverRetryInterval)
		}
	}
	serve("metrics", c.MetricsBindAddress, withProfiling(metricsHandler(reg), c.EnableProfiling))
	serve("healthz", c.HealthzBindAddress, health.Handler())

	if o.ConfigFile != "" {
		go watchConfigFile(ctx, o.ConfigFile, configPollInterval, func() { errc <- errConfigChanged })
	}

	loopDone := make(chan struct{})
	go func() { loop.Run(ctx); close(loopDone) }()
	go func() {
		if err := proxier.StartInformers(ctx, client, name, c.ConfigSyncPeriod.Duration, loop); err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()

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

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// restConfig is the API client configuration: the in-cluster config
// without --kubeconfig and --master, protobuf with a JSON fallback,
// kube-proxy's QPS and burst.
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
	return rc, nil
}

// waitForNode fetches this node's Node object, retrying for up to nodeWait
// (kubelet may register after kproxy starts). nil when it never appears.
func waitForNode(ctx context.Context, client kubernetes.Interface, name string) *v1.Node {
	deadline := time.Now().Add(nodeWait)
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
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
