package userspace

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// errNoEndpoint: no endpoint may serve this client.
var errNoEndpoint = errors.New("no usable endpoint for this client")

func (l *listener) serveTCP() {
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = acceptBackoff(backoff)
			klog.V(2).InfoS("Accept failed, pausing", "servicePort", l.key.Name, "err", err, "pause", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go l.handleTCP(c)
	}
}

// handleTCP proxies one client connection until both directions are done.
func (l *listener) handleTCP(client *net.TCPConn) {
	l.m.accepted.Inc()
	ap := client.RemoteAddr().(*net.TCPAddr).AddrPort()
	server, be, err := l.dialEndpoint(ap.Addr().Unmap())
	if err != nil {
		l.m.refd.Inc()
		klog.V(3).InfoS("Refusing client", "servicePort", l.key.Name, "client", ap, "err", err)
		_ = client.SetLinger(0) // RST, not FIN: the client must not wait
		client.Close()
		return
	}
	pair := &tcpPair{client: client, server: server, be: be}
	l.p.conns.add(pair)
	l.m.active.Inc()
	in, out := pair.run()
	l.m.active.Dec()
	l.p.conns.remove(pair)
	l.m.bytesIn.Add(float64(in))
	l.m.bytesOut.Add(float64(out))
}

// dialEndpoint connects to an endpoint for client: the balancer's order,
// one attempt per dial timeout, pausing with a doubling backoff whenever it
// comes back to an endpoint already tried.
func (l *listener) dialEndpoint(client netip.Addr) (*net.TCPConn, *backend, error) {
	b := l.state.Load()
	opts := &l.p.opts
	now := opts.Clock.Now()
	var buf [8]*backend
	order := b.order(buf[:], client, l.p.srcClassifier(), &l.aff, now)
	if len(order) == 0 {
		return nil, nil, errNoEndpoint
	}
	network := "tcp4"
	if client.Is6() {
		network = "tcp6"
	}
	var lastErr error
	backoff := opts.RetryBackoff
	for attempt, timeout := range opts.DialTimeouts {
		be := order[attempt%len(order)]
		if attempt > 0 {
			l.m.retries.Inc()
			if attempt%len(order) == 0 {
				time.Sleep(backoff)
				backoff *= 2
			}
		}
		c, err := opts.Sockets.DialTCP(context.Background(), network, be.addr, timeout)
		if err == nil {
			if b.affinity > 0 {
				l.aff.put(client, be.addr, opts.Clock.Now().Add(b.affinity))
			}
			return c, be, nil
		}
		lastErr = err
		l.m.dialFailures.Inc()
		be.heldUntil.Store(opts.Clock.Now().Add(opts.FailedEndpointHold).UnixNano())
		klog.V(2).InfoS("Dial to endpoint failed, trying the next one", "servicePort", l.key.Name, "endpoint", be.addr, "attempt", attempt+1, "err", err)
	}
	return nil, nil, lastErr
}

// tcpPair is one proxied connection.
type tcpPair struct {
	client, server *net.TCPConn
	be             *backend
	abortOnce      sync.Once
}

// run copies both ways with splice (io.Copy between two *net.TCPConn),
// passing a half-close on: when one side is done sending, the other side's
// write half is shut. An error (reset, abort) ends both directions. It
// returns the bytes sent client→server and server→client.
func (p *tcpPair) run() (in, out int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		out, err = io.Copy(p.client, p.server)
		if err != nil {
			p.abort()
			return
		}
		_ = p.client.CloseWrite()
	}()
	in, err := io.Copy(p.server, p.client)
	if err != nil {
		p.abort()
	} else {
		_ = p.server.CloseWrite()
	}
	<-done
	p.client.Close()
	p.server.Close()
	return in, out
}

// abort closes both sockets, with a RST towards the client.
func (p *tcpPair) abort() {
	p.abortOnce.Do(func() {
		_ = p.client.SetLinger(0)
		p.client.Close()
		p.server.Close()
	})
}
