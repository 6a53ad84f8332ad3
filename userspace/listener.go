package userspace

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// listener serves one listenerKey on one proxy port.
type listener struct {
	key   listenerKey
	p     *Proxier
	m     *portMetrics
	port  int
	tcp   *net.TCPListener
	udp   *net.UDPConn
	state atomic.Pointer[balancer]
	aff   affinityTable
	done  chan struct{}

	mu       sync.Mutex // guards the fields below
	src      *proxier.Port
	backends map[netip.AddrPort]*backend
	sessions map[netip.AddrPort]*udpSession // UDP only
	closed   bool
}

// openListener opens the socket of a spec on a port of the wildcard
// address (kernel-chosen, or from Options.PortRange) and starts serving it.
func (p *Proxier) openListener(s *listenerSpec) (*listener, error) {
	l := &listener{
		key: s.Key, p: p, done: make(chan struct{}),
		m:        p.metrics.forPort(s.Key.Name.String() + "/" + string(s.Protocol)),
		backends: map[netip.AddrPort]*backend{},
	}
	wildcard, suffix := netip.IPv4Unspecified(), "4"
	if p.opts.Family == proxier.IPv6 {
		wildcard, suffix = netip.IPv6Unspecified(), "6"
	}
	switch s.Protocol {
	case v1.ProtocolTCP:
		var tl *net.TCPListener
		err := p.ports.listen(func(port int) (err error) {
			tl, err = p.opts.Sockets.ListenTCP("tcp"+suffix, netip.AddrPortFrom(wildcard, uint16(port)))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listen for %s: %w", s.Key, err)
		}
		l.tcp, l.port = tl, tl.Addr().(*net.TCPAddr).Port
	case v1.ProtocolUDP:
		var uc *net.UDPConn
		err := p.ports.listen(func(port int) (err error) {
			uc, err = p.opts.Sockets.ListenUDP("udp"+suffix, netip.AddrPortFrom(wildcard, uint16(port)))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listen for %s: %w", s.Key, err)
		}
		if err := enableDstInfo(uc, p.opts.Family); err != nil {
			uc.Close()
			return nil, fmt.Errorf("listen for %s: %w", s.Key, err)
		}
		l.udp, l.port = uc, uc.LocalAddr().(*net.UDPAddr).Port
		l.sessions = map[netip.AddrPort]*udpSession{}
	default:
		return nil, fmt.Errorf("listen for %s: protocol %s not supported", s.Key, s.Protocol)
	}
	l.update(s, p.opts.Clock.Now())
	if l.tcp != nil {
		go l.serveTCP()
	} else {
		go l.serveUDP()
	}
	klog.V(2).InfoS("Opened proxy listener", "servicePort", s.Key.Name, "class", s.Key.Class, "protocol", s.Protocol, "proxyPort", l.port)
	return l, nil
}

// update installs the endpoints of a new version of the service port.
// Endpoints that left the set start draining; UDP sessions to them end at
// once (the next datagram of their client picks a new endpoint), as
// kube-proxy deletes stale UDP conntrack entries.
func (l *listener) update(s *listenerSpec, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.src = s.Src
	// keep: the endpoints of the new version, with the *backend of those
	// already known (health and counters survive), new ones fresh.
	keep := make(map[netip.AddrPort]*backend, len(s.Src.Usable.Cluster)+len(s.Src.Usable.Local))
	for _, set := range [][]proxier.Endpoint{s.Src.Usable.Cluster, s.Src.Usable.Local} {
		for _, e := range set {
			if be := l.backends[e.AddrPort()]; be != nil {
				keep[e.AddrPort()] = be
			}
		}
	}
	for ap, be := range l.backends {
		if keep[ap] == nil {
			be.removedAt.Store(now.UnixNano())
		}
	}
	b := newBalancer(s, keep) // adds the new endpoints to keep
	l.backends = keep
	l.state.Store(b)
	for client, sess := range l.sessions {
		if keep[sess.be.addr] != sess.be {
			delete(l.sessions, client)
			sess.close()
		}
	}
}

// close stops accepting, ends UDP sessions and lets TCP connections drain.
func (l *listener) close(now time.Time) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	for _, be := range l.backends {
		be.removedAt.Store(now.UnixNano())
	}
	sessions := l.sessions
	l.sessions = nil
	l.mu.Unlock()
	if l.tcp != nil {
		l.tcp.Close()
	} else {
		l.udp.Close()
	}
	for _, s := range sessions {
		s.close()
	}
	<-l.done
	klog.V(2).InfoS("Closed proxy listener", "servicePort", l.key.Name, "class", l.key.Class, "proxyPort", l.port)
}

// acceptBackoff is how long an accept loop pauses after a temporary error
// (e.g. out of file descriptors), doubling up to a second.
func acceptBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}
