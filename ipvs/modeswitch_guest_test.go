package ipvs

// Guest side of TestVMModeSwitch: runs the kproxy binary in the VM's root
// namespace (the VM is the node) in the sequence iptables → ipvs →
// userspace → iptables, each started over the previous one's leftovers
// (SIGTERM leaves the rules), and checks in every phase that the ClusterIP
// answers once kproxy synced and that nothing of the previous mode
// remains; then "kproxy --cleanup" must return the node to its state
// before kproxy, also from the ipvs and iptables modes' rules at once.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// guestNodeState is everything a mode may leave in the guest: the full
// iptables-save of every table (without counters and comment lines),
// ipsets, the IPVS table, interfaces and addresses.
func guestNodeState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"raw", "mangle", "nat", "filter"} {
		out := testrig.Run(t, "", "iptables-save", "-t", table)
		for _, l := range strings.Split(out, "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			b.WriteString(regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(l, "[0:0]") + "\n")
		}
	}
	sets := strings.Fields(testrig.Run(t, "", "ipset", "list", "-n"))
	slices.Sort(sets)
	b.WriteString("--- ipsets\n" + strings.Join(sets, "\n") + "\n")
	vs, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		t.Fatalf("read the IPVS table: %v", err)
	}
	// Real servers' connection counters are not state a mode leaves.
	b.WriteString("--- ip_vs\n" + regexp.MustCompile(`(?m)^(\s+-> \S+\s+\S+\s+\d+)\s+\d+\s+\d+\s*$`).ReplaceAllString(string(vs), "$1"))
	links := testrig.Run(t, "", "ip", "-o", "link", "show")
	b.WriteString("--- links\n" + regexp.MustCompile(`(?m)^\d+: (\S+).*$`).ReplaceAllString(links, "$1"))
	// IPv6 autoconfiguration on eth0 (qemu's router advertisements), DAD
	// and lifetimes are the kernel's, not a mode's.
	addrs := regexp.MustCompile(`(?m)^.* dynamic .*\n`).ReplaceAllString(testrig.Run(t, "", "ip", "-o", "addr", "show"), "")
	addrs = regexp.MustCompile(` tentative| valid_lft \S+ preferred_lft \S+`).ReplaceAllString(addrs, "")
	b.WriteString("--- addresses\n" + addrs)
	return b.String()
}

var (
	iptablesModeChains  = regexp.MustCompile(`(?m)^:KUBE-(SVC|SVL|SEP|EXT|FW)-\S+`)
	userspaceModeChains = regexp.MustCompile(`(?m)^:KPROXY-US-\S+`)
	anyKubeChain        = regexp.MustCompile(`(?m)^:KUBE-\S+`)
	kubeSets            = regexp.MustCompile(`(?m)^KUBE-\S+$`)
	ipvsInterface       = regexp.MustCompile(`(?m)^` + Interface + `\b`)
	virtualServers      = regexp.MustCompile(`(?m)^(TCP|UDP|SCTP)\s+\S+`)
)

// stableState returns the guest state once two reads 300 ms apart agree
// (a sync may still be writing when the Service first answers).
func stableState(t *testing.T, kp *testrig.Process) string {
	t.Helper()
	prev := guestNodeState(t)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		cur := guestNodeState(t)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	t.Fatalf("the node's state did not settle within 30s:\n%s", kp.Tail(30))
	return ""
}

var errNotSynced = errors.New("kproxy has not synced yet")

