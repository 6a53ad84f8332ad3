package nftables

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// minKernel is the oldest kernel the mode runs on, as kube-proxy's
// nftables mode: from 5.13 on, the distribution's nft is new enough
// (≥ 1.0.1) not to be broken by the rules a newer nft writes.
var minKernel = [2]int{5, 13}

// skipKernelCheckEnv is kube-proxy's escape hatch for kernels that
// report an old version but have the features.
const skipKernelCheckEnv = "KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK"

// Probe checks, in the current network namespace, that the mode can run:
// an nft binary ≥ 1.0.1 that may change the kernel's tables (knftables
// checks both with a dry-run transaction) and a kernel ≥ 5.13.
func Probe(ctx context.Context) error {
	if _, err := knftables.New(knftables.IPv4Family, tableName); err != nil {
		return err
	}
	if os.Getenv(skipKernelCheckEnv) != "" {
		return nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("could not read the kernel version: %w", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !kernelAtLeast(release, minKernel) {
		return fmt.Errorf("kernel %s is older than %d.%d (set %s to skip this check)", release, minKernel[0], minKernel[1], skipKernelCheckEnv)
	}
	return nil
}

// kernelAtLeast compares the major.minor of a kernel release string
// ("6.8.0-45-generic") with want; an unreadable release passes, as the
// dry run above already showed nft works.
func kernelAtLeast(release string, want [2]int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return true
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return true
	}
	return major > want[0] || major == want[0] && minor >= want[1]
}
