package conntrack

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
)

func TestMax(t *testing.T) {
	for _, tc := range []struct {
		perCore, min int32
		cpus, want   int
	}{
		{0, 131072, 4, 0}, // --conntrack-max-per-core=0: leave it alone, ignore min
		{-1, 0, 4, 0},
		{32768, 131072, 2, 131072}, // kube-proxy's defaults on 2 CPUs: the minimum wins
		{32768, 131072, 8, 262144},
		{1000, 0, 3, 3000},
	} {
		got := Tunables{MaxPerCore: tc.perCore, Min: tc.min, CPUs: tc.cpus}.Max()
		if got != tc.want {
			t.Errorf("Max(perCore %d, min %d, cpus %d) = %d, want %d", tc.perCore, tc.min, tc.cpus, got, tc.want)
		}
	}
}

func TestTunablesFromConfig(t *testing.T) {
	c := kpconfig.KubeProxyConntrackConfiguration{
		MaxPerCore:            ptr.To[int32](32768),
		Min:                   ptr.To[int32](131072),
		TCPEstablishedTimeout: &metav1.Duration{Duration: 24 * time.Hour},
		TCPCloseWaitTimeout:   &metav1.Duration{Duration: time.Hour},
		TCPBeLiberal:          true,
		UDPTimeout:            metav1.Duration{Duration: 30 * time.Second},
		UDPStreamTimeout:      metav1.Duration{Duration: 120 * time.Second},
	}
	want := Tunables{MaxPerCore: 32768, Min: 131072, TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour,
		TCPBeLiberal: true, UDPTimeout: 30 * time.Second, UDPStreamTimeout: 120 * time.Second}
	if got := TunablesFromConfig(c); got != want {
		t.Errorf("TunablesFromConfig = %+v, want %+v", got, want)
	}
	if got := TunablesFromConfig(kpconfig.KubeProxyConntrackConfiguration{}); got != (Tunables{}) {
		t.Errorf("empty config = %+v, want zero (touch nothing)", got)
	}
}

// kernelDefaults are a fresh kernel's values.
func kernelDefaults() map[string]string {
	return map[string]string{
		SysctlMax: "65536", SysctlHashsize: "16384",
		SysctlTCPEstablished: "432000", SysctlTCPCloseWait: "60", SysctlTCPBeLiberal: "0",
		SysctlUDPTimeout: "30", SysctlUDPStreamTimeout: "120",
	}
}

func TestApply(t *testing.T) {
	all := Tunables{MaxPerCore: 32768, Min: 131072, CPUs: 8, TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour,
		TCPBeLiberal: true, UDPTimeout: 15 * time.Second, UDPStreamTimeout: 90 * time.Second}
	for _, tc := range []struct {
		name  string
		t     Tunables
		start map[string]string
		want  []string
	}{
		{"kube-proxy defaults with max-per-core=0: only the TCP timeouts",
			Tunables{TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour, Min: 131072}, kernelDefaults(),
			[]string{SysctlTCPEstablished + "=86400", SysctlTCPCloseWait + "=3600"}},
		{"everything", all, kernelDefaults(), []string{
			SysctlMax + "=262144", SysctlHashsize + "=65536", SysctlTCPEstablished + "=86400", SysctlTCPCloseWait + "=3600",
			SysctlTCPBeLiberal + "=1", SysctlUDPTimeout + "=15", SysctlUDPStreamTimeout + "=90"}},
		{"hash size already large enough", Tunables{MaxPerCore: 1000, CPUs: 4},
			map[string]string{SysctlMax: "65536", SysctlHashsize: "16384"}, []string{SysctlMax + "=4000"}},
		{"values already set: no writes", Tunables{TCPEstablishedTimeout: 24 * time.Hour, UDPTimeout: 30 * time.Second},
			map[string]string{SysctlTCPEstablished: "86400", SysctlUDPTimeout: "30"}, nil},
		{"zero tunables touch nothing", Tunables{}, kernelDefaults(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := NewFakeSysctls(tc.start)
			if err := Apply(context.Background(), tc.t, sys); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sys.Writes, tc.want) {
				t.Errorf("writes\n got %q\nwant %q", sys.Writes, tc.want)
			}
		})
	}
}

func TestApplyFailures(t *testing.T) {
	t.Run("read-only /sys: hash size is only a warning", func(t *testing.T) {
		sys := NewFakeSysctls(kernelDefaults())
		sys.Fail = func(name string) error {
			if name == SysctlHashsize {
				return fs.ErrPermission
			}
			return nil
		}
		if err := Apply(context.Background(), Tunables{MaxPerCore: 32768, CPUs: 8}, sys); err != nil {
			t.Fatalf("Apply = %v, want nil", err)
		}
		if v, _ := sys.Read(SysctlMax); v != "262144" {
			t.Errorf("nf_conntrack_max = %s, want 262144", v)
		}
	})
	t.Run("a failed write does not stop the others", func(t *testing.T) {
		sys := NewFakeSysctls(kernelDefaults())
		sys.Fail = func(name string) error {
			if name == SysctlMax {
				return fs.ErrPermission // e.g. not in the initial network namespace
			}
			return nil
		}
		err := Apply(context.Background(), Tunables{MaxPerCore: 32768, CPUs: 8, TCPCloseWaitTimeout: time.Hour}, sys)
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Apply = %v, want a permission error", err)
		}
		if v, _ := sys.Read(SysctlTCPCloseWait); v != "3600" {
			t.Errorf("close_wait = %s, want 3600", v)
		}
	})
	t.Run("missing sysctl", func(t *testing.T) {
		sys := NewFakeSysctls(nil) // conntrack module not loaded
		err := Apply(context.Background(), Tunables{UDPTimeout: time.Minute}, sys)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Apply = %v, want not-exist", err)
		}
	})
}

// FileSysctls against a directory laid out like /proc/sys and /sys (never
// the real ones: host-wide conntrack settings must not change in tests).
func TestFileSysctls(t *testing.T) {
	root := t.TempDir()
	for name, v := range kernelDefaults() {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sys := FileSysctls{Root: root}
	if err := Apply(context.Background(), Tunables{MaxPerCore: 32768, Min: 131072, CPUs: 2, TCPBeLiberal: true}, sys); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{SysctlMax: "131072", SysctlHashsize: "32768", SysctlTCPBeLiberal: "1", SysctlUDPTimeout: "30"} {
		if got, err := sys.Read(name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if err := sys.Write("proc/sys/net/netfilter/nf_conntrack_nonexistent", "1"); err == nil {
		t.Error("Write created a sysctl that does not exist")
	}
}
