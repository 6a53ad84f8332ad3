package ipvs

// Mode switch with the ipvs leg (issue 7): the real kproxy binary, built
// static, runs in the VM against testrig's kube-apiserver on the host, in
// the sequence iptables → ipvs → userspace → iptables, each mode started
// over the previous one's leftovers. TestGuestModeSwitch (modeswitch_guest_test.go)
// is the guest side; cmd/kproxy/faults' TestModeSwitch is the host-kernel
// version without ipvs.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

const (
	guestKproxy           = "/usr/local/bin/kproxy"
	guestSwitchKubeconfig = "/etc/kproxy/modeswitch.kubeconfig"
	switchWebIP           = "10.96.201.1"
)

// TestVMModeSwitch boots the VM once with the kproxy binary and runs
// TestGuestModeSwitch in it.
func TestVMModeSwitch(t *testing.T) {
	prepareVM(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 1})
	cp := testrig.StartControlPlane(t, topo)
	ctx := context.Background()
	c := cp.Client
	if _, err := c.CoreV1().Nodes().Create(ctx, makeNode(e2eNode, e2eGuestIP), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := makeService("e2e", "web", switchWebIP, []string{"80"})
	if err := createService(ctx, c, web, makeSlice(web, ep(e2ePodIP+"@"+e2eNode))); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(cp.KubeProxyKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// Static: the guest has only the base image's libraries.
	bin := filepath.Join(t.TempDir(), "kproxy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kproxy")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static kproxy: %v\n%s", err, out)
	}
	kp, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestModeSwitch$'", "-test.timeout", "4m"},
		files:   map[string][]byte{guestSwitchKubeconfig: kubeconfig, guestKproxy: kp},
		netns:   cp.Netns,
		mem:     "1024M",
		timeout: 5 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestGuestModeSwitch") {
		t.Error("TestGuestModeSwitch did not pass in the guest")
	}
}
