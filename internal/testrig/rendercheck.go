package testrig

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// RenderCheck compares a node's live ruleset with "kproxy render" of the
// objects now in the apiserver: the proof that kproxy converged on exactly
// what a fresh full sync would write.
type RenderCheck struct {
	T       *testing.T
	Bin     string // the kproxy binary
	CP      *ControlPlane
	Node    *Node
	Scratch string // a netns the render is restored into, for the kernel's canonical syntax
	Mode    string // --proxy-mode of the daemon; "" is iptables
}

// renderFlags are the traffic flags KproxyArgs gives the daemon, so that
// the render is what the daemon should have written.
func (c RenderCheck) renderFlags() []string {
	flags := []string{"--hostname-override=" + c.Node.Name, "--cluster-cidr=" + ClusterCIDR}
	if c.Mode != "" {
		flags = append(flags, "--proxy-mode="+c.Mode)
	}
	return flags
}

// nftables reports whether the daemon writes nftables rather than
// iptables rules.
func (c RenderCheck) nftables() bool { return c.Mode == "nftables" }

// Ruleset is the part of ns's ruleset the daemon owns, canonical:
// SavedOwnRules, or NFTRuleset in nftables mode.
func (c RenderCheck) Ruleset(ns string) (string, error) {
	if c.nftables() {
		return NFTRuleset(ns)
	}
	return SavedOwnRules(ns)
}

