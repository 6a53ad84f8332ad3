package testrig

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// UDPService is a UDP Service address as the conntrack fault tests follow
// it: long-lived flows opened from a client namespace, their conntrack
// entries in the node's namespace (where the proxy translates them). The
// same checks serve the host-kernel modes (cmd/kproxy/faults) and the ipvs
// mode in its VM.
type UDPService struct {
	Addr netip.AddrPort
	// Client is the namespace the flows are opened from.
	Client string
	// Node is the namespace (name or path) whose conntrack table holds
	// the flows' entries.
	Node string
}

// EndpointFlow is an open flow and the endpoint (echo server name) that
// answered it first.
type EndpointFlow struct {
	Flow     *UDPFlow
	Endpoint string
}

// Entry is the node's conntrack entry of flow, if there is one (a second
// one fails the test).
func (s UDPService) Entry(t testing.TB, flow *UDPFlow) (ConntrackEntry, bool) {
	t.Helper()
	entries, err := UDPConntrack(s.Node, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var found []ConntrackEntry
	for _, e := range entries {
		if int(e.Src.Port()) == flow.LocalPort() {
			found = append(found, e)
		}
	}
	if len(found) > 1 {
		t.Fatalf("flow from port %d has %d conntrack entries: %v", flow.LocalPort(), len(found), found)
	}
	if len(found) == 0 {
		return ConntrackEntry{}, false
	}
	return found[0], true
}

// OpenFlows opens flows to the Service, each asked once, until enough (by
// endpoint reached) holds, at most 80; they are closed when the test ends.
func (s UDPService) OpenFlows(t testing.TB, enough func(map[string]int) bool) []EndpointFlow {
	t.Helper()
	var flows []EndpointFlow
	by := map[string]int{}
	for len(flows) < 80 && !enough(by) {
		f, err := OpenUDPFlow(s.Client, s.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		name, err := f.Ask(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, EndpointFlow{f, name})
		by[name]++
	}
	if !enough(by) {
		t.Fatalf("80 flows did not spread enough over the endpoints: %v", by)
	}
	return flows
}

// MarkFlows marks the conntrack entry of every flow (see MarkConntrack)
// and returns the entries by the flow's port. With translated, each entry
// must reply from its endpoint (echo servers named by their IP).
func (s UDPService) MarkFlows(t testing.TB, flows []EndpointFlow, mark uint32, translated bool) map[int]ConntrackEntry {
	t.Helper()
	out := map[int]ConntrackEntry{}
	for _, f := range flows {
		e, ok := s.Entry(t, f.Flow)
		if !ok {
			t.Fatalf("flow from port %d (on %s) has no conntrack entry", f.Flow.LocalPort(), f.Endpoint)
		}
		if translated && e.ReplySrc.Addr().String() != f.Endpoint {
			t.Fatalf("flow on %s: conntrack entry %v", f.Endpoint, e)
		}
		if err := MarkConntrack(s.Node, e, mark, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		e.Mark = mark
		out[f.Flow.LocalPort()] = e
	}
	return out
}

// CheckMarked fails t for every flow whose entry lost mark (deleted, or
// made again) after what (a sync, a restart) happened.
func (s UDPService) CheckMarked(t testing.TB, flows []EndpointFlow, mark uint32, what string) {
	t.Helper()
	for _, f := range flows {
		if e, ok := s.Entry(t, f.Flow); !ok || e.Mark != mark {
			t.Errorf("flow from port %d (on %s): %s deleted its conntrack entry (now %v)", f.Flow.LocalPort(), f.Endpoint, what, e)
		}
	}
}

// CheckEntriesKept checks the flows' entries after a restart, before any
// flow sent again: those of flows for which keep holds are the very ones
// marked before (same mark, same reply source), the others are gone. It
// returns how many entries there are.
func (s UDPService) CheckEntriesKept(t testing.TB, flows []EndpointFlow, before map[int]ConntrackEntry, mark uint32, keep func(EndpointFlow) bool) (kept int) {
	t.Helper()
	for _, f := range flows {
		e, ok := s.Entry(t, f.Flow)
		port := f.Flow.LocalPort()
		switch {
		case keep(f) && (!ok || e.Mark != mark):
			t.Errorf("flow from port %d (on %s): conntrack entry %v flushed by the restart (now %v, present %v)", port, f.Endpoint, before[port], e, ok)
		case keep(f) && e.ReplySrc != before[port].ReplySrc:
			t.Errorf("flow from port %d: reply source %s, was %s", port, e.ReplySrc, before[port].ReplySrc)
		case !keep(f) && ok:
			t.Errorf("flow from port %d (on %s) keeps its conntrack entry %v: its endpoint (or listener port) is gone", port, f.Endpoint, e)
		}
		if ok {
			kept++
		}
	}
	return kept
}

// CheckAnswers asks every flow again: each is answered, never by left (an
// endpoint that left the Service); with sticky, flows of the other
// endpoints are answered by the same endpoint as before.
func (s UDPService) CheckAnswers(t testing.TB, flows []EndpointFlow, left string, sticky bool) {
	t.Helper()
	for _, f := range flows {
		got, err := f.Flow.Ask(2 * time.Second)
		switch {
		case err != nil:
			t.Errorf("flow from port %d (was on %s): %v", f.Flow.LocalPort(), f.Endpoint, err)
		case got == left:
			t.Errorf("flow from port %d reaches %s, which left the Service while kproxy was down", f.Flow.LocalPort(), left)
		case sticky && f.Endpoint != left && got != f.Endpoint:
			t.Errorf("flow from port %d moved from %s to %s: its conntrack entry was flushed by the restart", f.Flow.LocalPort(), f.Endpoint, got)
		}
	}
}

// CheckScaledToZero is the part of a scale-to-zero test after the last
// endpoint left: the flow's entry goes within 10s, then each of n
// datagrams on the same socket is refused and leaves no entry. It returns
// how long the entry took to go and the slowest refusal.
func (s UDPService) CheckScaledToZero(t testing.TB, flow *UDPFlow, n int, tail func() string) (gone, refused time.Duration) {
	t.Helper()
	start := time.Now()
	if err := Eventually(10*time.Second, func() error {
		if e, ok := s.Entry(t, flow); ok {
			return fmt.Errorf("conntrack entry %v kept", e)
		}
		return nil
	}); err != nil {
		t.Fatalf("after scaling to zero: %v\n%s", err, tail())
	}
	gone = time.Since(start)
	for i := range n {
		sent := time.Now()
		if got, err := flow.Ask(time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("datagram %d with no endpoints: answer %q, error %v; want refused", i+1, got, err)
		}
		refused = max(refused, time.Since(sent))
	}
	if e, ok := s.Entry(t, flow); ok {
		t.Fatalf("a rejected datagram left conntrack entry %v", e)
	}
	return gone, refused
}

// WaitAnsweredBy asks flow until endpoint answers (10s at most) and
// returns how long that took.
func WaitAnsweredBy(t testing.TB, flow *UDPFlow, endpoint string, tail func() string) time.Duration {
	t.Helper()
	start := time.Now()
	if err := Eventually(10*time.Second, func() error {
		got, err := flow.Ask(300 * time.Millisecond)
		if err == nil && got != endpoint {
			err = fmt.Errorf("answered by %s, want %s", got, endpoint)
		}
		return err
	}); err != nil {
		t.Fatalf("the same socket after scaling back: %v\n%s", err, tail())
	}
	return time.Since(start)
}

// Eventually retries f every 100ms until it succeeds or within passes,
// and returns its last error.
func Eventually(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
