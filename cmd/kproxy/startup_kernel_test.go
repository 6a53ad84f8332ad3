package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// runBinary runs the kproxy binary in network namespace ns until it exits
// (at most a minute) and returns its exit code and stderr.
func runBinary(t *testing.T, ns string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testrig.Command(ctx, ns, append([]string{testrig.RequireKproxyBinary(t)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kproxy %s did not exit:\n%s", strings.Join(args, " "), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run kproxy: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// noAPI are the flags of a kproxy that must stop before it talks to an
// API server: none is reachable (the kubeconfig does not exist).
var noAPI = []string{"--kubeconfig=/nonexistent/kproxy-test.kubeconfig", "--hostname-override=node1",
	"--conntrack-max-per-core=0", "--healthz-bind-address=", "--metrics-bind-address="}

// TestIPVSModeWithoutIPVSFailsAtStart: this machine's kernel has no IPVS,
// so the real binary in ipvs mode must exit non-zero at once with one
// message naming what is missing and how to fix it, before it contacts
// the API server (a DaemonSet pod then crash-loops visibly instead of
// reporting Ready while every sync fails).
func TestIPVSModeWithoutIPVSFailsAtStart(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	if _, err := os.Stat("/proc/sys/net/ipv4/vs"); err == nil {
		t.Skip("this kernel has IPVS loaded; the IPVS VM tests cover ipvs mode")
	}
	ns := testrig.NewNetns(t, "noipvs")
	code, stderr := runBinary(t, ns, append([]string{"--proxy-mode=ipvs"}, noAPI...)...)
	t.Logf("exit %d:\n%s", code, stderr)
	if code == 0 {
		t.Fatal("kproxy in ipvs mode without IPVS exited 0")
	}
	for _, want := range []string{"this node cannot run --proxy-mode=ipvs", "IPVS: the kernel has no IPVS", "modprobe -a ip_vs", "--proxy-mode=iptables"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(stderr, "kproxy-test.kubeconfig") {
		t.Error("kproxy read its kubeconfig before checking the kernel")
	}
	var failed []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "E") {
			failed = append(failed, l)
		}
	}
	if len(failed) != 1 {
		t.Errorf("want one error line, got %d: %q", len(failed), failed)
	}
}

// TestStartupChoosesIPTablesBackend: the real binary picks the backend
// that holds the node's rules, logs it once, and --iptables-backend
// overrides it.
func TestStartupChoosesIPTablesBackend(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ns := testrig.NewNetns(t, "backend")
	testrig.Run(t, ns, "iptables-legacy", "-w", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, `backend="legacy"`},
		{[]string{"--iptables-backend=nft"}, `backend="nft"`},
	} {
		code, stderr := runBinary(t, ns, append(append([]string{"--proxy-mode=iptables"}, tc.flags...), noAPI...)...)
		if code == 0 || !strings.Contains(stderr, "kproxy-test.kubeconfig") {
			t.Errorf("%v: want a failure at the kubeconfig (exit %d):\n%s", tc.flags, code, stderr)
		}
		if n := strings.Count(stderr, `"Using iptables backend"`); n != 1 {
			t.Errorf("%v: %d backend log lines, want 1:\n%s", tc.flags, n, stderr)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: want %s:\n%s", tc.flags, tc.want, stderr)
		}
	}
}

// TestCleanupBothBackends: "kproxy --cleanup" removes kproxy's rules from
// both iptables backends (a node that switched backends keeps the old
// one's rules, which the kernel still evaluates).
func TestCleanupBothBackends(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	var rules, stderr bytes.Buffer
	if code := run([]string{"render", "-f", "testdata/cluster.yaml", "--hostname-override=node1", "--cluster-cidr=10.244.0.0/16"},
		nil, &rules, &stderr); code != 0 {
		t.Fatalf("render: %s", stderr.String())
	}
	ns := testrig.NewNetns(t, "cleanup")
	saves := map[string]string{"legacy": "iptables-legacy-save", "nft": "iptables-nft-save"}
	for b := range saves {
		if _, err := testrig.ExecInput(ns, rules.String(), "iptables-"+b+"-restore", "-w", "--noflush"); err != nil {
			t.Fatal(err)
		}
		// The jump kproxy (and kube-proxy) keeps in PREROUTING.
		testrig.Run(t, ns, "iptables-"+b, "-w", "-t", "nat", "-I", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
	}
	if code, out := runBinary(t, ns, "--cleanup", "--conntrack-max-per-core=0"); code != 0 {
		t.Fatalf("--cleanup exit %d:\n%s", code, out)
	}
	for b, save := range saves {
		out := testrig.Run(t, ns, save)
		if testrig.MentionsOwnChain(out) {
			t.Errorf("%s backend still holds kproxy's rules after --cleanup:\n%s", b, out)
		}
	}
}
