package userspacebench

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/userspace"
)

// tunedSockets are the proxy's sockets with fixed buffer sizes, to measure
// whether they matter (KPROXY_US_BENCH_RCVBUF, KPROXY_US_BENCH_SNDBUF in
// bytes, set on the listener, inherited by accepted sockets, and on the
// dialed sockets before they connect).
type tunedSockets struct {
	userspace.HostSockets
	rcv, snd int
}

func tunedFromEnv() *tunedSockets {
	t := &tunedSockets{rcv: envInt("KPROXY_US_BENCH_RCVBUF", 0), snd: envInt("KPROXY_US_BENCH_SNDBUF", 0)}
	if t.rcv == 0 && t.snd == 0 {
		return nil
	}
	return t
}

func (t *tunedSockets) control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if t.rcv > 0 {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, t.rcv)
		}
		if t.snd > 0 && serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, t.snd)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func (t *tunedSockets) ListenTCP(network string, addr netip.AddrPort) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: t.control}
	return userspace.AsTCPListener(lc.Listen(context.Background(), network, addr.String()))
}

func (t *tunedSockets) DialTCP(ctx context.Context, network string, addr netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout, Control: t.control}
	return userspace.AsTCPConn(d.DialContext(ctx, network, addr.String()))
}
