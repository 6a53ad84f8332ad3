package conntrack

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// dialFrom connects from the client namespace with a fixed source port and
// returns the name in the echo server's greeting.
func dialFrom(ns string, port int, addr string, timeout time.Duration) (name string, err error) {
	err = testrig.DoInNetns(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: timeout}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		name, _, _ = strings.Cut(line, " ")
		return err
	})
	return name, err
}

// A client connects to a ClusterIP before its rules exist: the SYN is
// routed past it and leaves an untranslated SYN_SENT entry. Once the rules
// are in, a connection from the same source port (like the client's own
// retransmitted SYNs) still fails on that entry, until the clean-up that
// follows the sync deletes it.
func TestKernelTCPBeforeRulesIsNotStuck(t *testing.T) {
	r := newRig(t)
	c, err := New(Options{Family: proxier.IPv4, Netns: &r.ns, UnNATedTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	const srcPort = 45678
	r.program(t, nil)
	if name, err := dialFrom(r.client, srcPort, svcAddr, time.Second); err == nil {
		t.Fatalf("connected to %s (%s) with no rules", svcAddr, name)
	}
	if n := len(r.flowsTo(t, protoTCP, svcAddr)); n != 1 {
		t.Fatalf("%d TCP entries to %s after the early SYN, want 1", n, svcAddr)
	}

	r.program(t, r.a)
	if name, err := dialFrom(r.client, srcPort, svcAddr, time.Second); err == nil {
		// The kernel no longer keeps such entries: the clean-up is moot
		// but harmless; say so rather than pass silently.
		t.Fatalf("reached %s through the old entry: the kernel re-translated it, revisit unnated.go", name)
	}

	if n := r.cleanupWith(t, c, r.snapshotTo(t, r.a)); n < 1 {
		t.Fatalf("clean-up deleted %d entries, want the untranslated TCP one", n)
	}
	name, err := dialFrom(r.client, srcPort, svcAddr, 2*time.Second)
	if err != nil || name != "A" {
		t.Fatalf("after the clean-up: %q, %v; want endpoint A", name, err)
	}
	// An established, translated connection is not touched by later
	// clean-ups (the address is no longer new, and it was answered).
	if n := r.cleanupWith(t, c, r.snapshotTo(t, r.a)); n != 0 {
		t.Errorf("second clean-up deleted %d entries, want 0", n)
	}
}
