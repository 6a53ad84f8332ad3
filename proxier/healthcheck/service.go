package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// ServiceHealth runs the healthCheckNodePort servers of one IP family: one
// HTTP server per port, listening on every node address of the family (the
// wildcard address) or on each selected one, answering for the Service that
// owns the port. It is safe for concurrent use.
type ServiceHealth struct {
	family      proxier.Family
	listenAddrs []string
	listen      func(network, addr string) (net.Listener, error)
	healthy     func() bool
	onError     func(port int32, err error)

	mu      sync.Mutex
	servers map[int32]*serviceServer
}

// ServiceHealthOptions configures a ServiceHealth.
type ServiceHealthOptions struct {
	Family proxier.Family
	// Healthy reports the proxy's own health (serviceProxyHealthy); nil
	// means always healthy.
	Healthy func() bool
	// Listen opens a listener; nil means net.Listen. Tests bind elsewhere.
	Listen func(network, addr string) (net.Listener, error)
	// Addresses are the node addresses to listen on, as
	// --nodeport-addresses selects them (kube-proxy since v1.26); empty
	// means every address of the family. A port opens on those still on
	// the node when it opens (see listenAll).
	Addresses []netip.Addr
	// OnError is told about a port that could not be opened (it is retried
	// at the next sync); nil logs.
	OnError func(port int32, err error)
}

// serviceServer is one healthCheckNodePort's server and its listeners.
type serviceServer struct {
	name      types.NamespacedName
	local     int
	listeners []net.Listener
	srv       *http.Server
}

// NewServiceHealth returns an empty set of servers; AfterSync opens them.
func NewServiceHealth(o ServiceHealthOptions) *ServiceHealth {
	s := &ServiceHealth{family: o.Family, healthy: o.Healthy, onError: o.OnError, servers: map[int32]*serviceServer{}}
	if s.healthy == nil {
		s.healthy = func() bool { return true }
	}
	listen := o.Listen
	if listen == nil {
		listen = net.Listen
	}
	network := "tcp4"
	if o.Family == proxier.IPv6 {
		network = "tcp6"
	}
	s.listen = func(_, hostport string) (net.Listener, error) { return listen(network, hostport) }
	for _, a := range o.Addresses {
		s.listenAddrs = append(s.listenAddrs, a.String())
	}
	if len(s.listenAddrs) == 0 && o.Family == proxier.IPv6 {
		s.listenAddrs = []string{"::"}
	} else if len(s.listenAddrs) == 0 {
		s.listenAddrs = []string{"0.0.0.0"}
	}
	if s.onError == nil {
		s.onError = func(port int32, err error) {
			klog.ErrorS(err, "Cannot open health check node port, retrying at the next sync", "ipFamily", o.Family, "port", port)
		}
	}
	return s
}

// Want is the desired state of one health check node port.
type Want struct {
	Name types.NamespacedName
	// LocalEndpoints is the number of this node's ready endpoints.
	LocalEndpoints int
}

