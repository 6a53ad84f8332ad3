package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestServiceHealthListensOnSelectedAddresses: in a namespace whose node
// has two addresses, a health check node port limited to one of them (as
// --nodeport-addresses selects it) answers there and refuses on the other;
// without a selection it answers on both.
func TestServiceHealthListensOnSelectedAddresses(t *testing.T) {
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, "hc")
	const selected, other = "198.51.100.21", "198.51.100.22"
	testrig.Run(t, ns, "ip", "link", "set", "lo", "up")
	for _, a := range []string{selected, other} {
		testrig.Run(t, ns, "ip", "addr", "add", a+"/32", "dev", "lo")
	}
	listen := func(network, addr string) (net.Listener, error) { return testrig.ListenInNetns(ns, network, addr) }
	get := func(addr string, port int32) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return testrig.DialContextInNetns(ctx, ns, network, addr)
			}}}
		resp, err := c.Get(fmt.Sprintf("http://%s/", net.JoinHostPort(addr, fmt.Sprint(port))))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	const hcPort = 31000
	snap := snapshot(svc("a", "web", port("a", "web", "", true, hcPort, ep("10.0.0.1", true, true))))

	only := NewServiceHealth(ServiceHealthOptions{Family: proxier.IPv4, Listen: listen, Addresses: []netip.Addr{netip.MustParseAddr(selected)}})
	only.AfterSync(t.Context(), snap)
	if code, err := get(selected, hcPort); err != nil || code != http.StatusOK {
		t.Errorf("selected address %s: %d %v, want 200", selected, code, err)
	}
	if _, err := get(other, hcPort); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("other address %s: err %v, want connection refused (nothing listening)", other, err)
	}
	only.Close()

	all := NewServiceHealth(ServiceHealthOptions{Family: proxier.IPv4, Listen: listen})
	defer all.Close()
	all.AfterSync(t.Context(), snap)
	for _, a := range []string{selected, other} {
		if code, err := get(a, hcPort); err != nil || code != http.StatusOK {
			t.Errorf("no selection, address %s: %d %v, want 200", a, code, err)
		}
	}
}
