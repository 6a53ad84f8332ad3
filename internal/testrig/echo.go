package testrig

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Proto selects the echo server protocols.
type Proto string

// Protocols for StartEchoServers and probes.
const (
	TCP    Proto = "tcp"
	UDP    Proto = "udp"
	TCPUDP Proto = "tcp+udp"
)

// EchoServers are the servers started by StartEchoServers.
type EchoServers struct {
	Name string
	mu   sync.Mutex
	tcp  []net.Listener
	udp  []net.PacketConn
	conn map[net.Conn]struct{}
	// closed is set by Close; connections accepted after it are dropped.
	closed bool
	wg     sync.WaitGroup
}

// StartEchoServers starts servers named name on ip:port (IPv4 or IPv6) inside
// network namespace ns, for each port and each protocol in proto:
//   - TCP: on accept writes "<name> <remote-addr-it-saw>\n", then echoes
//     everything it reads until EOF (for long-lived connection tests);
//   - UDP: answers each datagram with "<name> <remote-addr-it-saw>\n".
//
// They are closed (including open connections) in cleanup. It fails the test on
// error.
func StartEchoServers(t testing.TB, ns, name, ip string, ports []int, proto Proto) *EchoServers {
	t.Helper()
	e := &EchoServers{Name: name, conn: map[net.Conn]struct{}{}}
	t.Cleanup(e.Close)
	for _, port := range ports {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		if proto == TCP || proto == TCPUDP {
			l, err := ListenInNetns(ns, "tcp"+family(ip), addr)
			if err != nil {
				t.Fatalf("echo server %s: listen tcp %s in netns %s: %v", name, addr, ns, err)
			}
			e.add(l, nil)
		}
		if proto == UDP || proto == TCPUDP {
			pc, err := ListenPacketInNetns(ns, "udp"+family(ip), addr)
			if err != nil {
				t.Fatalf("echo server %s: listen udp %s in netns %s: %v", name, addr, ns, err)
			}
			e.add(nil, pc)
		}
	}
	return e
}

// Close stops the servers and closes open connections; it waits for the
// server goroutines.
func (e *EchoServers) Close() {
	e.mu.Lock()
	for _, l := range e.tcp {
		l.Close()
	}
	for _, pc := range e.udp {
		pc.Close()
	}
	for c := range e.conn {
		c.Close()
	}
	e.tcp, e.udp = nil, nil
	e.closed = true
	e.mu.Unlock()
	e.wg.Wait()
}

// OpenConns returns the number of TCP connections currently open.
func (e *EchoServers) OpenConns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conn)
}

func greeting(name string, remote net.Addr) string {
	return fmt.Sprintf("%s %s\n", name, remote)
}

func (e *EchoServers) add(l net.Listener, pc net.PacketConn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wg.Add(1)
	if l != nil {
		e.tcp = append(e.tcp, l)
		go e.serveTCP(l)
	} else {
		e.udp = append(e.udp, pc)
		go e.serveUDP(pc)
	}
}

func (e *EchoServers) serveTCP(l net.Listener) {
	defer e.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conn[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.wg.Done()
			defer func() {
				e.mu.Lock()
				delete(e.conn, c)
				e.mu.Unlock()
				c.Close()
			}()
			if _, err := io.WriteString(c, greeting(e.Name, c.RemoteAddr())); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}

func (e *EchoServers) serveUDP(pc net.PacketConn) {
	defer e.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = pc.WriteTo([]byte(greeting(e.Name, from)), from)
	}
}
