package main

import (
	"io"
	"testing"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/kproxy/kproxy/proxier"
)

// The userspace settings reach the mode's options: portRange from the
// config file (a flag overrides it), the timeouts from flags, defaults
// otherwise.
func TestUserspaceSettings(t *testing.T) {
	file := writeFile(t, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\nportRange: 30000-30009\n")
	for _, tc := range []struct {
		args  []string
		want  utilnet.PortRange
		udp   time.Duration
		tcp   time.Duration
		drain time.Duration
	}{
		{args: nil, want: utilnet.PortRange{}, udp: 30 * time.Second, tcp: time.Hour},
		{args: []string{"--proxy-port-range=0-0"}, want: utilnet.PortRange{}, udp: 30 * time.Second, tcp: time.Hour},
		{args: []string{"--config=" + file}, want: utilnet.PortRange{Base: 30000, Size: 10}, udp: 30 * time.Second, tcp: time.Hour},
		{args: []string{"--config=" + file, "--proxy-port-range=40000+4", "--udp-timeout=250ms", "--userspace-tcp-idle-timeout=10m", "--userspace-drain-timeout=1m"},
			want: utilnet.PortRange{Base: 40000, Size: 5}, udp: 250 * time.Millisecond, tcp: 10 * time.Minute, drain: time.Minute},
	} {
		o, err := parseOptions(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := userspaceOptions(modeSettings{cfg: o.Config, userspace: o.Userspace}, proxier.IPv4)
		if got.PortRange != tc.want || got.UDPIdleTimeout != tc.udp || got.TCPIdleTimeout != tc.tcp || got.DrainTimeout != tc.drain {
			t.Errorf("%v: port range %v, udp %v, tcp %v, drain %v; want %v, %v, %v, %v",
				tc.args, got.PortRange, got.UDPIdleTimeout, got.TCPIdleTimeout, got.DrainTimeout, tc.want, tc.udp, tc.tcp, tc.drain)
		}
	}
}
