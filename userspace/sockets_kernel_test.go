package userspace

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestHostSocketsNoKeepAlive: both sockets of a proxied connection, the
// accepted one and the one dialed to the endpoint, are left without
// keep-alive (Go would enable it and set three timers on each).
func TestHostSocketsNoKeepAlive(t *testing.T) {
	ns := testrig.NewNetns(t, "us-ka")
	var ln *net.TCPListener
	var dialed *net.TCPConn
	err := testrig.DoInNetns(ns, func() error {
		var err error
		if ln, err = (HostSockets{}).ListenTCP("tcp4", netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			return err
		}
		to := ln.Addr().(*net.TCPAddr).AddrPort()
		dialed, err = (HostSockets{}).DialTCP(context.Background(), "tcp4", to, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer dialed.Close()
	accepted, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	for name, c := range map[string]*net.TCPConn{"accepted": accepted, "dialed": dialed} {
		if on := sockoptInt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); on != 0 {
			t.Errorf("%s socket: SO_KEEPALIVE = %d, want 0", name, on)
		}
		if nodelay := sockoptInt(t, c, unix.IPPROTO_TCP, unix.TCP_NODELAY); nodelay == 0 {
			t.Errorf("%s socket: TCP_NODELAY off, want Go's default (on)", name)
		}
	}
}

func sockoptInt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var optErr error
	if err := rc.Control(func(fd uintptr) { v, optErr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	return v
}
