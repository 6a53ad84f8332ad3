package userspace

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/utils/clock"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Options configures the userspace mode for one IP family. The zero value of
// every field except Family is a sensible default.
type Options struct {
	// Family is the IP family this Proxier serves.
	Family proxier.Family
	// NodePortAddresses restricts the addresses NodePorts answer on: CIDRs
	// of this family or the keyword "primary" (the node's first IP). Empty
	// means every local address except loopback.
	NodePortAddresses []string
	// LocalDetector tells pod clients from outside clients: a pod (or the
	// node itself) reaching an externalTrafficPolicy=Local Service's
	// external address uses the Cluster endpoints. The zero value detects
	// no pods.
	LocalDetector proxier.LocalDetector

	// PortRange is where proxy ports come from (kube-proxy's portRange);
	// Size 0 lets the kernel choose each port. A service port that finds
	// the range full gets no listener (logged and counted like any listen
	// failure) until a port frees up.
	PortRange utilnet.PortRange

	// DialTimeouts are the timeouts of the successive connection attempts of
	// one client connection, each to the next endpoint; their number bounds
	// the attempts. Default 250ms, 500ms, 1s, 2s (upstream's old userspace
	// proxy used the same ladder).
	DialTimeouts []time.Duration
	// RetryBackoff is the pause before an attempt that goes back to an
	// endpoint already tried for this connection; it doubles each time.
	// Default 20ms.
	RetryBackoff time.Duration
	// FailedEndpointHold is how long an endpoint that refused or timed out
	// is tried only after the others. Default 5s.
	FailedEndpointHold time.Duration
	// TCPIdleTimeout closes a TCP connection when neither side has sent data
	// for this long. Default 1h.
	TCPIdleTimeout time.Duration
	// UDPIdleTimeout ends a UDP session with no traffic for this long.
	// Default 30s.
	UDPIdleTimeout time.Duration
	// DrainTimeout bounds how long an established TCP connection to an
	// endpoint that was removed may go on; 0 means until it closes.
	DrainTimeout time.Duration

	// Registerer receives the per-service metrics; nil means none.
	Registerer prometheus.Registerer
	// MaxServiceLabels caps the distinct "service" label values; further
	// service ports are counted under "other". Default 256.
	MaxServiceLabels int

	// IPTablesBackend selects the iptables binaries the default Kernel
	// runs (xtables.Plain: "iptables").
	IPTablesBackend xtables.Backend
	// Metrics are the iptables-named metrics the sync loop records this
	// mode's syncs in (rule counts, restore failures); nil means none.
	Metrics *xtables.Metrics
	// Kernel is the iptables seam; nil means the binaries of the process's
	// own network namespace.
	Kernel Kernel
	// Sockets opens listeners and dials endpoints; nil means the process's
	// own network namespace.
	Sockets Sockets
	// Clock is used for affinity expiry and endpoint health; nil: real.
	Clock clock.PassiveClock
}

// normalized validates the options and fills in defaults.
func (o Options) normalized() (Options, error) {
	if err := proxier.CheckFamily(o.Family); err != nil {
		return o, fmt.Errorf("userspace: %w", err)
	}
	if err := proxier.ValidateNodePortAddresses(o.NodePortAddresses); err != nil {
		return o, fmt.Errorf("userspace: %w", err)
	}
	o.LocalDetector = o.LocalDetector.ForFamily(o.Family)
	if r := o.PortRange; r.Size < 0 || r.Size > 0 && (r.Base < 1 || r.Base+r.Size-1 > 65535) {
		return o, fmt.Errorf("userspace: proxy port range %s outside 1-65535", r)
	}
	if len(o.DialTimeouts) == 0 {
		o.DialTimeouts = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
	}
	for _, t := range o.DialTimeouts {
		if t <= 0 {
			return o, fmt.Errorf("userspace: dial timeout %v must be positive", t)
		}
	}
	o.RetryBackoff = orDefault(o.RetryBackoff, 20*time.Millisecond)
	o.FailedEndpointHold = orDefault(o.FailedEndpointHold, 5*time.Second)
	o.TCPIdleTimeout = orDefault(o.TCPIdleTimeout, time.Hour)
	o.UDPIdleTimeout = orDefault(o.UDPIdleTimeout, 30*time.Second)
	if o.DrainTimeout < 0 {
		return o, fmt.Errorf("userspace: negative drain timeout %v", o.DrainTimeout)
	}
	if o.MaxServiceLabels <= 0 {
		o.MaxServiceLabels = 256
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Sockets == nil {
		o.Sockets = HostSockets{}
	}
	return o, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// kernel returns the configured seam, or the real binaries.
func (o Options) kernel() (Kernel, error) {
	if o.Kernel != nil {
		return o.Kernel, nil
	}
	return xtables.NewRunner(xtables.RunnerConfig{Family: o.Family, Backend: o.IPTablesBackend})
}
