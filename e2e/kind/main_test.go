//go:build kind

package kind

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
)

// kc is the cluster every test uses; TestMain brings it up and down.
var kc *cluster

func TestMain(m *testing.M) { os.Exit(runAll(m)) }

// runAll brings the cluster up with no proxy (the first test deploys
// upstream kube-proxy, then takes over with kproxy), runs the tests, takes it
// down, and fails when anything of the machine's root network namespace or
// its host-wide sysctls changed on the way.
func runAll(m *testing.M) int {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e/kind: must run as root (hack/test-kind.sh)")
		return 1
	}
	script := filepath.Join(repoRoot(), "hack", "kind-offline.sh")
	reuse := os.Getenv("KPROXY_KIND_REUSE") == "1"
	rootBefore, err := testrig.SnapshotRootNetns()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/kind: snapshot of the root network namespace:", err)
		return 1
	}
	sysctlsBefore := snapshotHostSysctls()
	if !reuse {
		if err := stream(script, "up", "none"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/kind: hack/kind-offline.sh up:", err)
			return 1
		}
	}
	code := 1
	if kc, err = connect(script); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/kind: connecting to the cluster:", err)
	} else {
		code = m.Run()
	}
	if reuse {
		return code
	}
	if err := stream(script, "down"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/kind: hack/kind-offline.sh down:", err)
		code = 1
	}
	if code |= checkHostUnchanged(rootBefore, sysctlsBefore); code != 0 {
		return 1
	}
	return 0
}

// checkHostUnchanged compares the root namespace and the host-wide sysctls
// with their state before the cluster existed; 1 when anything differs.
func checkHostUnchanged(rootBefore testrig.RootSnapshot, sysctlsBefore hostSysctls) int {
	code := 0
	rootAfter, err := testrig.SnapshotRootNetns()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/kind: snapshot of the root network namespace:", err)
		return 1
	}
	if diff := rootBefore.Diff(rootAfter); diff != "" {
		fmt.Fprintln(os.Stderr, "e2e/kind: the root network namespace changed:\n"+diff)
		code = 1
	}
	if diff := sysctlsBefore.diff(snapshotHostSysctls()); diff != "" {
		fmt.Fprintln(os.Stderr, "e2e/kind: host-wide sysctls changed:\n"+diff)
		code = 1
	}
	if _, err := os.Stat("/lib/modules"); err == nil && !libModulesBefore {
		fmt.Fprintln(os.Stderr, "e2e/kind: /lib/modules was left behind")
		code = 1
	}
	return code
}

// stream runs a command with its output on stderr (progress of long builds).
func stream(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}
