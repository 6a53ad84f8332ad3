package userspacebench

import (
	"os"

	"github.com/kproxy/kproxy/internal/testrig"
)

// Paths compared in the same run.
const (
	pathDirect  = "direct"  // pod to pod through the node's routing
	pathKproxy  = "kproxy"  // kproxy's userspace proxy, via its redirect rules
	pathHAProxy = "haproxy" // haproxy in TCP mode with splice, the reference
)

// benchPath is one way from the client pod to the server pod.
type benchPath struct {
	name       string
	bulk, echo string           // addresses the client dials
	proc       *testrig.Process // the proxy process; nil for direct
	readyLog   string           // a line proc logs once its rules are in
}

func (p benchPath) pid() int {
	if p.proc == nil {
		return 0
	}
	return p.proc.PID()
}

// CPU placements.
const (
	// Client, server and proxy share every CPU, as pods and node daemons
	// do on a node without CPU reservations.
	scenarioShared = "shared"
	// Client and server on one CPU, the proxy on another: a node that keeps
	// CPUs for its daemons (kubelet's reserved CPUs, static CPU manager).
	// Direct traffic gets CPU 0 only; the proxy's work runs beside it.
	scenarioPinned = "pinned"
)

type scenario struct {
	name string
	pin  bool
}

// apply sets the CPU placement of this process (client and server
// goroutines) and of every proxy process.
func (s scenario) apply(paths []benchPath) error {
	pods, proxy := []int{}, []int{}
	if s.pin {
		cpus := allowedCPUs() // at least two: see TestUserspaceBench
		pods, proxy = cpus[:1], cpus[1:2]
	}
	if err := setAffinity(os.Getpid(), pods...); err != nil {
		return err
	}
	for _, p := range paths {
		if p.proc != nil {
			if err := setAffinity(p.pid(), proxy...); err != nil {
				return err
			}
		}
	}
	return nil
}