// Desired computes, from a snapshot, every health check node port this
// family must serve and its local ready endpoint count: the ports of
// externalTrafficPolicy=Local Services that have a healthCheckNodePort.
// An endpoint counts once even if it backs several ports of the Service.
// Two Services claiming one port: the first in name order keeps it. It
// runs after every sync: only the few Services with such a port are
// sorted and counted (sorting every name took 3 ms at 10,000 Services).
// Pure.
func Desired(snap *proxier.Snapshot) map[int32]Want {
	var names []types.NamespacedName
	for name, svc := range snap.Services {
		if healthCheckPort(svc) != 0 {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, proxier.CompareNames)
	out := map[int32]Want{}
	for _, name := range names {
		svc := snap.Services[name]
		port := healthCheckPort(svc)
		if prev, dup := out[port]; dup {
			klog.InfoS("Two Services claim the same health check node port, keeping the first", "port", port, "kept", prev.Name, "skipped", name)
			continue
		}
		out[port] = Want{Name: name, LocalEndpoints: localReadyEndpoints(svc)}
	}
	return out
}

// healthCheckPort is the health check node port of svc's last
// externalTrafficPolicy=Local port that has one, or 0.
func healthCheckPort(svc *proxier.Service) int32 {
	var port int32
	for i := range svc.Ports {
		if p := &svc.Ports[i]; p.ExternalPolicyLocal && p.HealthCheckNodePort != 0 {
			port = p.HealthCheckNodePort
		}
	}
	return port
}

// localReadyEndpoints counts the distinct local ready endpoint addresses
// of svc's externalTrafficPolicy=Local ports with a health check port.
func localReadyEndpoints(svc *proxier.Service) int {
	local := map[netip.Addr]bool{}
	for i := range svc.Ports {
		p := &svc.Ports[i]
		if !p.ExternalPolicyLocal || p.HealthCheckNodePort == 0 {
			continue
		}
		for _, e := range p.Endpoints {
			if e.Local && e.Ready {
				local[e.IP] = true
			}
		}
	}
	return len(local)
}

// AfterSync is a proxier.AfterSync hook: it opens, updates and closes the
// servers to match snap (of this ServiceHealth's family).
func (s *ServiceHealth) AfterSync(_ context.Context, snap *proxier.Snapshot) {
	if snap.Family != s.family {
		return
	}
	s.Sync(Desired(snap))
}

// Sync makes the servers match want. A port that cannot be opened is
// reported and retried at the next Sync.
func (s *ServiceHealth) Sync(want map[int32]Want) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.servers {
		if w, ok := want[port]; !ok || w.Name != srv.name {
			srv.close()
			delete(s.servers, port)
		}
	}
	for port, w := range want {
		if srv := s.servers[port]; srv != nil {
			srv.local = w.LocalEndpoints
			continue
		}
		listeners, err := s.listenAll(port)
		if err != nil {
			s.onError(port, err)
			continue
		}
		srv := &serviceServer{name: w.Name, local: w.LocalEndpoints, listeners: listeners}
		// These ports face load balancers and the internet: bound the time
		// a slow client may hold a connection.
		srv.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { s.serve(rw, port) }),
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		s.servers[port] = srv
		for _, l := range listeners {
			go func() { _ = srv.srv.Serve(l) }()
		}
		klog.V(2).InfoS("Opened health check node port", "ipFamily", s.family, "port", port, "service", w.Name)
	}
}

// listenAll opens port on every listen address, or none of them. An
// address that is no longer on the node (EADDRNOTAVAIL: the addresses were
// selected at start, and a LoadBalancer IP may have moved to another node
// since) is skipped with one log line, so that the node's other addresses
// still answer the load balancers; with none left, or on any other error
// (a busy port), the port fails and is retried at the next sync.
func (s *ServiceHealth) listenAll(port int32) ([]net.Listener, error) {
	var out []net.Listener
	var gone []string
	var goneErr error
	for _, a := range s.listenAddrs {
		l, err := s.listen("tcp", net.JoinHostPort(a, strconv.Itoa(int(port))))
		switch {
		case err == nil:
			out = append(out, l)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			gone, goneErr = append(gone, a), err
		default:
			for _, l := range out {
				_ = l.Close()
			}
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no selected node address is left on the node: %w", goneErr)
	}
	if len(gone) > 0 {
		klog.InfoS("Health check node port skips addresses no longer on the node", "ipFamily", s.family, "port", port, "addresses", gone)
	}
	return out, nil
}

// Ports returns the ports being served.
func (s *ServiceHealth) Ports() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int32, 0, len(s.servers))
	for p := range s.servers {
		out = append(out, p)
	}
	return out
}

// Close stops every server.
func (s *ServiceHealth) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.servers {
		srv.close()
		delete(s.servers, port)
	}
}

// close stops the server; the listeners are closed here too, as one whose
// Serve has not started yet is not the server's to close.
func (srv *serviceServer) close() {
	_ = srv.srv.Close()
	for _, l := range srv.listeners {
		_ = l.Close()
	}
}

// serviceBody is kube-proxy's response body, fields in its order.
type serviceBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (s *ServiceHealth) serve(w http.ResponseWriter, port int32) {
	s.mu.Lock()
	srv := s.servers[port]
	var body serviceBody
	if srv != nil {
		body.Service.Namespace, body.Service.Name = srv.name.Namespace, srv.name.Name
		body.LocalEndpoints = srv.local
	}
	s.mu.Unlock()
	body.ServiceProxyHealthy = s.healthy()
	code := http.StatusOK
	if body.LocalEndpoints == 0 || !body.ServiceProxyHealthy {
		code = http.StatusServiceUnavailable
	}
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(body.LocalEndpoints))
	w.WriteHeader(code)
	_, _ = w.Write(data)
}
