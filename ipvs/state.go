package ipvs

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is an IPVS protocol: "TCP", "UDP" or "SCTP".
type Protocol string

// VSKey identifies a virtual server.
type VSKey struct {
	Proto Protocol
	Addr  netip.Addr
	Port  uint16
}

func (k VSKey) String() string {
	return fmt.Sprintf("%s %s", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
}

func compareVSKeys(a, b VSKey) int {
	if c := strings.Compare(string(a.Proto), string(b.Proto)); c != 0 {
		return c
	}
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// VirtualServer is one IPVS virtual server (NAT mode) and its real servers.
type VirtualServer struct {
	VSKey
	Scheduler string
	// Timeout is the persistence (ClientIP affinity) timeout in seconds;
	// 0 means not persistent.
	Timeout uint32
	Dests   map[netip.AddrPort]Dest
}

// Dest is a real server's weight and, when read from the kernel, its
// connection counts.
type Dest struct {
	Weight        int
	ActiveConns   int
	InactiveConns int
}

// sameConfig reports whether two virtual servers need no update (their
// real servers aside).
func (v *VirtualServer) sameConfig(o *VirtualServer) bool {
	return v.Scheduler == o.Scheduler && v.Timeout == o.Timeout
}

func (v *VirtualServer) clone() *VirtualServer {
	c := *v
	c.Dests = maps.Clone(v.Dests)
	if c.Dests == nil {
		c.Dests = map[netip.AddrPort]Dest{}
	}
	return &c
}

// State is the part of the kernel kproxy's ipvs mode manages, desired or
// current.
type State struct {
	VirtualServers map[VSKey]*VirtualServer
	// Addrs are the addresses bound to kube-ipvs0.
	Addrs map[netip.Addr]bool
	// Sets maps a set name to its entries (ipset's text form).
	Sets map[string]map[string]bool
	// Rules is the iptables-restore input for kproxy's chains (without the
	// jump rules from the built-in chains).
	Rules string
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		VirtualServers: map[VSKey]*VirtualServer{},
		Addrs:          map[netip.Addr]bool{},
		Sets:           map[string]map[string]bool{},
	}
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := NewState()
	for k, v := range s.VirtualServers {
		c.VirtualServers[k] = v.clone()
	}
	maps.Copy(c.Addrs, s.Addrs)
	for n, e := range s.Sets {
		c.Sets[n] = maps.Clone(e)
	}
	c.Rules = s.Rules
	return c
}

// Dump is a deterministic text form of the state: virtual servers with
// their real servers, addresses, sets, rules.
func (s *State) Dump() string {
	var b strings.Builder
	b.WriteString("# virtual servers\n")
	for _, k := range slices.SortedFunc(maps.Keys(s.VirtualServers), compareVSKeys) {
		v := s.VirtualServers[k]
		fmt.Fprintf(&b, "%s %s", k, v.Scheduler)
		if v.Timeout > 0 {
			fmt.Fprintf(&b, " persistent %d", v.Timeout)
		}
		b.WriteString("\n")
		for _, d := range slices.SortedFunc(maps.Keys(v.Dests), netip.AddrPort.Compare) {
			fmt.Fprintf(&b, "  -> %s masq weight %d\n", d, v.Dests[d].Weight)
		}
	}
	fmt.Fprintf(&b, "# addresses on %s\n", Interface)
	for _, a := range slices.SortedFunc(maps.Keys(s.Addrs), netip.Addr.Compare) {
		fmt.Fprintf(&b, "%s\n", a)
	}
	b.WriteString("# ipsets\n")
	for _, n := range slices.Sorted(maps.Keys(s.Sets)) {
		fmt.Fprintf(&b, "%s (%d)\n", n, len(s.Sets[n]))
		for _, e := range slices.Sorted(maps.Keys(s.Sets[n])) {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	b.WriteString("# iptables\n")
	b.WriteString(s.Rules)
	return b.String()
}

// applyScope makes s (the kernel as last applied) match want for the keys
// in sc, after a partial sync applied them. Virtual servers kproxy does
// not own stay.
func (s *State) applyScope(want *State, sc *scope, owned func(VSKey) bool) {
	for k := range sc.vs {
		if v, ok := want.VirtualServers[k]; ok {
			s.VirtualServers[k] = v.clone()
		} else if owned(k) {
			delete(s.VirtualServers, k)
		}
	}
	for a := range sc.addrs {
		if want.Addrs[a] {
			s.Addrs[a] = true
		} else {
			delete(s.Addrs, a)
		}
	}
	for n, es := range sc.entries {
		if s.Sets[n] == nil {
			s.Sets[n] = map[string]bool{}
		}
		for e := range es {
			if want.Sets[n][e] {
				s.Sets[n][e] = true
			} else {
				delete(s.Sets[n], e)
			}
		}
	}
	s.Rules = want.Rules
}
