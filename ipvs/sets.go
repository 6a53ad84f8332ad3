package ipvs

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kproxy/kproxy/proxier"
)

// setDef declares one ipset kproxy owns.
type setDef struct {
	name4, name6 string // names are ≤ 31 characters (IPSET_MAXNAMELEN)
	kind         string // ipset type
	comment      string
}

// The sets, as data. Every entry of a hash:ip,port set is "ip,proto:port".
var (
	setClusterIP     = setDef{"KUBE-CLUSTER-IP", "KUBE-6-CLUSTER-IP", "hash:ip,port", "ClusterIP:port of Services with endpoints"}
	setLoopBack      = setDef{"KUBE-LOOP-BACK", "KUBE-6-LOOP-BACK", "hash:ip,port,ip", "endpoint reaching itself (hairpin): masquerade"}
	setExternalIP    = setDef{"KUBE-EXTERNAL-IP", "KUBE-6-EXTERNAL-IP", "hash:ip,port", "externalIP:port, Cluster policy"}
	setExternalLocal = setDef{"KUBE-EXTERNAL-IP-LOCAL", "KUBE-6-EXTERNAL-IP-LOCAL", "hash:ip,port", "externalIP:port, Local policy"}
	setLB            = setDef{"KUBE-LOAD-BALANCER", "KUBE-6-LOAD-BALANCER", "hash:ip,port", "LoadBalancer ingress IP:port"}
	setLBLocal       = setDef{"KUBE-LOAD-BALANCER-LOCAL", "KUBE-6-LOAD-BALANCER-LOCAL", "hash:ip,port", "LoadBalancer IP:port, Local policy"}
	setLBFW          = setDef{"KUBE-LOAD-BALANCER-FW", "KUBE-6-LOAD-BALANCER-FW", "hash:ip,port", "LoadBalancer IP:port with source ranges"}
	setLBSource      = setDef{"KUBE-LOAD-BALANCER-SOURCE-CIDR", "KUBE-6-LB-SOURCE-CIDR", "hash:ip,port,net", "LoadBalancer IP:port,allowed source range"}
	setNodePort      = setDef{"KUBE-NODE-PORT", "KUBE-6-NODE-PORT", "hash:ip,port", "node address:NodePort, Cluster policy"}
	setNodePortLocal = setDef{"KUBE-NODE-PORT-LOCAL", "KUBE-6-NODE-PORT-LOCAL", "hash:ip,port", "node address:NodePort, Local policy"}
	setHealthCheck   = setDef{"KUBE-HEALTH-CHECK-NODE-PORT", "KUBE-6-HEALTH-CHECK-NODE-PORT", "hash:ip,port", "node address:healthCheckNodePort"}
	setNoEndpoints   = setDef{"KUBE-NO-ENDPOINTS", "KUBE-6-NO-ENDPOINTS", "hash:ip,port", "Service IP:port without any endpoint: REJECT"}
	setNoLocal       = setDef{"KUBE-NO-LOCAL-ENDPOINTS", "KUBE-6-NO-LOCAL-ENDPOINTS", "hash:ip,port", "Local-policy IP:port without a local endpoint: DROP"}
	setExtNoLocal    = setDef{"KUBE-EXTERNAL-NO-LOCAL", "KUBE-6-EXTERNAL-NO-LOCAL", "hash:ip,port", "Local-policy external IP:port without a local endpoint: DROP from outside the cluster"}
	setIPVSIPs       = setDef{"KUBE-IPVS-IPS", "KUBE-6-IPVS-IPS", "hash:ip", "addresses on kube-ipvs0"}
)

var allSets = []setDef{
	setClusterIP, setLoopBack, setExternalIP, setExternalLocal, setLB, setLBLocal, setLBFW,
	setLBSource, setNodePort, setNodePortLocal, setHealthCheck, setNoEndpoints, setNoLocal, setExtNoLocal, setIPVSIPs,
}

func (d setDef) name(f proxier.Family) string {
	if f == proxier.IPv6 {
		return d.name6
	}
	return d.name4
}

// ownedSets maps the names of the family's sets to their definitions.
func ownedSets(f proxier.Family) map[string]setDef {
	m := map[string]setDef{}
	for _, d := range allSets {
		m[d.name(f)] = d
	}
	return m
}

func protoName(p Protocol) string { return strings.ToLower(string(p)) }

func entryIPPort(a netip.Addr, p Protocol, port uint16) string {
	return fmt.Sprintf("%s,%s:%d", a, protoName(p), port)
}

// SetEntry is one parsed ipset entry.
type SetEntry struct {
	IP    netip.Addr
	Proto Protocol // "" when the set type has no port
	Port  uint16
	IP2   netip.Prefix // third member of hash:ip,port,ip / hash:ip,port,net
}

// ParseEntry parses the text form of an entry of one of kproxy's sets.
func ParseEntry(s string) (SetEntry, error) {
	var e SetEntry
	parts := strings.Split(s, ",")
	ip, err := netip.ParseAddr(parts[0])
	if err != nil {
		return e, fmt.Errorf("set entry %q: %w", s, err)
	}
	e.IP = ip
	if len(parts) >= 2 {
		proto, port, ok := strings.Cut(parts[1], ":")
		if !ok {
			return e, fmt.Errorf("set entry %q: want proto:port", s)
		}
		var n uint16
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil {
			return e, fmt.Errorf("set entry %q: bad port: %w", s, err)
		}
		e.Proto, e.Port = Protocol(strings.ToUpper(proto)), n
	}
	if len(parts) == 3 {
		if strings.Contains(parts[2], "/") {
			e.IP2, err = netip.ParsePrefix(parts[2])
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(parts[2])
			e.IP2 = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return e, fmt.Errorf("set entry %q: %w", s, err)
		}
	}
	if len(parts) > 3 {
		return e, fmt.Errorf("set entry %q: too many members", s)
	}
	return e, nil
}

// String is the text form ParseEntry reads, for the given set type.
func (e SetEntry) String(kind string) string {
	switch kind {
	case "hash:ip":
		return e.IP.String()
	case "hash:ip,port":
		return entryIPPort(e.IP, e.Proto, e.Port)
	case "hash:ip,port,ip":
		return entryIPPort(e.IP, e.Proto, e.Port) + "," + e.IP2.Addr().String()
	default: // hash:ip,port,net
		return entryIPPort(e.IP, e.Proto, e.Port) + "," + e.IP2.Masked().String()
	}
}
