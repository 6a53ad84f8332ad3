package ipvs

// The host side of the real-kernel tests: the host kernel has no IPVS, so
// TestVM boots a Debian kernel in qemu (hack/ipvs-vm) and runs this
// package's TestKernel* tests inside it. On a laptop without qemu or root
// it skips; with KPROXY_REQUIRE_KERNEL=1 it prepares the VM itself
// (hack/ipvs-vm/setup.sh) and fails if the VM cannot boot.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// inVM reports whether this test binary runs inside the IPVS VM.
func inVM() bool { return os.Getenv("KPROXY_IPVS_VM") == "1" }

// requireVM skips a TestKernel* test outside the VM: TestVM runs it there.
func requireVM(t *testing.T) {
	t.Helper()
	if !inVM() {
		t.Skip("runs inside the IPVS VM (go test -run TestVM ./ipvs/ boots it)")
	}
}

func vmCache() string {
	if c := os.Getenv("KPROXY_CACHE"); c != "" {
		return filepath.Join(c, "ipvs-vm")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kproxy", "ipvs-vm")
}

// prepareVM makes sure qemu and the VM image exist: it runs
// hack/ipvs-vm/setup.sh (cheap when up to date) if root, else skips.
func prepareVM(t *testing.T) string {
	t.Helper()
	testrig.RequireRoot(t)
	if inVM() {
		t.Skip("already inside the VM")
	}
	if _, err := os.Stat(filepath.Join(vmCache(), "base.cpio.gz")); err != nil && !testrig.KernelRequired() &&
		os.Getenv("KPROXY_IPVS_VM_SETUP") != "1" {
		t.Skip("IPVS VM not prepared: run hack/ipvs-vm/setup.sh (or set KPROXY_REQUIRE_KERNEL=1)")
	}
	out, err := exec.Command("../hack/ipvs-vm/setup.sh").CombinedOutput()
	if err != nil {
		testrig.SkipOrFail(t, fmt.Sprintf("hack/ipvs-vm/setup.sh: %v\n%s", err, out))
	}
	return vmCache()
}

// vmRun is one boot of the VM.
type vmRun struct {
	// args for the test binary (ipvs.test) in the guest.
	args []string
	// files maps guest paths to contents added to the initramfs.
	files map[string][]byte
	// netns, if set, runs qemu inside that network namespace with a
	// user-mode network: the guest reaches the namespace's addresses.
	netns   string
	mem     string
	timeout time.Duration
	// env is exported to the test binary.
	env map[string]string
}

var testResult = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// bootVM builds this package's test binary, boots the VM with it and
// returns the guest's serial output; it fails t unless the guest reported
// PASS.
func bootVM(t *testing.T, r vmRun) string {
	t.Helper()
	cache := prepareVM(t)
	dir := t.TempDir()
	stage := filepath.Join(dir, "stage")
	bin := filepath.Join(stage, "usr/local/bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(bin, "ipvs.test"), ".")
	// Same cgo setting as the host's go test, so the build cache is hit;
	// the libraries it links are copied next to the base image's ones.
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build test binary: %v\n%s", err, out)
	}
	if out, err := exec.Command("sh", "-c", fmt.Sprintf(
		"for l in $(ldd %q 2>/dev/null | grep -o '/[^ ]*'); do mkdir -p %q$(dirname $l); cp -L $l %q$l; done",
		filepath.Join(bin, "ipvs.test"), stage, stage)).CombinedOutput(); err != nil {
		t.Fatalf("copy libraries: %v\n%s", err, out)
	}
	script := "#!/bin/sh\ncd /root\n"
	for k, v := range r.env {
		script += fmt.Sprintf("export %s=%q\n", k, v)
	}
	script += "exec /usr/local/bin/ipvs.test " + strings.Join(r.args, " ") + "\n"
	files := map[string][]byte{"usr/local/bin/run-tests": []byte(script)}
	for p, c := range r.files {
		files[strings.TrimPrefix(p, "/")] = c
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(stage, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, p), c, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio.gz")
	pack := exec.Command("sh", "-c", fmt.Sprintf(
		"cat %q > %q && cd %q && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 >> %q",
		filepath.Join(cache, "base.cpio.gz"), initrd, stage, initrd))
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("pack initramfs: %v\n%s", err, out)
	}
	mem := r.mem
	if mem == "" {
		mem = "768M"
	}
	qemu := []string{"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", mem, "-smp", "1",
		"-nographic", "-no-reboot", "-kernel", filepath.Join(cache, "vmlinuz"), "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1"}
	if r.netns != "" {
		qemu = append(qemu, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=")
		qemu = append([]string{"ip", "netns", "exec", r.netns}, qemu...)
	} else {
		qemu = append(qemu, "-nic", "none")
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu[0], qemu[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		testrig.SkipOrFail(t, "start qemu: "+err.Error())
	}
	var log strings.Builder
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintf(&log, "[%6.1fs] %s\n", time.Since(start).Seconds(), line)
		if m := testResult.FindStringSubmatch(line); m != nil {
			t.Logf("guest: %s %s", m[1], m[2])
		}
	}
	werr := cmd.Wait()
	out := log.String()
	if err := os.WriteFile(filepath.Join(os.TempDir(), "kproxy-ipvs-vm-"+t.Name()+".log"), []byte(out), 0o644); err == nil {
		t.Logf("serial log: %s", filepath.Join(os.TempDir(), "kproxy-ipvs-vm-"+t.Name()+".log"))
	}
	switch {
	case strings.Contains(out, "IPVS-VM-RESULT: PASS"):
		t.Logf("VM run passed in %.1fs", time.Since(start).Seconds())
	case !strings.Contains(out, "ipvsvm: running"):
		testrig.SkipOrFail(t, fmt.Sprintf("the VM did not boot (qemu: %v):\n%s", werr, tail(out, 40)))
	default:
		t.Errorf("guest tests failed (qemu: %v):\n%s", werr, tail(out, 200))
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestVM runs every TestKernel* test in one boot of the VM.
func TestVM(t *testing.T) {
	run := "^TestKernel"
	if r := os.Getenv("KPROXY_IPVS_VM_RUN"); r != "" {
		run = r // e.g. ^TestKernelFlowTable$ while working on one test
	}
	out := bootVM(t, vmRun{args: []string{"-test.v", "-test.run", "'" + run + "'", "-test.timeout", "4m"}})
	if n := strings.Count(out, "--- PASS: TestKernel"); n == 0 {
		t.Errorf("no TestKernel test passed in the guest")
	}
	if strings.Contains(out, "--- SKIP: TestKernel") {
		t.Errorf("kernel tests skipped inside the VM")
	}
}
