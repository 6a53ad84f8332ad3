package conntrack

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// perNetns are the sysctls this test may write: they are per network
// namespace (nf_conntrack_max and the hash size are host-wide and are never
// written by tests).
var perNetns = map[string]bool{SysctlTCPEstablished: true, SysctlTCPCloseWait: true}

// netnsSysctls is FileSysctls{Root: "/"} with every access made from inside
// network namespace ns, refusing anything not in perNetns.
type netnsSysctls struct{ ns string }

func (s netnsSysctls) Read(name string) (v string, err error) {
	if !perNetns[name] {
		return "", fmt.Errorf("test refuses to read %s", name)
	}
	err = testrig.DoInNetns(s.ns, func() error {
		var e error
		v, e = FileSysctls{}.Read(name)
		return e
	})
	return v, err
}

func (s netnsSysctls) Write(name, value string) error {
	if !perNetns[name] {
		return fmt.Errorf("test refuses to write %s", name)
	}
	return testrig.DoInNetns(s.ns, func() error { return FileSysctls{}.Write(name, value) })
}

func TestKernelApplyTCPTimeoutsInNetns(t *testing.T) {
	testrig.RequireRoot(t) // before anything that needs root
	testrig.CheckRootNetnsUnchanged(t)
	ns := testrig.NewNetns(t, "ctsys")
	host := func() (string, string) {
		a, _ := os.ReadFile("/" + SysctlTCPEstablished)
		b, _ := os.ReadFile("/" + SysctlTCPCloseWait)
		return string(a), string(b)
	}
	hostEst, hostCW := host()
	sys := netnsSysctls{ns: ns}
	if _, err := sys.Read(SysctlTCPEstablished); err != nil {
		testrig.SkipOrFail(t, fmt.Sprintf("no conntrack sysctls in a new namespace (nf_conntrack not loaded?): %v", err))
	}
	// Values no host would have, so a leak to the host would show.
	tun := Tunables{TCPEstablishedTimeout: 12345 * time.Second, TCPCloseWaitTimeout: 2345 * time.Second}
	if err := Apply(context.Background(), tun, sys); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{SysctlTCPEstablished: "12345", SysctlTCPCloseWait: "2345"} {
		if got, err := sys.Read(name); err != nil || got != want {
			t.Errorf("in the test namespace %s = %q, %v; want %s", name, got, err, want)
		}
	}
	if e, c := host(); e != hostEst || c != hostCW {
		t.Errorf("host values changed: established %q -> %q, close_wait %q -> %q", hostEst, e, hostCW, c)
	}
}
