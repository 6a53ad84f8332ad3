package userspace

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// enableDstInfo asks the kernel for each datagram's local destination
// address, so that replies leave from it: the REDIRECT's reply mapping then
// matches and the client sees the answer come from the service address.
func enableDstInfo(c *net.UDPConn, family proxier.Family) error {
	if family == proxier.IPv6 {
		return ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst, true)
	}
	return ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst, true)
}

// replySource parses the destination of a received datagram and returns the
// control message that sends a reply from it (nil if unknown).
func replySource(oob []byte, family proxier.Family) []byte {
	if family == proxier.IPv6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil || cm.Dst == nil {
			return nil
		}
		return (&ipv6.ControlMessage{Src: cm.Dst}).Marshal()
	}
	var cm ipv4.ControlMessage
	if cm.Parse(oob) != nil || cm.Dst == nil {
		return nil
	}
	return (&ipv4.ControlMessage{Src: cm.Dst}).Marshal()
}

// udpSession relays one client's datagrams to one endpoint over a
// connected socket; one goroutine per session carries the replies.
type udpSession struct {
	l        *listener
	client   netip.AddrPort
	be       *backend
	conn     *net.UDPConn
	oob      []byte // reply source, see replySource
	lastSeen atomic.Int64
	once     sync.Once
}

// datagramReader is the listener socket as serveUDP reads it.
type datagramReader interface {
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
}

// serveUDP reads every datagram sent to the listener (one goroutine, one
// buffer) and forwards it on its client's session.
func (l *listener) serveUDP() {
	defer close(l.done)
	l.readDatagrams(l.udp, time.Sleep)
}

// readDatagrams is serveUDP's loop; it returns when r is closed. A read
// error pauses the loop (doubling, up to a second, reset by the next good
// read), so that a persistent error cannot spin a CPU.
func (l *listener) readDatagrams(r datagramReader, pause func(time.Duration)) {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, 128)
	var backoff time.Duration
	for {
		n, oobn, _, from, err := r.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = acceptBackoff(backoff)
			klog.V(2).InfoS("UDP read failed, pausing", "servicePort", l.key.Name, "err", err, "pause", backoff)
			pause(backoff)
			continue
		}
		backoff = 0
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		l.mu.Lock()
		s := l.sessions[from]
		l.mu.Unlock()
		if s == nil {
			if s = l.newSession(from, oob[:oobn]); s == nil {
				continue // no endpoint: dropped (and counted)
			}
		}
		s.lastSeen.Store(time.Now().UnixNano())
		l.m.bytesIn.Add(float64(n))
		if _, err := s.conn.Write(buf[:n]); err != nil {
			klog.V(4).InfoS("UDP write to endpoint failed", "servicePort", l.key.Name, "endpoint", s.be.addr, "err", err)
		}
	}
}

// newSession picks an endpoint for a new client and starts relaying its
// replies.
func (l *listener) newSession(client netip.AddrPort, oob []byte) *udpSession {
	b := l.state.Load()
	opts := &l.p.opts
	now := opts.Clock.Now()
	var buf [8]*backend
	order := b.order(buf[:], client.Addr(), l.p.srcClassifier(), &l.aff, now)
	network := "udp4"
	if opts.Family == proxier.IPv6 {
		network = "udp6"
	}
	for _, be := range order {
		conn, err := opts.Sockets.DialUDP(network, be.addr)
		if err != nil {
			l.m.dialFailures.Inc()
			continue
		}
		s := &udpSession{l: l, client: client, be: be, conn: conn, oob: replySource(oob, opts.Family)}
		l.mu.Lock()
		if l.closed || l.backends[be.addr] != be {
			l.mu.Unlock()
			conn.Close()
			return nil
		}
		l.sessions[client] = s
		l.mu.Unlock()
		if b.affinity > 0 {
			l.aff.put(client.Addr(), be.addr, now.Add(b.affinity))
		}
		l.m.accepted.Inc()
		l.m.active.Inc()
		go s.relayReplies()
		return s
	}
	l.m.refd.Inc()
	return nil
}

// relayReplies sends the endpoint's datagrams to the client until the
// session has been idle for UDPIdleTimeout or is closed.
func (s *udpSession) relayReplies() {
	defer s.l.m.active.Dec()
	idle := s.l.p.opts.UDPIdleTimeout
	buf := make([]byte, maxDatagram)
	var backoff time.Duration
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(idle))
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, s.lastSeen.Load())) < idle {
				continue // the client spoke lately: keep the session
			}
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				// e.g. ECONNREFUSED from an ICMP port unreachable: keep going,
				// the endpoint may come back; idle expiry ends the session.
				// Pause first, in case the error persists.
				backoff = acceptBackoff(backoff)
				time.Sleep(backoff)
				continue
			}
			s.l.forget(s)
			s.close()
			return
		}
		backoff = 0
		s.l.m.bytesOut.Add(float64(n))
		if _, _, err := s.l.udp.WriteMsgUDPAddrPort(buf[:n], s.oob, s.client); err != nil {
			klog.V(4).InfoS("UDP reply to client failed", "servicePort", s.l.key.Name, "client", s.client, "err", err)
		}
	}
}

func (s *udpSession) close() { s.once.Do(func() { s.conn.Close() }) }

// forget removes s from the session table if it is still there.
func (l *listener) forget(s *udpSession) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions[s.client] == s {
		delete(l.sessions, s.client)
	}
}
