package ipvs

// Rule-level differential test against upstream kube-proxy v1.37.2 in ipvs
// mode (issue 12): the same objects, the same flags, one VM. The guest
// side (TestGuestParity, parity_guest_test.go) runs upstream's kube-proxy,
// reads the node's state, cleans up, runs kproxy and reads it again.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

const guestParityKubeconfig = "/etc/kproxy/parity.kubeconfig"

// TestVMParity creates a world of Services covering what the ipvs mode
// translates, then boots the VM once with both binaries.
func TestVMParity(t *testing.T) {
	prepareVM(t)
	cp := startGuestControlPlane(t, "parity")
	ctx, c := context.Background(), cp.Client
	for _, s := range parityWorld() {
		if err := createParityService(ctx, c, s); err != nil {
			t.Fatalf("%s: %v", s.svc.Name, err)
		}
	}
	kubeconfig, err := os.ReadFile(cp.KubeProxyKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := testrig.UpstreamBinary(testrig.BinKubeProxy)
	if err != nil {
		testrig.SkipOrFail(t, err.Error())
	}
	up, err := os.ReadFile(upstream)
	if err != nil {
		t.Fatal(err)
	}
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestParity$'", "-test.timeout", "6m"},
		files:   map[string][]byte{guestParityKubeconfig: kubeconfig, guestKproxy: buildStaticKproxy(t), guestKubeProxy: up},
		netns:   cp.Netns,
		mem:     "1536M",
		timeout: 8 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestGuestParity") {
		t.Error("TestGuestParity did not pass in the guest")
	}
}

// startGuestControlPlane starts a control plane for a VM guest with the
// guest's Node and the namespace ns.
func startGuestControlPlane(t *testing.T, ns string) *testrig.ControlPlane {
	t.Helper()
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 1})
	cp := testrig.StartControlPlane(t, topo)
	ctx := context.Background()
	if _, err := cp.Client.CoreV1().Nodes().Create(ctx, makeNode(e2eNode, e2eGuestIP), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cp
}

// buildStaticKproxy builds the kproxy binary without cgo (the guest has
// only the base image's libraries) and returns it.
func buildStaticKproxy(t *testing.T) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kproxy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kproxy")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static kproxy: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
