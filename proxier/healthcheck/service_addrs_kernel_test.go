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
	const selected, other = "198.51.100.21", "198.51.100.22"
	ns := netnsWithAddrs(t, "hc", selected, other)
	listen := listenIn(ns)
	get := func(addr string, port int32) (int, error) { return getIn(ns, addr, port) }
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

// TestServiceHealthAddressRemoved: a selected address removed from the
// node after start (a LoadBalancer IP moved to another node) does not stop
// a new health check node port from opening: it serves on the address
// that is left, as the port opened before still does.
func TestServiceHealthAddressRemoved(t *testing.T) {
	const stays, goes = "198.51.100.23", "198.51.100.24"
	ns := netnsWithAddrs(t, "hcgone", stays, goes)
	var failed []error
	s := NewServiceHealth(ServiceHealthOptions{Family: proxier.IPv4, Listen: listenIn(ns),
		Addresses: []netip.Addr{netip.MustParseAddr(stays), netip.MustParseAddr(goes)},
		OnError:   func(_ int32, err error) { failed = append(failed, err) }})
	defer s.Close()
	const before, after = 31001, 31002
	web := port("a", "web", "", true, before, ep("10.0.0.1", true, true))
	s.AfterSync(t.Context(), snapshot(svc("a", "web", web)))
	for _, a := range []string{stays, goes} {
		if code, err := getIn(ns, a, before); err != nil || code != http.StatusOK {
			t.Fatalf("before the removal, %s:%d: %d %v, want 200", a, before, code, err)
		}
	}

	testrig.Run(t, ns, "ip", "addr", "del", goes+"/32", "dev", "lo")
	s.AfterSync(t.Context(), snapshot(svc("a", "web", web), svc("a", "db", port("a", "db", "", true, after, ep("10.0.0.2", true, true)))))
	if len(failed) != 0 {
		t.Errorf("new port %d failed: %v", after, failed)
	}
	for _, p := range []int32{before, after} {
		if code, err := getIn(ns, stays, p); err != nil || code != http.StatusOK {
			t.Errorf("after the removal, %s:%d: %d %v, want 200", stays, p, code, err)
		}
	}
}

// netnsWithAddrs is a new namespace (deleted at cleanup) whose lo holds
// addrs: a node with several addresses. It needs root.
func netnsWithAddrs(t *testing.T, name string, addrs ...string) string {
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, name)
	testrig.Run(t, ns, "ip", "link", "set", "lo", "up")
	for _, a := range addrs {
		testrig.Run(t, ns, "ip", "addr", "add", a+"/32", "dev", "lo")
	}
	return ns
}

// listenIn opens listeners in ns.
func listenIn(ns string) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) { return testrig.ListenInNetns(ns, network, addr) }
}

// getIn asks http://addr:port/ from ns and returns the status code.
func getIn(ns, addr string, port int32) (int, error) {
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
