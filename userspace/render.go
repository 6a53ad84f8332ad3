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
		spec := &specs[i]
		ports[spec.Key] = renderPortBase + i
		fmt.Fprintf(&b, "#   %s %s :%d -> %s\n", spec.Key, protocolName(spec), ports[spec.Key], describeEndpoints(spec))
	}
	b.WriteString(renderRules(specs, ports, &snap.Node, &o).Text)
	return b.String(), nil
}

// describeEndpoints lists where a listener's connections may go.
func describeEndpoints(spec *listenerSpec) string {
	if spec.Reject {
		return "reject (no endpoints)"
	}
	usable := &spec.Src.Usable
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
	if spec.Src.AffinityTimeout > 0 {
		parts = append(parts, fmt.Sprintf("affinity=%ds", spec.Src.AffinityTimeout))
	}
	local := spec.Src.InternalPolicyLocal
	if spec.Key.Class == external {
		local = spec.Src.ExternalPolicyLocal
	}
	if local {
		parts = append(parts, "local="+list(usable.Local))
		if spec.Key.Class == external {
			parts = append(parts, "pods-and-node="+list(clusterOrLocal(usable)))
		}
	} else {
		parts = append(parts, "cluster="+list(usable.Cluster))
	}
	return strings.Join(parts, " ")
}
