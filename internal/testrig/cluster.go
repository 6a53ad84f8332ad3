package testrig

import "testing"

// StartCluster is the set-up of a test that runs the kproxy binary
// against a real apiserver: it skips (or fails with
// KPROXY_REQUIRE_KERNEL=1) without root, the upstream binaries or a kproxy
// build, then builds the topology and starts a control plane that has the
// topology's Node objects. It returns the topology, the control plane and
// the kproxy binary; the first two are removed when the test ends.
func StartCluster(t testing.TB, opts TopologyOptions) (*Topology, *ControlPlane, string) {
	t.Helper()
	RequireRoot(t)
	RequireUpstream(t)
	bin := RequireKproxyBinary(t)
	topo := NewTopology(t, opts)
	cp := StartControlPlane(t, topo)
	if err := cp.CreateNodes(t.Context(), topo); err != nil {
		t.Fatal(err)
	}
	return topo, cp, bin
}
