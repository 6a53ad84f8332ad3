//go:build kind

package kind

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Chains only one mode writes: after a switch away from a mode none of its
// chains may be left on any node.
var modeChains = map[string][]string{
	"iptables":  {"KUBE-SVC-", "KUBE-SEP-", "KUBE-SERVICES", "KUBE-NODEPORTS", "KPROXY-SVCS-"},
	"userspace": {"KPROXY-US-"},
}

// maxSwitchOutage: how long traffic may stop while a node's kproxy restarts
// in another mode. Into userspace mode the iptables rules keep carrying the
// traffic until the new pod has synced (measured ≤ 2 s). Out of userspace
// mode the old process was the datapath, and the DaemonSet creates the new
// pod only once the old one is gone, so the outage is the whole pod
// replacement plus kproxy's first sync: 5.6–8.7 s measured on this 2-core
// machine, most of it kubelet and DaemonSet-controller time.
var maxSwitchOutage = map[string]float64{ // seconds, by the mode switched to
	"userspace": 5,
	"iptables":  12,
}

// testModeSwitch: re-running the deploy for userspace mode, then for
// iptables mode, under constant requests: traffic comes back within seconds
// and nothing of the old mode stays on any node.
func testModeSwitch(t *testing.T, ctx context.Context) {
	for _, step := range []struct{ to, from string }{{"userspace", "iptables"}, {"iptables", "userspace"}} {
		loads := startLoads(t, ctx)
		kc.deploy(t, step.to)
		if err := waitDaemonSet(ctx, "kube-system", "kproxy", 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		worst := longestOutage(t, loads)
		t.Logf("switch to %s: longest outage %.1fs", step.to, worst)
		if limit := maxSwitchOutage[step.to]; worst > limit {
			t.Errorf("switch to %s: traffic stopped for %.1fs (want ≤ %.0fs)", step.to, worst, limit)
		}
		for _, n := range kc.nodes {
			dump, err := iptablesSave(n)
			if err != nil {
				t.Fatal(err)
			}
			if left := chainsWithPrefix(dump, modeChains[step.from]...); len(left) > 0 {
				t.Errorf("%s after the switch to %s: %s chains left: %v", n.name, step.to, step.from, left)
			}
			if len(chainsWithPrefix(dump, modeChains[step.to]...)) == 0 {
				t.Errorf("%s: no %s chains after the switch to it", n.name, step.to)
			}
		}
		testClusterIP(t, ctx)
		testNodePortAndExternalIP(t, ctx)
	}
}

// testUnsupportedMode: ipvs mode on a kernel without IPVS: the new kproxy
// pod fails clearly and never reports Ready (the rolling update stops at
// that node, the others keep serving); deploying iptables mode again heals
// the node.
func testUnsupportedMode(t *testing.T, ctx context.Context) {
	if _, err := kc.onNode(kc.nodes[0], "test", "-e", "/proc/sys/net/ipv4/vs/conntrack"); err == nil {
		t.Skip("this kernel has IPVS: ipvs mode is supported here")
	}
	// The rollout cannot finish: deploy/kind-up.sh fails after its timeout.
	cmd := exec.Command(kc.script, "deploy", "ipvs")
	cmd.Env = append(os.Environ(), "KPROXY_ROLLOUT_TIMEOUT=60s")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("deploying ipvs mode on a kernel without IPVS succeeded:\n%s", out)
	}
	pod, err := waitFailingPod(ctx)
	if err != nil {
		t.Error(err)
	} else {
		logs, _ := kc.kubectl("-n", "kube-system", "logs", pod, "--previous")
		if !strings.Contains(strings.ToLower(logs), "ipvs") {
			t.Errorf("%s: the log does not say why ipvs mode cannot run:\n%s", pod, logs)
		}
	}
	testClusterIP(t, ctx)
	kc.deploy(t, "iptables")
	if err := waitDaemonSet(ctx, "kube-system", "kproxy", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// waitFailingPod finds the kproxy pod of the new (ipvs) template: it must
// have restarted and must not be Ready.
func waitFailingPod(ctx context.Context) (string, error) {
	var name string
	err := eventually(90*time.Second, func() error {
		pods, err := kc.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=kproxy"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if !hasArg(&p, "--proxy-mode=ipvs") {
				continue
			}
			name = p.Name
			if podReady(&p) {
				return fmt.Errorf("%s (ipvs mode, no IPVS in the kernel) is Ready", p.Name)
			}
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount == 0 {
				return fmt.Errorf("%s has not failed yet", p.Name)
			}
			return nil
		}
		return fmt.Errorf("no ipvs-mode kproxy pod")
	})
	return name, err
}

func hasArg(p *corev1.Pod, arg string) bool {
	for _, a := range p.Spec.Containers[0].Args {
		if a == arg {
			return true
		}
	}
	return false
}
