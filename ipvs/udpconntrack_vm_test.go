package ipvs

// The ipvs leg of the UDP conntrack fault tests (issue 14):
// cmd/kproxy/faults' TestUDPFlowsAcrossRestart and
// TestUDPScaleToZeroAndBack run the iptables, nftables and userspace modes
// on the host kernel, which has no IP_VS. Here the static kproxy binary
// runs in --proxy-mode=ipvs in the VM against testrig's kube-apiserver on
// the host; TestGuestUDPConntrack (udpconntrack_guest_test.go) is the
// guest side and changes the endpoints itself with the admin kubeconfig.

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	guestUDPKubeconfig = "/etc/kproxy/udpconntrack.kubeconfig"
	guestUDPAdmin      = "/etc/kproxy/udpconntrack-admin.kubeconfig"
	udpNamespace       = "udpct"
)

// TestVMUDPConntrack boots the VM once for both scenarios.
func TestVMUDPConntrack(t *testing.T) {
	prepareVM(t)
	cp := startGuestControlPlane(t, udpNamespace)
	kubeconfig, admin := readKubeconfigs(t, cp)
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestUDPConntrack$'", "-test.timeout", "5m"},
		files:   map[string][]byte{guestUDPKubeconfig: kubeconfig, guestUDPAdmin: admin, guestKproxy: buildStaticKproxy(t)},
		netns:   cp.Netns,
		mem:     "1024M",
		timeout: 7 * time.Minute,
	})
	for _, sub := range []string{"ScaleToZeroAndBack", "FlowsAcrossRestart"} {
		if !strings.Contains(out, "--- PASS: TestGuestUDPConntrack/"+sub) {
			t.Errorf("TestGuestUDPConntrack/%s did not pass in the guest", sub)
		}
	}
	for _, m := range regexp.MustCompile(`FIGURE .*`).FindAllString(out, -1) {
		t.Log(m)
	}
}
