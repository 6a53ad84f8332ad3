package testrig

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// UDPFlow is one long-lived UDP socket in a network namespace, connected to
// a Service address: every datagram it sends has the same source port, so
// all of them match one conntrack entry, as a DNS client or a game client
// keeps doing. Tests use it to see which endpoint an existing flow reaches.
type UDPFlow struct {
	conn net.Conn
	addr string
}

// OpenUDPFlow opens the flow's socket in ns; nothing is sent yet.
func OpenUDPFlow(ns, addr string) (*UDPFlow, error) {
	conn, err := dialInNetns(context.Background(), ns, &net.Dialer{}, "udp"+family(addr), addr)
	if err != nil {
		return nil, fmt.Errorf("udp flow to %s from %s: %w", addr, ns, err)
	}
	return &UDPFlow{conn: conn, addr: addr}, nil
}

// Ask sends one datagram and returns the name of the echo server that
// answered.
func (f *UDPFlow) Ask(timeout time.Duration) (string, error) {
	line, err := exchange(f.conn, UDP, time.Now().Add(timeout))
	if err != nil {
		return "", fmt.Errorf("udp flow %s → %s: %w", f.conn.LocalAddr(), f.addr, err)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return name, nil
}

// LocalPort is the flow's source port.
func (f *UDPFlow) LocalPort() int { return f.conn.LocalAddr().(*net.UDPAddr).Port }

// Close closes the socket.
func (f *UDPFlow) Close() error { return f.conn.Close() }
