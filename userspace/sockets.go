package userspace

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Sockets is the seam through which the proxy opens its sockets. The
// production process uses HostSockets (its own network namespace); tests
// running the Proxier in-process open them inside a test namespace.
type Sockets interface {
	// ListenTCP listens on addr (port 0: a kernel-chosen port).
	ListenTCP(network string, addr netip.AddrPort) (*net.TCPListener, error)
	// ListenUDP binds a UDP socket to addr.
	ListenUDP(network string, addr netip.AddrPort) (*net.UDPConn, error)
	// DialTCP connects to an endpoint within timeout.
	DialTCP(ctx context.Context, network string, addr netip.AddrPort, timeout time.Duration) (*net.TCPConn, error)
	// DialUDP opens a UDP socket connected to an endpoint.
	DialUDP(network string, addr netip.AddrPort) (*net.UDPConn, error)
}

// HostSockets opens sockets in the process's own network namespace.
//
// Its TCP sockets have no keep-alive: Go would set four socket options on
// each of a connection's two sockets, 8 of the about 58 system calls of a
// short proxied connection, and the sweeper already ends connections idle
// for TCPIdleTimeout (keep-alive probes carry no data, so they never kept a
// connection from it).
type HostSockets struct{}

var _ Sockets = HostSockets{}

// ListenTCP implements Sockets.
func (HostSockets) ListenTCP(network string, addr netip.AddrPort) (*net.TCPListener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return AsTCPListener(lc.Listen(context.Background(), network, addr.String()))
}

// ListenUDP implements Sockets.
func (HostSockets) ListenUDP(network string, addr netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
}

// DialTCP implements Sockets.
func (HostSockets) DialTCP(ctx context.Context, network string, addr netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	c, err := d.DialContext(ctx, network, addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// DialUDP implements Sockets.
func (HostSockets) DialUDP(network string, addr netip.AddrPort) (*net.UDPConn, error) {
	return net.DialUDP(network, nil, net.UDPAddrFromAddrPort(addr))
}

// AsTCPListener and the other helpers below adapt the generic net types a
// socket helper returns (e.g. testrig.ListenInNetns) to the concrete types the
// proxy needs for splice and control messages.
func AsTCPListener(l net.Listener, err error) (*net.TCPListener, error) {
	if err != nil {
		return nil, err
	}
	tl, ok := l.(*net.TCPListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("listener is a %T, not a *net.TCPListener", l)
	}
	return tl, nil
}

// AsTCPConn: see AsTCPListener.
func AsTCPConn(c net.Conn, err error) (*net.TCPConn, error) {
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("connection is a %T, not a *net.TCPConn", c)
	}
	return tc, nil
}

// AsUDPConn: see AsTCPListener.
func AsUDPConn(c net.PacketConn, err error) (*net.UDPConn, error) {
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socket is a %T, not a *net.UDPConn", c)
	}
	return uc, nil
}