// kproxySynced reports whether the running kproxy made a successful sync
// and has no Service or endpoint change pending (its metrics).
func kproxySynced() bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	m := string(body)
	return regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{[^}]*\} [1-9]`).MatchString(m) &&
		regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_service_changes_pending 0$`).MatchString(m) &&
		regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_endpoint_changes_pending 0$`).MatchString(m)
}

// guestKproxyArgs is the command line of the guest's kproxy in mode: the
// VM is node e2eNode, pods are in testrig.ClusterCIDR, conntrack sysctls
// are left alone, metrics and health checks on testrig's addresses.
// Extra flags come last, so they override these.
func guestKproxyArgs(mode, kubeconfig string, extra ...string) []string {
	return append([]string{guestKproxy, "--proxy-mode=" + mode,
		"--kubeconfig=" + kubeconfig, "--hostname-override=" + e2eNode,
		"--cluster-cidr=" + testrig.ClusterCIDR, "--conntrack-max-per-core=0",
		"--metrics-bind-address=" + testrig.KproxyMetricsAddr, "--healthz-bind-address=" + testrig.KproxyHealthzAddr,
		"--iptables-min-sync-period=100ms", "--v=2"}, extra...)
}

func TestGuestModeSwitch(t *testing.T) {
	requireVM(t)
	if _, err := os.Stat(guestSwitchKubeconfig); err != nil {
		t.Skip("no kubeconfig: TestVMModeSwitch provides one")
	}
	pod := plumbNetns(t, "pod", "vpod", e2ePodIP, "10.244.200.1")
	client := plumbNetns(t, "cli", "vcli", "10.244.201.10", "10.244.201.1")
	testrig.StartEchoServers(t, pod, "e2epod", e2ePodIP, []int{8080}, testrig.TCP)
	// The VM is the node: its forwarding setting is the test's own.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	baseline := guestNodeState(t)
	t.Cleanup(func() { testrig.Exec("", guestKproxy, "--cleanup", "--conntrack-max-per-core=0") })

	phase := func(mode string) string {
		t.Helper()
		start := time.Now()
		kp := testrig.StartProcess(t, "", guestKproxyArgs(mode, guestSwitchKubeconfig)...)
		// Traffic counts once this process has synced: until then the
		// previous mode's leftovers may still be what answers.
		var last error
		for {
			var r testrig.Reply
			err := errNotSynced
			if kproxySynced() {
				r, err = testrig.ProbeTCP(client, switchWebIP+":80", 2*time.Second)
			}
			if err == nil && r.Name == "e2epod" {
				break
			}
			last = err
			if exited, werr := kp.Exited(); exited {
				t.Fatalf("%s: kproxy exited (%v):\n%s", mode, werr, kp.Tail(40))
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("%s: %s:80 not answered within 60s (%+v, %v):\n%s", mode, switchWebIP, r, last, kp.Tail(40))
			}
			time.Sleep(200 * time.Millisecond)
		}
		st := stableState(t, kp)
		t.Logf("%s: answering after %.1fs", mode, time.Since(start).Seconds())
		if err := kp.Stop(); err != nil {
			t.Errorf("stop %s: %v", mode, err)
		}
		// What this mode must not hold of the others.
		if mode != "iptables" {
			if m := iptablesModeChains.FindAllString(st, -1); len(m) > 0 {
				t.Errorf("%s phase holds iptables-mode chains %q", mode, m)
			}
		}
		if mode != "ipvs" {
			if ipvsInterface.MatchString(st) || virtualServers.MatchString(st) || kubeSets.MatchString(st) {
				t.Errorf("%s phase holds ipvs-mode state (kube-ipvs0, virtual servers or KUBE-* sets):\n%s", mode, st)
			}
		}
		if mode != "userspace" && userspaceModeChains.MatchString(st) {
			t.Errorf("%s phase holds userspace chains %q", mode, userspaceModeChains.FindAllString(st, -1))
		}
		if mode == "userspace" && anyKubeChain.MatchString(st) {
			t.Errorf("userspace phase holds KUBE-* chains %q", anyKubeChain.FindAllString(st, -1))
		}
		// And what it must hold itself.
		switch mode {
		case "iptables":
			if !iptablesModeChains.MatchString(st) {
				t.Errorf("iptables phase without KUBE-SVC-* chains:\n%s", st)
			}
		case "ipvs":
			if !ipvsInterface.MatchString(st) || !virtualServers.MatchString(st) || !kubeSets.MatchString(st) {
				t.Errorf("ipvs phase without kube-ipvs0, virtual servers or sets:\n%s", st)
			}
		case "userspace":
			if !userspaceModeChains.MatchString(st) {
				t.Errorf("userspace phase without KPROXY-US-* chains:\n%s", st)
			}
		}
		return st
	}
	first := phase("iptables")
	phase("ipvs")
	phase("userspace")
	second := phase("iptables")
	if second != first {
		t.Errorf("second iptables phase differs from the first:\n%s", stateDiff(first, second))
	}
	if out, err := testrig.Exec("", guestKproxy, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
		t.Fatalf("--cleanup: %v\n%s", err, out)
	}
	if got := guestNodeState(t); got != baseline {
		t.Errorf("after --cleanup the node differs from before kproxy:\n%s", stateDiff(baseline, got))
	}

	// Both modes' rules at once (the ipvs mode's jump rules into the
	// shared chains, the iptables mode's KUBE-SEP-* into KUBE-MARK-MASQ):
	// each cleanup is blocked by the other's references unless they are
	// untied first. The first phase's tables are restored over an ipvs
	// run's leftovers.
	phase("ipvs")
	tables := first[:strings.Index(first, "--- ipsets")]
	if out, err := testrig.ExecInput("", tables, "iptables-restore", "--noflush"); err != nil {
		t.Fatalf("restore the iptables mode's rules: %v\n%s", err, out)
	}
	if out, err := testrig.Exec("", guestKproxy, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
		t.Fatalf("--cleanup over both modes' rules: %v\n%s", err, out)
	}
	if got := guestNodeState(t); got != baseline {
		t.Errorf("after --cleanup over both modes' rules the node differs from before kproxy:\n%s", stateDiff(baseline, got))
	}
}

// stateDiff lists the lines only in a ("-") and only in b ("+"), with
// multiplicity; when both hold the same lines it says the order differs.
func stateDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := func(lines []string) map[string]int {
		m := map[string]int{}
		for _, l := range lines {
			m[l]++
		}
		return m
	}
	ca, cb := in(la), in(lb)
	var out []string
	for _, l := range la {
		if ca[l] > cb[l] {
			out = append(out, "- "+l)
			ca[l]--
		}
	}
	for _, l := range lb {
		if cb[l] > in(la)[l] {
			out = append(out, "+ "+l)
			cb[l]--
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("same lines in another order:\n%s\n--- versus\n%s", a, b)
	}
	return strings.Join(out, "\n")
}
