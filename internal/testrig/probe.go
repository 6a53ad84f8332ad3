package testrig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Outcome classifies a probe.
type Outcome int

// Probe outcomes.
const (
	// Answered: an echo server replied.
	Answered Outcome = iota
	// Refused: ECONNREFUSED. For TCP either a RST or an ICMP port-unreachable;
	// for UDP an ICMP port-unreachable. ProbeError.ICMP tells them apart.
	Refused
	// Unreachable: EHOSTUNREACH, ENETUNREACH or EACCES — an ICMP
	// destination-unreachable other than port-unreachable (host, net,
	// admin-prohibited; see ProbeError.ICMP), or no local route.
	Unreachable
	// Timeout: no answer in time (a drop).
	Timeout
	// Failed: anything else (e.g. connected, but no greeting).
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered"
	case Refused:
		return "refused"
	case Unreachable:
		return "unreachable"
	case Timeout:
		return "timeout"
	default:
		return "failed"
	}
}

// Reply is what an echo server answered.
type Reply struct {
	Name    string // server name given to StartEchoServers
	SeenSrc string // client address as the server saw it ("ip:port")
	Local   string // the probing socket's own address (before any NAT)
}

// SeenIP returns the IP part of SeenSrc.
func (r Reply) SeenIP() string { return hostOf(r.SeenSrc) }

// LocalIP returns the IP part of Local.
func (r Reply) LocalIP() string { return hostOf(r.Local) }

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// ProbeError is the error of a probe that was not answered.
type ProbeError struct {
	Outcome Outcome
	Proto   Proto
	Netns   string
	Addr    string
	Local   string     // the probing socket's address, if known
	ICMP    *ICMPError // ICMP error quoting this flow, if one arrived
	Err     error
}

func (e *ProbeError) Error() string {
	s := fmt.Sprintf("probe %s %s from netns %s: %s: %v", e.Proto, e.Addr, e.Netns, e.Outcome, e.Err)
	if e.ICMP != nil {
		s += " (" + e.ICMP.String() + ")"
	}
	return s
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Classify returns the outcome of a probe error: Answered for nil.
func Classify(err error) Outcome {
	if err == nil {
		return Answered
	}
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Outcome
	}
	return classifyErr(err)
}

func classifyErr(err error) Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES):
		return Unreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Timeout
	default:
		return Failed
	}
}

// ProbeTCP connects from network namespace ns to addr ("ip:port", IPv6 as
// "[ip]:port") on a fresh
// socket and reads the echo server's greeting. timeout bounds the whole probe
// (keep it short, about 2 s: a drop costs the full timeout).
func ProbeTCP(ns, addr string, timeout time.Duration) (Reply, error) {
	return probe(ns, TCP, addr, timeout)
}

// ProbeUDP sends one datagram from network namespace ns to addr on a fresh
// socket and reads the echo server's answer.
func ProbeUDP(ns, addr string, timeout time.Duration) (Reply, error) {
	return probe(ns, UDP, addr, timeout)
}

// Probe is ProbeTCP or ProbeUDP depending on proto.
func Probe(ns string, proto Proto, addr string, timeout time.Duration) (Reply, error) {
	return probe(ns, proto, addr, timeout)
}

func probe(ns string, proto Proto, addr string, timeout time.Duration) (Reply, error) {
	pe := &ProbeError{Proto: proto, Netns: ns, Addr: addr}
	if proto != TCP && proto != UDP {
		pe.Outcome, pe.Err = Failed, fmt.Errorf("unsupported protocol %q", proto)
		return Reply{}, pe
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	// A raw ICMP socket opened before the probe sees any destination-unreachable
	// the kernel receives for it (best effort: the probe works without it).
	sniffer, _ := newICMPSniffer(ns, isIPv6(addr))
	if sniffer != nil {
		defer sniffer.Close()
	}
	fail := func(err error, outcome Outcome, localPort int) (Reply, error) {
		pe.Err, pe.Outcome = err, outcome
		if sniffer != nil && (outcome == Refused || outcome == Unreachable) {
			pe.ICMP = sniffer.find(proto, localPort)
		}
		return Reply{}, pe
	}

	var localPort int
	d := &net.Dialer{Control: bindEphemeral(&localPort, isIPv6(addr))}
	conn, err := dialInNetns(ctx, ns, d, string(proto)+family(addr), addr)
	if err != nil {
		return fail(err, classifyErr(err), localPort)
	}
	defer conn.Close()
	pe.Local = conn.LocalAddr().String()
	line, err := exchange(conn, proto, deadline)
	if err != nil {
		if proto == TCP {
			// Connected, then silence or a reset: not a drop, so not Timeout.
			return fail(fmt.Errorf("connected but no greeting: %w", err), Failed, localPort)
		}
		return fail(err, classifyErr(err), localPort)
	}
	name, seen, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return fail(fmt.Errorf("unexpected answer %q", line), Failed, localPort)
	}
	return Reply{Name: name, SeenSrc: seen, Local: pe.Local}, nil
}

// exchange reads the TCP greeting line, or sends a UDP datagram and reads the
// answer.
func exchange(conn net.Conn, proto Proto, deadline time.Time) (string, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if proto == TCP {
		return bufio.NewReader(conn).ReadString('\n')
	}
	if _, err := conn.Write([]byte("probe\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	return string(buf[:n]), err
}

// bindEphemeral binds the socket to an ephemeral port before connect and stores
// the port, so an ICMP error quoting the flow can be matched even when connect
// fails.
func bindEphemeral(port *int, ipv6 bool) func(network, address string, c syscall.RawConn) error {
	var any syscall.Sockaddr = &syscall.SockaddrInet4{}
	if ipv6 {
		any = &syscall.SockaddrInet6{}
	}
	return func(network, address string, c syscall.RawConn) error {
		var berr error
		err := c.Control(func(fd uintptr) {
			if berr = syscall.Bind(int(fd), any); berr != nil {
				return
			}
			sa, err := syscall.Getsockname(int(fd))
			if err != nil {
				berr = err
				return
			}
			switch sa := sa.(type) {
			case *syscall.SockaddrInet4:
				*port = sa.Port
			case *syscall.SockaddrInet6:
				*port = sa.Port
			}
		})
		if err != nil {
			return err
		}
		return berr
	}
}
