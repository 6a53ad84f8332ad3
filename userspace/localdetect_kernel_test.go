package userspace

import (
	"slices"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelInterfaceDetectorETPLocal: with --detect-local-mode
// InterfaceNamePrefix matching the pods' veths, an
// externalTrafficPolicy=Local NodePort without a local endpoint still
// serves a pod of the node (redirected by "-i veth+", sent to the Cluster
// endpoint), while the outside client is dropped.
func TestKernelInterfaceDetectorETPLocal(t *testing.T) {
	r := newKernelRig(t, func(o *Options) { o.LocalDetector = proxier.DetectLocalByInterfacePrefix(testrig.PodVethPrefix) })
	scenarios := flowtest.Scenarios()
	sc := scenarios[slices.IndexFunc(scenarios, func(s flowtest.Scenario) bool { return s.Name == "traffic-policy-local" })]
	r.sync(t, sc.Snapshot())
	nodePort := r.topo.Node(1).IP + ":30041" // etp-none: its only endpoint is 10.244.2.11 on node2

	pod := r.topo.Node(1).Pods[0]
	reply, err := testrig.ProbeTCP(pod.Netns, nodePort, 2*time.Second)
	if err != nil || reply.Name != "10.244.2.11:8080" {
		t.Errorf("pod %s (in on %s) to the NodePort: %q, %v; want an answer from the Cluster endpoint 10.244.2.11:8080", pod.IP, pod.HostVeth, reply.Name, err)
	}
	if _, err := testrig.ProbeTCP(r.topo.Client, nodePort, time.Second); testrig.Classify(err) != testrig.Timeout {
		t.Errorf("outside client to the NodePort: %v, want dropped (no local endpoint)", err)
	}
}
