package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
)

func ep(ip string, local, ready bool) proxier.Endpoint {
	return proxier.Endpoint{IP: netip.MustParseAddr(ip), Port: 80, Local: local, Ready: ready, Serving: ready}
}

func port(ns, name, portName string, etpLocal bool, hc int32, eps ...proxier.Endpoint) proxier.Port {
	return proxier.Port{
		ServicePort: proxier.ServicePort{
			Name:                proxier.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: portName, Protocol: v1.ProtocolTCP},
			NodePort:            30000,
			ExternalPolicyLocal: etpLocal,
			HealthCheckNodePort: hc,
		},
		Endpoints: eps,
	}
}

func snapshot(svcs ...*proxier.Service) *proxier.Snapshot {
	s := &proxier.Snapshot{Family: proxier.IPv4, Services: map[types.NamespacedName]*proxier.Service{}}
	for _, svc := range svcs {
		s.Services[svc.Name] = svc
	}
	return s
}

func svc(ns, name string, ports ...proxier.Port) *proxier.Service {
	return &proxier.Service{Name: types.NamespacedName{Namespace: ns, Name: name}, Ports: ports}
}

func TestDesired(t *testing.T) {
	snap := snapshot(
		// Two ports sharing endpoints: each local ready pod counts once.
		svc("a", "web", port("a", "web", "http", true, 31000, ep("10.0.0.1", true, true), ep("10.0.0.2", true, false), ep("10.0.0.3", false, true)),
			port("a", "web", "https", true, 31000, ep("10.0.0.1", true, true), ep("10.0.0.4", true, true))),
		svc("a", "cluster", port("a", "cluster", "", false, 0, ep("10.0.0.1", true, true))),
		svc("b", "none", port("b", "none", "", true, 31001)),
		svc("b", "zdup", port("b", "zdup", "", true, 31001, ep("10.0.0.9", true, true))),
	)
	got := Desired(snap)
	want := map[int32]Want{
		31000: {Name: types.NamespacedName{Namespace: "a", Name: "web"}, LocalEndpoints: 2},
		31001: {Name: types.NamespacedName{Namespace: "b", Name: "none"}, LocalEndpoints: 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Desired = %+v\nwant %+v", got, want)
	}
}

// freePort finds a TCP port free on 127.0.0.1.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

type reply struct {
	code   int
	weight string
	body   serviceBody
}

func fetch(t *testing.T, port int32) (reply, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{code: resp.StatusCode, weight: resp.Header.Get("X-Load-Balancing-Endpoint-Weight")}
	if err := json.Unmarshal(data, &r.body); err != nil {
		t.Fatalf("body %q: %v", data, err)
	}
	return r, nil
}

func TestServiceHealthServers(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var failed []int32
	s := NewServiceHealth(ServiceHealthOptions{
		Family:    proxier.IPv4,
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Healthy:   func() bool { return healthy.Load() },
		OnError:   func(p int32, err error) { failed = append(failed, p) },
	})
	t.Cleanup(s.Close)
	p1, p2 := freePort(t), freePort(t)
	web := types.NamespacedName{Namespace: "a", Name: "web"}

	s.AfterSync(t.Context(), snapshot(svc("a", "web", port("a", "web", "", true, p1, ep("10.0.0.1", true, true), ep("10.0.0.2", true, true)))))
	r, err := fetch(t, p1)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 200 || r.weight != "2" || r.body.LocalEndpoints != 2 || !r.body.ServiceProxyHealthy ||
		r.body.Service.Namespace != web.Namespace || r.body.Service.Name != web.Name {
		t.Errorf("two local endpoints: got %+v", r)
	}

	healthy.Store(false)
	if r, _ = fetch(t, p1); r.code != 503 || r.body.ServiceProxyHealthy {
		t.Errorf("proxy unhealthy: got %+v, want 503", r)
	}
	healthy.Store(true)

	// The endpoints move away: 503 with weight 0, same listener.
	s.AfterSync(t.Context(), snapshot(svc("a", "web", port("a", "web", "", true, p1, ep("10.0.0.3", false, true)))))
	if r, _ = fetch(t, p1); r.code != 503 || r.weight != "0" || r.body.LocalEndpoints != 0 {
		t.Errorf("no local endpoint: got %+v, want 503 weight 0", r)
	}

	// A snapshot of the other family changes nothing.
	other := snapshot()
	other.Family = proxier.IPv6
	s.AfterSync(t.Context(), other)
	if got := s.Ports(); len(got) != 1 {
		t.Errorf("IPv6 snapshot touched IPv4 servers: %v", got)
	}

	// The port moves: the old listener closes, the new one answers.
	s.AfterSync(t.Context(), snapshot(svc("a", "web", port("a", "web", "", true, p2, ep("10.0.0.1", true, true)))))
	if _, err := fetch(t, p1); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("old port %d after the move: err %v, want connection refused", p1, err)
	}
	if r, err = fetch(t, p2); err != nil || r.code != 200 || r.weight != "1" {
		t.Errorf("new port %d: %+v %v", p2, r, err)
	}

	// A busy port is reported and retried at the next sync.
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p3 := int32(busy.Addr().(*net.TCPAddr).Port)
	want := snapshot(svc("b", "db", port("b", "db", "", true, p3, ep("10.0.0.5", true, true))))
	s.AfterSync(t.Context(), want)
	if len(failed) != 1 || failed[0] != p3 {
		t.Errorf("busy port: OnError calls %v, want [%d]", failed, p3)
	}
	busy.Close()
	s.AfterSync(t.Context(), want)
	if r, err = fetch(t, p3); err != nil || r.code != 200 || r.body.Service.Name != "db" {
		t.Errorf("port %d after retry: %+v %v", p3, r, err)
	}
	if _, err := fetch(t, p2); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("port %d of the deleted Service: err %v, want connection refused", p2, err)
	}
}
