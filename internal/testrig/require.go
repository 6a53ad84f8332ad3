package testrig

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// EnvRequireKernel is the environment variable that turns "skip" into "fail":
// with KPROXY_REQUIRE_KERNEL=1 a missing prerequisite (root, iproute2,
// iptables-restore, the upstream binaries) fails the test instead of skipping it.
const EnvRequireKernel = "KPROXY_REQUIRE_KERNEL"

// KernelRequired reports whether KPROXY_REQUIRE_KERNEL=1 is set.
func KernelRequired() bool { return os.Getenv(EnvRequireKernel) == "1" }

// kernelTools are the host commands every kernel test needs.
var kernelTools = []string{"ip", "iptables-restore"}

// CheckKernel returns nil if the process can run kernel tests: it is root and the
// host has the kernelTools. The error says what is missing.
func CheckKernel() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("kernel tests need root (euid %d)", os.Geteuid())
	}
	for _, tool := range kernelTools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("kernel tests need %q in PATH (hack/install-deps.sh installs it): %w", tool, err)
		}
	}
	return nil
}

// RequireRoot skips the test if CheckKernel fails, or fails it if
// KPROXY_REQUIRE_KERNEL=1.
func RequireRoot(t testing.TB) {
	t.Helper()
	if err := CheckKernel(); err != nil {
		SkipOrFail(t, err.Error())
	}
}

// SkipOrFail skips the test with msg, or fails it if KPROXY_REQUIRE_KERNEL=1.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if KernelRequired() {
		t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, EnvRequireKernel)
	}
	t.Skip(msg)
}