// load writes a render into the scratch namespace, replacing what an
// earlier load left there.
func (c RenderCheck) load(render string) error {
	if !c.nftables() {
		_, err := ExecInput(c.Scratch, render, "iptables-restore")
		return err
	}
	if NFTTableExists(c.Scratch) {
		if out, err := Exec(c.Scratch, "nft", "delete", "table", "ip", NFTTable); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	_, err := ExecInput(c.Scratch, render, "nft", "-f", "-")
	return err
}

// DumpObjects writes the Services, EndpointSlices, Nodes and ServiceCIDRs
// now in the apiserver as multi-document YAML, for "kproxy render".
func (c RenderCheck) DumpObjects(ctx context.Context) (string, error) {
	client := c.CP.Client
	svcs, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	eps, err := client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	cidrs, err := client.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	docs := withKind(svcs.Items, corev1.SchemeGroupVersion.WithKind("Service"))
	docs = append(docs, withKind(eps.Items, discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"))...)
	docs = append(docs, withKind(nodes.Items, corev1.SchemeGroupVersion.WithKind("Node"))...)
	docs = append(docs, withKind(cidrs.Items, networkingv1.SchemeGroupVersion.WithKind("ServiceCIDR"))...)
	var b strings.Builder
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	path := filepath.Join(c.T.TempDir(), "objects.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// withKind returns the listed items with their kind set (a list's items
// come without it, and "kproxy render" decodes by kind).
func withKind[T any, P interface {
	*T
	runtime.Object
}](items []T, gvk schema.GroupVersionKind) []any {
	out := make([]any, 0, len(items))
	for i := range items {
		p := P(&items[i])
		p.GetObjectKind().SetGroupVersionKind(gvk)
		out = append(out, p)
	}
	return out
}

// Expected is "kproxy render" of the objects in the apiserver, restored
// into the scratch namespace and saved back, so that it is in the
// kernel's canonical syntax like the node's ruleset.
func (c RenderCheck) Expected(ctx context.Context) (string, error) {
	path, err := c.DumpObjects(ctx)
	if err != nil {
		return "", fmt.Errorf("dump objects: %w", err)
	}
	out, err := Exec("", append([]string{c.Bin, "render", "-f", path}, c.renderFlags()...)...)
	if err != nil {
		return "", fmt.Errorf("kproxy render: %w", err)
	}
	if err := c.load(out); err != nil {
		return "", fmt.Errorf("load the render in %s: %w\n%s", c.Scratch, err, out)
	}
	return c.Ruleset(c.Scratch)
}

// WaitConverged waits until kp reports nothing pending and the node's
// ruleset equals a fresh full render of the apiserver's objects; it fails
// the test with the difference if that does not happen within 45 s.
func (c RenderCheck) WaitConverged(ctx context.Context, kp *Process, step string) string {
	c.T.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var got, want, why string
	for {
		if exited, err := kp.Exited(); exited {
			c.T.Fatalf("%s: kproxy exited (%v):\n%s", step, err, kp.Tail(40))
		}
		m, err := ScrapeMetrics(c.Node.Netns, KproxyMetricsAddr)
		switch {
		case err != nil:
			why = "metrics: " + err.Error()
		case !Synced(m):
			why = "kproxy reports pending changes"
		default:
			if want, err = c.Expected(ctx); err != nil {
				c.T.Fatalf("%s: %v", step, err)
			}
			if got, err = c.Ruleset(c.Node.Netns); err != nil {
				c.T.Fatalf("%s: %v", step, err)
			}
			if got == want {
				c.T.Logf("%s: converged, kernel == full render (%d chains, %d rules)", step, strings.Count(got, "\n:"), strings.Count(got, "\n-A"))
				return got
			}
			why = "kernel ruleset differs from a full render"
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("%s: not converged after 45s: %s\n--- kernel (node %s) ---\n%s--- full render ---\n%s--- diff (-kernel +render) ---\n%s",
				step, why, c.Node.Name, got, want, LineDiff(got, want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Synced reports whether kproxy's metrics m say it has applied everything
// it has been told: the last sync is not older than the last queued update
// and nothing is pending.
func Synced(m map[string]float64) bool {
	last, ok1 := m[`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`]
	queued, ok2 := m[`kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}`]
	return ok1 && ok2 && last >= queued &&
		m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0 &&
		m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] == 0
}

// ownChainsOutsideRender are chains kproxy keeps that a render does not
// print (canaries; kubelet's firewall chains it creates but never owns).
var ownChainsOutsideRender = []string{"KUBE-PROXY-CANARY", "KUBE-KUBELET-CANARY", "KUBE-FIREWALL"}

// SavedOwnRules is the nat and filter rules of our chains in ns, without
// counters, chains sorted by name, each chain's rules in kernel order.
func SavedOwnRules(ns string) (string, error) {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		out, err := Exec(ns, "iptables-save", "-t", table)
		if err != nil {
			return "", fmt.Errorf("iptables-save -t %s in %s: %w", table, ns, err)
		}
		chains := ownChainRules(out)
		names := make([]string, 0, len(chains))
		for c := range chains {
			names = append(names, c)
		}
		slices.Sort(names)
		fmt.Fprintf(&b, "*%s\n", table)
		for _, c := range names {
			fmt.Fprintf(&b, ":%s\n", c)
			for _, r := range chains[c] {
				b.WriteString(r + "\n")
			}
		}
	}
	return b.String(), nil
}

// ownChainRules maps every chain kproxy owns in one table's save (bucket
// chains too) to its rules, in kernel order.
func ownChainRules(save string) map[string][]string {
	chains := map[string][]string{}
	for _, line := range strings.Split(save, "\n") {
		var chain string
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":") && IsOwnChain(f[0][1:]):
			chain, line = f[0][1:], ""
		case len(f) > 1 && f[0] == "-A" && IsOwnChain(f[1]):
			chain = f[1]
		default:
			continue
		}
		if slices.Contains(ownChainsOutsideRender, chain) {
			continue
		}
		if _, ok := chains[chain]; !ok {
			chains[chain] = []string{}
		}
		if line != "" {
			chains[chain] = append(chains[chain], line)
		}
	}
	return chains
}

// LineDiff lists the lines only in a (-) and only in b (+).
func LineDiff(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out []string
	for l, n := range ca {
		if n > cb[l] {
			out = append(out, "- "+l)
		}
	}
	for l, n := range cb {
		if n > ca[l] {
			out = append(out, "+ "+l)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n") + "\n"
}
