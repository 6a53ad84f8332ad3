package userspace

import (
	"errors"
	"fmt"
	"syscall"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// portPicker hands out proxy ports from the configured range (kube-proxy's
// portRange, once used by its userspace proxy), or leaves the choice to the
// kernel when no range is set. Ports are tried round the range from where
// the last search stopped, so a port closed a moment ago is not reused at
// once.
type portPicker struct {
	r    utilnet.PortRange // Size 0: kernel-chosen ports
	next int               // offset in r of the next port to try
}

// errPortRangeFull: every port of the range is taken.
var errPortRangeFull = errors.New("no free port in the proxy port range")

// listen calls open with a port: 0 without a range, else each port of the
// range in turn until one is not in use.
func (pp *portPicker) listen(open func(port int) error) error {
	if pp.r.Size == 0 {
		return open(0)
	}
	for i := 0; i < pp.r.Size; i++ {
		port := pp.r.Base + (pp.next+i)%pp.r.Size
		err := open(port)
		if err == nil {
			pp.next = (pp.next + i + 1) % pp.r.Size
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
	return fmt.Errorf("%w %s", errPortRangeFull, pp.r)
}
