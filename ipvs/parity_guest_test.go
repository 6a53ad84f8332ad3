package ipvs

// Guest side of TestVMParity: upstream kube-proxy in ipvs mode, then
// kproxy, on the same objects with the same flags in the VM (the node);
// the node's state under each, normalized, must be the same but for the
// deviations listed in parityDeviations.

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

func TestGuestParity(t *testing.T) {
	requireVM(t)
	if _, err := os.Stat(guestParityKubeconfig); err != nil {
		t.Skip("no kubeconfig: TestVMParity provides one")
	}
	flags := []string{"--proxy-mode=ipvs", "--kubeconfig=" + guestParityKubeconfig, "--hostname-override=" + e2eNode,
		"--cluster-cidr=10.244.0.0/16", "--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256", "--v=2"}
	waitLinkLocal(t)
	baseline := guestNodeState(t)
	cleanup := func(after string) {
		t.Helper()
		if out, err := testrig.Exec("", guestKproxy, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
			t.Fatalf("kproxy --cleanup after %s: %v\n%s", after, err, out)
		}
		if st := guestNodeState(t); st != baseline {
			t.Fatalf("the node after %s and kproxy --cleanup differs from before:\n%s", after, stateDiff(baseline, st))
		}
	}
	t.Cleanup(func() { testrig.Exec("", guestKproxy, "--cleanup", "--conntrack-max-per-core=0") })

	upstream := settledParityState(t, append([]string{guestKubeProxy}, flags...))
	// kproxy started over kube-proxy's rules (a take-over), then alone.
	takeover := settledParityState(t, append([]string{guestKproxy}, flags...))
	cleanup("kube-proxy's ipvs mode and kproxy's take-over")
	kproxy := settledParityState(t, append([]string{guestKproxy}, flags...))
	cleanup("kproxy's ipvs mode")

	if d := stateDiffs(kproxy, takeover); len(d) > 0 {
		t.Errorf("after a take-over from kube-proxy the node differs from kproxy alone (- alone, + take-over):\n%s", strings.Join(d, "\n"))
	}
	var unexpected, design []string
	shared := sharedSets(upstream, kproxy)
	diffs := stateDiffs(upstream, kproxy)
	empty := emptyVirtualServers(diffs)
	for _, d := range diffs {
		switch {
		case parityDeviation(d), emptyServiceMember(d, empty):
		case sharedSetMember(d, shared):
			unexpected = append(unexpected, d)
		case ownLayout.MatchString(d):
			design = append(design, d)
		default:
			unexpected = append(unexpected, d)
		}
	}
	t.Logf("iptables and ipset lines that differ by design (README, ipvs mode): %d", len(design))
	if len(unexpected) > 0 {
		t.Errorf("kproxy's IPVS table or kube-ipvs0 differ from upstream's (- upstream only, + kproxy only):\n%s", strings.Join(unexpected, "\n"))
	}
	if !regexp.MustCompile(`(?m)^TCP 10\.96\.210\.9:80 rr persistent`).MatchString(upstream) {
		t.Errorf("upstream's state lacks the virtual servers it must hold:\n%s", upstream)
	}
}

// ownLayout matches the differences in sections where kproxy's ipvs mode
// has its own layout (its chains and ipsets; README "Differences from
// kube-proxy"); the virtual servers, kube-ipvs0's addresses and the
// members of the sets both create alike must match.
var ownLayout = regexp.MustCompile(`^(order of the lines in |[-+] )(nat|filter|mangle|raw|ipsets)\b`)

// sharedSets are the ipsets both states create with the same name and
// type: their members must match.
func sharedSets(upstream, kproxy string) map[string]bool {
	creates := func(st string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(sections(st)["ipsets"], "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == "create" {
				m[f[1]] = l
			}
		}
		return m
	}
	up, kp := creates(upstream), creates(kproxy)
	out := map[string]bool{}
	for name, l := range up {
		out[name] = kp[name] == l
	}
	return out
}

