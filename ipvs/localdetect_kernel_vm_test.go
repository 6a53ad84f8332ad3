package ipvs

import (
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelDetectLocalByInterfacePrefix (in the VM): with local traffic
// detected by the pods' veth name prefix, a pod's connection to a
// ClusterIP keeps its source, while the outside client's is masqueraded
// (else the endpoint on the other node would answer the client directly
// and the connection would fail).
func TestKernelDetectLocalByInterfacePrefix(t *testing.T) {
	e := newKernelEnv(t, Options{LocalDetector: proxier.DetectLocalByInterfacePrefix(testrig.PodVethPrefix)})
	remote := e.pod(2, 0)
	e.w.set(makeService("default", "web", "10.96.0.10", []string{"80"}), epOf(remote))
	e.sync(true)
	if err := e.topo.AddClientRoute("10.96.0.0/16", 1); err != nil {
		t.Fatal(err)
	}
	pod := e.pod(1, 0)
	for _, c := range []struct {
		from, want, what string
	}{
		{pod.Netns, pod.IP, "pod (not masqueraded)"},
		{e.topo.Client, e.topo.Node(1).IP, "outside client (masqueraded)"},
	} {
		got, replies := e.probe(c.from, "10.96.0.10:80", 2)
		if got[remote.Name] != 2 {
			t.Fatalf("%s to the ClusterIP: %v", c.what, got)
		}
		for _, r := range replies {
			if r.SeenIP() != c.want {
				t.Errorf("%s: endpoint saw %s, want %s", c.what, r.SeenIP(), c.want)
			}
		}
	}
}
