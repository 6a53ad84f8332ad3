package conntrack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"
)

// Sysctl names, relative to the Sysctls root ("/" in production).
const (
	SysctlMax              = "proc/sys/net/netfilter/nf_conntrack_max"
	SysctlTCPEstablished   = "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"
	SysctlTCPCloseWait     = "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait"
	SysctlTCPBeLiberal     = "proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
	SysctlUDPTimeout       = "proc/sys/net/netfilter/nf_conntrack_udp_timeout"
	SysctlUDPStreamTimeout = "proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream"
	SysctlHashsize         = "sys/module/nf_conntrack/parameters/hashsize"
)

// Tunables are the conntrack settings kube-proxy applies at start. A zero
// field means "leave the kernel's value alone".
type Tunables struct {
	// MaxPerCore × CPUs (at least Min) becomes nf_conntrack_max; 0 leaves
	// nf_conntrack_max (and the hash size) alone and ignores Min.
	MaxPerCore int32
	Min        int32
	// CPUs overrides the CPU count (0: runtime.NumCPU()).
	CPUs                  int
	TCPEstablishedTimeout time.Duration
	TCPCloseWaitTimeout   time.Duration
	TCPBeLiberal          bool
	UDPTimeout            time.Duration
	UDPStreamTimeout      time.Duration
}

// TunablesFromConfig reads the conntrack section of a
// KubeProxyConfiguration (nil pointers mean "leave alone").
func TunablesFromConfig(c kpconfig.KubeProxyConntrackConfiguration) Tunables {
	t := Tunables{TCPBeLiberal: c.TCPBeLiberal, UDPTimeout: c.UDPTimeout.Duration, UDPStreamTimeout: c.UDPStreamTimeout.Duration}
	if c.MaxPerCore != nil {
		t.MaxPerCore = *c.MaxPerCore
	}
	if c.Min != nil {
		t.Min = *c.Min
	}
	if c.TCPEstablishedTimeout != nil {
		t.TCPEstablishedTimeout = c.TCPEstablishedTimeout.Duration
	}
	if c.TCPCloseWaitTimeout != nil {
		t.TCPCloseWaitTimeout = c.TCPCloseWaitTimeout.Duration
	}
	return t
}

// Max returns the nf_conntrack_max to set, 0 for none: MaxPerCore × CPUs,
// at least Min, only when MaxPerCore > 0 (as kube-proxy's getConntrackMax).
func (t Tunables) Max() int {
	if t.MaxPerCore <= 0 {
		return 0
	}
	cpus := t.CPUs
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	return max(int(t.MaxPerCore)*cpus, int(t.Min))
}

// Sysctls reads and writes kernel settings by name (one of the Sysctl*
// constants). FileSysctls is the real one; tests use a FileSysctls rooted
// in a temporary directory or a FakeSysctls.
type Sysctls interface {
	Read(name string) (string, error)
	Write(name, value string) error
}

// FileSysctls reads and writes the files under Root ("" means "/", the
// real /proc/sys and /sys).
type FileSysctls struct{ Root string }

func (f FileSysctls) path(name string) string {
	root := f.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, name)
}

// Read implements Sysctls.
func (f FileSysctls) Read(name string) (string, error) {
	b, err := os.ReadFile(f.path(name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Write implements Sysctls. Like the kernel's sysctl files, a name that
// does not exist is an error (it is never created).
func (f FileSysctls) Write(name, value string) error {
	file, err := os.OpenFile(f.path(name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := file.WriteString(value); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// Apply sets the tunables, as kube-proxy does at start: each value is
// written only when it differs from the current one. nf_conntrack_max
// comes with the hash size (raised to max/4 when smaller); a hash size that
// cannot be written (a read-only /sys in a container) is only logged. It
// tries every setting and returns the failures joined.
func Apply(ctx context.Context, t Tunables, sys Sysctls) error {
	logger := klog.FromContext(ctx)
	var errs []error
	set := func(name string, value int) {
		if err := setInt(logger, sys, name, value); err != nil {
			errs = append(errs, err)
		}
	}
	if m := t.Max(); m > 0 {
		set(SysctlMax, m)
		if err := raiseHashsize(logger, sys, m/4); err != nil {
			logger.Info("Warning: could not raise the conntrack hash size; nf_conntrack_max is set but lookups may be slower", "err", err)
		}
	}
	seconds := func(d time.Duration) int { return int(d / time.Second) }
	if s := seconds(t.TCPEstablishedTimeout); s > 0 {
		set(SysctlTCPEstablished, s)
	}
	if s := seconds(t.TCPCloseWaitTimeout); s > 0 {
		set(SysctlTCPCloseWait, s)
	}
	if t.TCPBeLiberal {
		set(SysctlTCPBeLiberal, 1)
	}
	if s := seconds(t.UDPTimeout); s > 0 {
		set(SysctlUDPTimeout, s)
	}
	if s := seconds(t.UDPStreamTimeout); s > 0 {
		set(SysctlUDPStreamTimeout, s)
	}
	return errors.Join(errs...)
}

func setInt(logger klog.Logger, sys Sysctls, name string, value int) error {
	if cur, err := sys.Read(name); err == nil && cur == strconv.Itoa(value) {
		return nil
	}
	logger.Info("Setting conntrack sysctl", "name", name, "value", value)
	if err := sys.Write(name, strconv.Itoa(value)); err != nil {
		return fmt.Errorf("set %s to %d: %w", name, value, err)
	}
	return nil
}

func raiseHashsize(logger klog.Logger, sys Sysctls, want int) error {
	cur, err := sys.Read(SysctlHashsize)
	if err != nil {
		return fmt.Errorf("read %s: %w", SysctlHashsize, err)
	}
	n, err := strconv.Atoi(cur)
	if err != nil {
		return fmt.Errorf("read %s: %q is not a number", SysctlHashsize, cur)
	}
	if n >= want {
		return nil
	}
	logger.Info("Setting conntrack hash size", "value", want)
	if err := sys.Write(SysctlHashsize, strconv.Itoa(want)); err != nil {
		return fmt.Errorf("set %s to %d: %w", SysctlHashsize, want, err)
	}
	return nil
}