// sharedSetMember reports whether the difference d is a member of a set
// in shared.
func sharedSetMember(d string, shared map[string]bool) bool {
	f := strings.Fields(d)
	return len(f) > 3 && f[1] == "ipsets:" && f[2] == "add" && shared[f[3]]
}

// emptyVirtualServers are the "PROTO ip:port" of kube-proxy's virtual
// servers kproxy does not have because the port has no usable endpoint
// (the listed deviation).
func emptyVirtualServers(diffs []string) map[string]bool {
	out := map[string]bool{}
	for _, d := range diffs {
		if parityDeviation(d) && strings.HasPrefix(d, "- ip_vs: ") {
			f := strings.Fields(d)
			out[f[2]+" "+f[3]] = true
		}
	}
	return out
}

// emptyServiceMember reports whether d is kube-proxy's KUBE-CLUSTER-IP
// member for one of those: the same deviation (kproxy lists the port in
// its no-endpoint sets instead).
func emptyServiceMember(d string, empty map[string]bool) bool {
	f := strings.Fields(d)
	if len(f) != 5 || f[0] != "-" || f[3] != "KUBE-CLUSTER-IP" {
		return false
	}
	ip, protoPort, _ := strings.Cut(f[4], ",")
	proto, port, _ := strings.Cut(protoPort, ":")
	return empty[strings.ToUpper(proto)+" "+ip+":"+port]
}

// waitLinkLocal waits (bounded) until eth0's IPv6 link-local address has
// passed duplicate address detection: it appears some seconds after boot,
// and a baseline read before would miss it.
func waitLinkLocal(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out := testrig.Run(t, "", "ip", "-o", "-6", "addr", "show", "dev", "eth0", "scope", "link")
		if strings.Contains(out, "inet6 fe80") && !strings.Contains(out, "tentative") {
			return
		}
	}
	t.Log("eth0 has no settled IPv6 link-local address after 20s; going on")
}

// settledParityState runs the proxy until its metrics say it synced with
// nothing pending and the node's state stops changing, then stops it and
// returns that state.
func settledParityState(t *testing.T, args []string) string {
	t.Helper()
	p := testrig.StartProcess(t, "", args...)
	deadline := time.Now().Add(2 * time.Minute)
	for !kproxySynced() {
		if exited, err := p.Exited(); exited || time.Now().After(deadline) {
			t.Fatalf("%s did not sync (exited %v: %v):\n%s", args[0], exited, err, p.Tail(40))
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Both sync again shortly after the first sync (IPv6, health-check
	// ports): wait for the state to hold still for 3 s.
	prev, since := parityState(t), time.Now()
	for time.Since(since) < 3*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the node's state did not settle:\n%s", args[0], p.Tail(40))
		}
		time.Sleep(500 * time.Millisecond)
		if cur := parityState(t); cur != prev {
			prev, since = cur, time.Now()
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop %s: %v", args[0], err)
	}
	return prev
}

// parityState is the node's state in a form that compares across writers:
// iptables chains sorted by name, each with its rules in order; ipset
// members sorted; virtual servers sorted, each with its real servers
// sorted and without counters; kube-ipvs0's addresses sorted.
func parityState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"nat", "filter", "mangle", "raw"} {
		b.WriteString(sortedChains(table, testrig.Run(t, "", "iptables-save", "-t", table)))
	}
	b.WriteString(sortedIPSets(testrig.Run(t, "", "ipset", "save")))
	vs, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(sortedVirtualServers(string(vs)))
	addrs := regexp.MustCompile(`inet6? \S+`).FindAllString(testrig.Run(t, "", "ip", "-o", "addr", "show", "dev", Interface), -1)
	slices.Sort(addrs)
	b.WriteString("--- " + Interface + "\n" + strings.Join(addrs, "\n") + "\n")
	return b.String()
}
