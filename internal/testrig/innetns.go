package testrig

import (
	"context"
	"net"
	"time"

	"github.com/kproxy/kproxy/internal/innetns"
)

// DoInNetns runs fn on an OS thread that has joined network namespace ns,
// so sockets fn creates belong to ns (they keep working after the thread
// leaves). fn must not start goroutines that expect to be in ns. See
// innetns.Run.
func DoInNetns(ns string, fn func() error) error { return innetns.Run(ns, fn) }

// DialInNetns connects from inside network namespace ns.
func DialInNetns(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return DialContextInNetns(ctx, ns, network, addr)
}

// DialContextInNetns connects from inside network namespace ns; its signature
// fits rest.Config.Dial and http.Transport.DialContext once ns is bound.
func DialContextInNetns(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	return dialInNetns(ctx, ns, &net.Dialer{}, network, addr)
}

func dialInNetns(ctx context.Context, ns string, d *net.Dialer, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := DoInNetns(ns, func() error {
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// ListenInNetns opens a stream listener inside network namespace ns.
func ListenInNetns(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := DoInNetns(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacketInNetns opens a packet socket (udp, ip4:icmp, ...) inside network
// namespace ns.
func ListenPacketInNetns(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := DoInNetns(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}
