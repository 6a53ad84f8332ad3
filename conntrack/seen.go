package conntrack

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
)

// seenServices is what the Cleaner keeps of the snapshots it was given,
// so that a sync costs the Cleaner work in the Services that changed, not
// in all of them: a snapshot's unchanged Services are the previous one's
// pointers (see proxier.Snapshot), so one pointer comparison per Service
// finds the changed ones.
type seenServices struct {
	services map[types.NamespacedName]*proxier.Service
	// udp are the Services with a UDP port: the index is rebuilt from
	// them alone.
	udp map[types.NamespacedName]*proxier.Service
	// tcp counts the TCP service ports that claim each service address.
	tcp map[netip.AddrPort]int
	// added are the TCP service addresses that appeared since the last
	// successful clean-up (and are still there).
	added addrSet
	// trackTCP: tcp and added are kept (for UnNATedTCP).
	trackTCP bool
}

func newSeenServices(trackTCP bool) *seenServices {
	return &seenServices{services: map[types.NamespacedName]*proxier.Service{},
		udp: map[types.NamespacedName]*proxier.Service{}, tcp: map[netip.AddrPort]int{}, added: addrSet{},
		trackTCP: trackTCP}
}

// update brings the state to snap.
func (s *seenServices) update(snap *proxier.Snapshot) {
	before, kept := len(s.services), 0
	for name, svc := range snap.Services {
		old, ok := s.services[name]
		if ok {
			kept++
		}
		if !ok || old != svc {
			s.replace(name, old, svc)
		}
	}
	if kept == before {
		return // none removed
	}
	for name, old := range s.services {
		if _, ok := snap.Services[name]; !ok {
			s.replace(name, old, nil)
		}
	}
}

// replace swaps one Service's contribution; old or cur may be nil.
func (s *seenServices) replace(name types.NamespacedName, old, cur *proxier.Service) {
	// Counting cur first keeps an address both claim from looking new.
	s.countTCP(cur, +1)
	s.countTCP(old, -1)
	delete(s.udp, name)
	delete(s.services, name)
	if cur == nil {
		return
	}
	s.services[name] = cur
	if hasProtocol(cur, v1.ProtocolUDP) {
		s.udp[name] = cur
	}
}

// countTCP adds d to the count of every TCP service address of svc,
// recording the addresses that appear and forgetting those that go.
func (s *seenServices) countTCP(svc *proxier.Service, d int) {
	if svc == nil || !s.trackTCP {
		return
	}
	for i := range svc.Ports {
		p := &svc.Ports[i]
		if p.Protocol != v1.ProtocolTCP {
			continue
		}
		for a := range serviceAddrs(p) {
			before := s.tcp[a]
			if before+d <= 0 {
				delete(s.tcp, a)
				delete(s.added, a)
				continue
			}
			if before == 0 {
				s.added[a] = struct{}{}
			}
			s.tcp[a] = before + d
		}
	}
}

// udpSnapshot is a snapshot of the UDP Services alone, for newIndex.
func (s *seenServices) udpSnapshot(family proxier.Family) *proxier.Snapshot {
	return &proxier.Snapshot{Family: family, Services: s.udp}
}

func hasProtocol(svc *proxier.Service, proto v1.Protocol) bool {
	return slices.ContainsFunc(svc.Ports, func(p proxier.Port) bool { return p.Protocol == proto })
}
