package deploy

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// clientLoop connects to a ClusterIP over and over (a fresh connection each
// time) and counts what happened.
type clientLoop struct {
	mu       sync.Mutex
	ok, fail int
	byName   map[string]int
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startClientLoop(ns, vip string) *clientLoop {
	l := &clientLoop{byName: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			r, err := testrig.ProbeTCP(ns, vip, 2*time.Second)
			l.mu.Lock()
			if err != nil {
				l.fail++
				l.failures = append(l.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			} else {
				l.ok++
				l.byName[r.Name]++
			}
			l.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

// waitFor waits (bounded) until cond holds for the loop's counters.
func (l *clientLoop) waitFor(t *testing.T, what string, limit time.Duration, cond func(ok int, byName map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		l.mu.Lock()
		done := cond(l.ok, l.byName)
		ok, fail := l.ok, l.fail
		l.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client loop: %s did not happen within %v (%d answered, %d failed)", what, limit, ok, fail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *clientLoop) finish() (ok, fail int, failures []string) {
	close(l.stop)
	<-l.done
	return l.ok, l.fail, l.failures
}

// kproxyArgs are the flags tests run kproxy (iptables mode) with on node.
func kproxyArgs(cp *testrig.ControlPlane, node *testrig.Node) []string {
	return []string{
		"--kubeconfig=" + cp.KubeProxyKubeconfig,
		"--proxy-mode=iptables",
		"--hostname-override=" + node.Name,
		"--cluster-cidr=" + testrig.ClusterCIDR,
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
		"--conntrack-max-per-core=0", // nf_conntrack_max is host-wide
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"-v=2",
	}
}

// TestTakeOver replaces a running upstream kube-proxy (iptables mode) on
// node2 with kproxy while a client in node2's pod connects to a ClusterIP in
// a loop: kube-proxy is stopped (its rules stay), kproxy starts, becomes
// healthy, and proves it is in charge by following an endpoint change. No
// connection may fail at any point. Afterwards node2's rules must have no
// duplicated rule (e.g. a second jump from a built-in chain) and no chain
// kube-proxy left behind: they must equal, chain for chain and rule for rule,
// the rules of a fresh kproxy on node3 (same Services, never had kube-proxy).
func TestTakeOver(t *testing.T) {
	topo, cp := cluster(t)
	testrig.CheckRootNetnsUnchanged(t)
	bin := testrig.RequireKproxyBinary(t)
	upstream := testrig.RequireUpstream(t)
	node, fresh := topo.Node(2), topo.Node(3)
	b0, b1 := topo.Node(1).Pods[0], topo.Node(1).Pods[1]
	for _, p := range []*testrig.Pod{b0, b1} {
		testrig.StartEchoServers(t, p.Netns, p.Name, p.IP, []int{8080}, testrig.TCP)
	}
	svc := webService(t, cp, "deploy-takeover", b0)
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	client := node.Pods[0].Netns

	kubeProxy := testrig.StartProcess(t, node.Netns, filepath.Join(upstream, testrig.BinKubeProxy),
		"--kubeconfig="+cp.KubeProxyKubeconfig,
		"--proxy-mode=iptables",
		"--hostname-override="+node.Name,
		"--cluster-cidr="+testrig.ClusterCIDR,
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
	)
	waitAnsweredBy(t, client, vip, b0.Name, 60*time.Second)

	loop := startClientLoop(client, vip)
	defer func() {
		select {
		case <-loop.done:
		default:
			loop.finish()
		}
	}()
	loop.waitFor(t, "10 answers through kube-proxy", 30*time.Second, func(ok int, _ map[string]int) bool { return ok >= 10 })

	if err := kubeProxy.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(testrig.Run(t, node.Netns, "iptables-save", "-t", "nat"), "-A KUBE-SERVICES") {
		t.Fatal("kube-proxy removed its rules on exit; nothing to take over")
	}
	loop.waitFor(t, "10 more answers with no proxy running", 30*time.Second, func(ok int, _ map[string]int) bool { return ok >= 20 })

	kp := testrig.StartProcess(t, node.Netns, append([]string{bin}, kproxyArgs(cp, node)...)...)
	waitHTTP200(t, node.Netns, "http://127.0.0.1:10256/healthz", kp, 60*time.Second)
	setBackends(t, cp, "deploy-takeover", b1)
	loop.waitFor(t, "an answer from the new endpoint (kproxy in charge)", 30*time.Second, func(_ int, by map[string]int) bool { return by[b1.Name] > 0 })
	okAt := loop.ok
	loop.waitFor(t, "10 answers after the switch", 30*time.Second, func(ok int, _ map[string]int) bool { return ok >= okAt+10 })
	ok, fail, failures := loop.finish()
	t.Logf("client loop: %d answered (%v), %d failed", ok, loop.byName, fail)
	if fail != 0 {
		t.Errorf("%d connections failed during the take-over:\n%s", fail, strings.Join(failures, "\n"))
	}

	// The reference: kproxy on a node that never ran kube-proxy.
	ref := testrig.StartProcess(t, fresh.Netns, append([]string{bin}, kproxyArgs(cp, fresh)...)...)
	waitHTTP200(t, fresh.Netns, "http://127.0.0.1:10256/healthz", ref, 60*time.Second)
	waitAnsweredBy(t, fresh.Pods[0].Netns, vip, b1.Name, 30*time.Second)
	// Both have synced the same Services (healthz), so their rules can be compared.
	// kube-proxy set route_localnet=1 (kproxy never does by default) and
	// guarded it with an anti-martian DROP in KUBE-FIREWALL, a chain kubelet
	// shares and kproxy never empties. With the sysctl still 1 that rule must
	// stay; it is the one expected difference (MIGRATION.md says how to drop
	// both).
	localnet := strings.TrimSpace(testrig.Run(t, node.Netns, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet"))
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		got := normalizeRules(testrig.Run(t, node.Netns, save))
		if save == "iptables-save" && localnet == "1" {
			got = slices.DeleteFunc(got, func(l string) bool {
				return strings.HasPrefix(l, "-A KUBE-FIREWALL ") && strings.Contains(l, "block incoming localnet connections")
			})
		}
		want := normalizeRules(testrig.Run(t, fresh.Netns, save))
		// Tables cannot be deleted, and kube-proxy's empty KUBE-FIREWALL
		// (a chain kubelet shares, which cleanup leaves) is inert: compare
		// what can carry traffic decisions.
		got, want = withoutInert(got), withoutInert(want)
		for _, d := range duplicateRules(got) {
			t.Errorf("%s on %s after the take-over: duplicated rule %q", save, node.Name, d)
		}
		if g, w := chainSet(got), chainSet(want); !slices.Equal(g, w) {
			t.Errorf("%s chains after the take-over differ from a fresh kproxy's:\n took over: %q\n fresh:     %q", save, g, w)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s after the take-over differs from a fresh kproxy's:\n%s", save, lineDiff(got, want))
		}
	}
}

var counters = regexp.MustCompile(` \[\d+:\d+\]$`)

// normalizeRules drops comment lines (they carry dates) and counters from
// iptables-save output.
func normalizeRules(save string) []string {
	var out []string
	for _, line := range strings.Split(save, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, counters.ReplaceAllString(line, ""))
	}
	return out
}

// duplicateRules returns "-A" lines that appear twice in the same table.
func duplicateRules(lines []string) []string {
	var dups []string
	seen := map[string]bool{}
	table := ""
	for _, l := range lines {
		if strings.HasPrefix(l, "*") {
			table = l
			continue
		}
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		key := table + " " + l
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
	}
	return dups
}

// chainSet lists "table chain" for every chain declared.
// withoutInert drops table headers, COMMIT lines, built-in chain
// declarations, and an empty KUBE-FIREWALL chain with its jumps.
func withoutInert(lines []string) []string {
	firewallUsed := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "-A KUBE-FIREWALL ") })
	var out []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "*"), l == "COMMIT":
		case strings.HasPrefix(l, ":") && !strings.HasSuffix(l, " -"):
			// built-in chain with a policy
		case !firewallUsed && (l == ":KUBE-FIREWALL -" || strings.HasSuffix(l, " -j KUBE-FIREWALL")):
		default:
			out = append(out, l)
		}
	}
	return out
}

func chainSet(lines []string) []string {
	var out []string
	table := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			out = append(out, table+" "+strings.Fields(l[1:])[0])
		}
	}
	sort.Strings(out)
	return out
}

// lineDiff lists lines only in got (+) or only in want (-).
func lineDiff(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	var b strings.Builder
	for _, l := range got {
		if count[l] > 0 {
			count[l]--
			continue
		}
		fmt.Fprintf(&b, "+ %s\n", l)
	}
	for _, l := range want {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
			count[l]--
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}
