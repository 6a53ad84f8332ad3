package userspace

import (
	"fmt"
	"strings"

	"github.com/kproxy/kproxy/proxier"
)

// renderPortBase numbers the listeners in Render's output. The running
// proxy binds kernel-chosen ports instead; Render says so in its header.
const renderPortBase = 40000

// Render shows what the userspace mode would do for snap, with no I/O: the
// listeners (one per service port and traffic class, with the endpoints
// each may use) and the iptables-restore input that redirects to them.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	o, err := opts.normalized()
	if err != nil {
		return "", err
	}
	specs, errs := plan(snap)
	var b strings.Builder
	fmt.Fprintf(&b, "# kproxy userspace mode, %s\n", snap.Family)
	for _, e := range errs {
		fmt.Fprintf(&b, "# skipped: %v\n", e)
	}
	fmt.Fprintf(&b, "# listeners (proxy ports are placeholders numbered from %d; the running proxy binds kernel-chosen ports)\n", renderPortBase)
	ports := make(map[listenerKey]int, len(specs))
	for i := range specs {
		s := &specs[i]
		ports[s.Key] = renderPortBase + i
		fmt.Fprintf(&b, "#   %s %s :%d -> %s\n", s.Key, strings.ToLower(string(s.Protocol)), ports[s.Key], describeEndpoints(s))
	}
	b.WriteString(renderRules(specs, ports, &snap.Node, &o).Text)
	return b.String(), nil
}

// describeEndpoints lists where a listener's connections may go.
func describeEndpoints(s *listenerSpec) string {
	if s.Reject {
		return "reject (no endpoints)"
	}
	u := &s.Src.Usable
	list := func(eps []proxier.Endpoint) string {
		if len(eps) == 0 {
			return "none"
		}
		parts := make([]string, len(eps))
		for i, e := range eps {
			parts[i] = e.String()
		}
		return strings.Join(parts, ",")
	}
	var parts []string
	if s.Src.AffinityTimeout > 0 {
		parts = append(parts, fmt.Sprintf("affinity=%ds", s.Src.AffinityTimeout))
	}
	local := s.Src.InternalPolicyLocal
	if s.Key.Class == external {
		local = s.Src.ExternalPolicyLocal
	}
	if local {
		parts = append(parts, "local="+list(u.Local))
		if s.Key.Class == external {
			parts = append(parts, "pods-and-node="+list(clusterOrLocal(u)))
		}
	} else {
		parts = append(parts, "cluster="+list(u.Cluster))
	}
	return strings.Join(parts, " ")
}
