package userspace

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// connTable holds the open TCP connections, for the idle and drain limits.
type connTable struct {
	mu    sync.Mutex
	conns map[*tcpPair]struct{}
}

func (t *connTable) add(p *tcpPair) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = map[*tcpPair]struct{}{}
	}
	t.conns[p] = struct{}{}
	t.mu.Unlock()
}

func (t *connTable) remove(p *tcpPair) {
	t.mu.Lock()
	delete(t.conns, p)
	t.mu.Unlock()
}

func (t *connTable) snapshot() []*tcpPair {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*tcpPair, 0, len(t.conns))
	for p := range t.conns {
		out = append(out, p)
	}
	return out
}

// sweepInterval is how often the limits are checked: a quarter of the
// shortest limit, between 50ms and 30s.
func sweepInterval(o *Options) time.Duration {
	d := o.TCPIdleTimeout
	if o.DrainTimeout > 0 {
		d = min(d, o.DrainTimeout)
	}
	return min(max(d/4, 50*time.Millisecond), 30*time.Second)
}

// Run sweeps until ctx is done: it aborts connections past the drain limit
// or idle for TCPIdleTimeout, and prunes expired affinity entries.
// Idleness is read from the kernel (TCP_INFO's time since data was last
// received on either socket), so the data path does no bookkeeping. The
// sync loop runs it from its start (proxier.Background).
func (p *Proxier) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval(&p.opts))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.sweepOnce(p.opts.Clock.Now())
	}
}

func (p *Proxier) sweepOnce(now time.Time) {
	idleMs := uint32(min(p.opts.TCPIdleTimeout.Milliseconds(), int64(^uint32(0))))
	for _, c := range p.conns.snapshot() {
		if removed := c.be.removedAt.Load(); removed != 0 && p.opts.DrainTimeout > 0 && now.Sub(time.Unix(0, removed)) >= p.opts.DrainTimeout {
			klog.V(3).InfoS("Closing connection to removed endpoint after the drain limit", "endpoint", c.be.addr)
			c.abort()
			continue
		}
		if idleFor(c.client) >= idleMs && idleFor(c.server) >= idleMs {
			klog.V(3).InfoS("Closing idle connection", "endpoint", c.be.addr)
			c.abort()
		}
	}
	p.mu.Lock()
	ls := make([]*listener, 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.aff.prune(now)
	}
}

// idleFor returns the milliseconds since the socket last received data; 0
// when unknown (a closed socket), so that an error never closes a
// connection.
func idleFor(c *net.TCPConn) uint32 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ms uint32
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			ms = info.Last_data_recv
		}
	})
	return ms
}
