package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/kproxy/kproxy/proxier"
)

// FakeTable is an in-memory conntrack table that behaves like
// NetlinkTable: a dump sees only the requested family, matches are
// deleted one by one, a failed deletion leaves its flow in place and the
// others still go, an interrupted dump still deletes what it saw.
type FakeTable struct {
	mu    sync.Mutex
	flows []*netlink.ConntrackFlow
	addrs []netip.Addr

	// Dumps counts DeleteFlows calls (table dumps).
	Dumps int
	// DumpErr, when set, makes the next dumps fail before deleting anything.
	DumpErr error
	// Interrupt makes dumps report netlink.ErrDumpInterrupted after
	// deleting what matched (the kernel's "table changed during the dump").
	Interrupt bool
	// FailDelete, when it returns an error for a flow, makes deleting that
	// flow fail.
	FailDelete func(*netlink.ConntrackFlow) error
	// AddrErr, when set, makes LocalAddrs fail.
	AddrErr error
}

var _ Table = (*FakeTable)(nil)

// NewFakeTable returns a table holding flows, in a namespace whose
// interfaces carry addrs.
func NewFakeTable(addrs []netip.Addr, flows ...*netlink.ConntrackFlow) *FakeTable {
	return &FakeTable{flows: flows, addrs: addrs}
}

// Add adds flows.
func (t *FakeTable) Add(flows ...*netlink.ConntrackFlow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flows = append(t.flows, flows...)
}

// Flows returns the flows left, in insertion order.
func (t *FakeTable) Flows() []*netlink.ConntrackFlow {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*netlink.ConntrackFlow(nil), t.flows...)
}

// DeleteFlows implements Table.
func (t *FakeTable) DeleteFlows(family proxier.Family, match func(*netlink.ConntrackFlow) bool) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Dumps++
	if t.DumpErr != nil {
		return 0, fmt.Errorf("delete conntrack flows: %w", t.DumpErr)
	}
	want := uint8(inetFamily(family))
	var kept []*netlink.ConntrackFlow
	deleted, failed := 0, 0
	for _, f := range t.flows {
		if f.FamilyType != want || !match(f) {
			kept = append(kept, f)
			continue
		}
		if t.FailDelete != nil && t.FailDelete(f) != nil {
			failed++
			kept = append(kept, f)
			continue
		}
		deleted++
	}
	t.flows = kept
	var err error
	if t.Interrupt {
		err = netlink.ErrDumpInterrupted
	}
	if failed > 0 {
		err = errors.Join(err, fmt.Errorf("failed to delete %d conntrack flows", failed))
	}
	if err != nil {
		return deleted, fmt.Errorf("delete conntrack flows: %w", err)
	}
	return deleted, nil
}

// LocalAddrs implements Table.
func (t *FakeTable) LocalAddrs(family proxier.Family) ([]netip.Addr, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.AddrErr != nil {
		return nil, fmt.Errorf("list local addresses: %w", t.AddrErr)
	}
	var out []netip.Addr
	for _, a := range t.addrs {
		if proxier.FamilyOf(a) == family {
			out = append(out, a)
		}
	}
	return out, nil
}

// Close implements Table.
func (t *FakeTable) Close() error { return nil }

// UDPFlow builds a conntrack flow as the kernel reports it: orig is the
// original direction (client → service address), replySrc the address
// replies come from (the endpoint after DNAT, or the service address
// itself when the flow was never DNATed). The reply goes back to the
// client.
func UDPFlow(client, orig, replySrc netip.AddrPort) *netlink.ConntrackFlow {
	return flow(protoUDP, client, orig, replySrc)
}

// TCPFlow is UDPFlow for TCP.
func TCPFlow(client, orig, replySrc netip.AddrPort) *netlink.ConntrackFlow {
	return flow(protoTCP, client, orig, replySrc)
}

// SCTPFlow is UDPFlow for SCTP.
func SCTPFlow(client, orig, replySrc netip.AddrPort) *netlink.ConntrackFlow {
	return flow(protoSCTP, client, orig, replySrc)
}

const (
	protoTCP  = 6
	protoSCTP = 132
)

func flow(proto uint8, client, orig, replySrc netip.AddrPort) *netlink.ConntrackFlow {
	fam := uint8(netlink.FAMILY_V4)
	if orig.Addr().Is6() {
		fam = uint8(netlink.FAMILY_V6)
	}
	return &netlink.ConntrackFlow{
		FamilyType: fam,
		Forward: netlink.IPTuple{
			Protocol: proto,
			SrcIP:    client.Addr().AsSlice(), SrcPort: client.Port(),
			DstIP: orig.Addr().AsSlice(), DstPort: orig.Port(),
		},
		Reverse: netlink.IPTuple{
			Protocol: proto,
			SrcIP:    replySrc.Addr().AsSlice(), SrcPort: replySrc.Port(),
			DstIP: client.Addr().AsSlice(), DstPort: client.Port(),
		},
	}
}
