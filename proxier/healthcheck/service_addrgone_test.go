package healthcheck

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// bindErr is the error net.Listen returns when bind fails with errno.
func bindErr(errno syscall.Errno) error {
	return &net.OpError{Op: "listen", Net: "tcp4", Err: os.NewSyscallError("bind", errno)}
}

// TestServiceHealthSkipsVanishedAddresses: of the selected addresses, one
// that is no longer on the node (EADDRNOTAVAIL) is skipped and the port is
// served on the others; with none left, or when another address fails
// otherwise (a busy port), the port fails as a whole, leaks no listener,
// and is retried at the next sync.
func TestServiceHealthSkipsVanishedAddresses(t *testing.T) {
	const here, gone, busy = "127.0.0.1", "198.51.100.31", "198.51.100.32"
	var open []net.Listener
	listen := func(network, hostport string) (net.Listener, error) {
		host, port, _ := net.SplitHostPort(hostport)
		switch host {
		case gone:
			return nil, bindErr(syscall.EADDRNOTAVAIL)
		case busy:
			return nil, bindErr(syscall.EADDRINUSE)
		}
		l, err := net.Listen(network, net.JoinHostPort(host, port))
		if err == nil {
			open = append(open, l)
		}
		return l, err
	}
	for _, tc := range []struct {
		name   string
		addrs  []string
		served bool
	}{
		{"one address gone", []string{gone, here}, true},
		{"every address gone", []string{gone}, false},
		{"one gone, one busy", []string{here, gone, busy}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open = nil
			var failed []int32
			var sel []netip.Addr
			for _, a := range tc.addrs {
				sel = append(sel, netip.MustParseAddr(a))
			}
			s := NewServiceHealth(ServiceHealthOptions{Family: proxier.IPv4, Listen: listen, Addresses: sel,
				OnError: func(p int32, err error) { failed = append(failed, p) }})
			defer s.Close()
			p := freePort(t)
			s.AfterSync(t.Context(), snapshot(svc("a", "web", port("a", "web", "", true, p, ep("10.0.0.1", true, true)))))
			if !tc.served {
				if !slices.Equal(failed, []int32{p}) || len(s.Ports()) != 0 {
					t.Errorf("OnError calls %v, ports %v; want the port %d failed and not served", failed, s.Ports(), p)
				}
				for _, l := range open {
					if c, err := net.Dial("tcp4", l.Addr().String()); err == nil {
						c.Close()
						t.Errorf("listener %s left open after the port failed", l.Addr())
					}
				}
				return
			}
			if len(failed) != 0 {
				t.Errorf("OnError calls %v, want none", failed)
			}
			if r, err := fetch(t, p); err != nil || r.code != 200 {
				t.Errorf("port %d on %s: %+v %v, want 200", p, here, r, err)
			}
		})
	}
}
