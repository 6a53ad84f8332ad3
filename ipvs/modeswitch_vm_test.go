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
	"strings"
	"testing"
	"time"
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
	cp := startGuestControlPlane(t, "e2e")
	ctx, c := context.Background(), cp.Client
	web := makeService("e2e", "web", switchWebIP, []string{"80"})
	if err := createService(ctx, c, web, makeSlice(web, ep(e2ePodIP+"@"+e2eNode))); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(cp.KubeProxyKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestModeSwitch$'", "-test.timeout", "4m"},
		files:   map[string][]byte{guestSwitchKubeconfig: kubeconfig, guestKproxy: buildStaticKproxy(t)},
		netns:   cp.Netns,
		mem:     "1024M",
		timeout: 5 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestGuestModeSwitch") {
		t.Error("TestGuestModeSwitch did not pass in the guest")
	}
}
