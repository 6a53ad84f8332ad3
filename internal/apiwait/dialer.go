package apiwait

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// RetryInterval is how often a Dialer tries again while the apiserver
// refuses connections.
const RetryInterval = 200 * time.Millisecond

// Dialer dials the apiserver; while it is unreachable (the connection is
// refused, or there is no route to it) it tries again every Interval until
// the dial's context ends. It logs once when an outage starts and once when
// it ends. Other errors (a timeout, DNS) are returned at once.
type Dialer struct {
	// Dial makes one attempt.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Interval between attempts.
	Interval time.Duration

	mu        sync.Mutex
	downSince time.Time // zero while the apiserver is reachable
}

// NewDialer returns a Dialer with client-go's default dial settings.
func NewDialer() *Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &Dialer{Dial: d.DialContext, Interval: RetryInterval}
}

// DialContext fits rest.Config.Dial. When ctx ends while waiting, it
// returns the last dial error, so callers still see "connection refused".
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		c, err := d.Dial(ctx, network, addr)
		if err == nil {
			d.markReachable(addr)
			return c, nil
		}
		if !Unreachable(err) {
			return nil, err
		}
		d.markUnreachable(addr, err)
		t.Reset(d.Interval)
		select {
		case <-ctx.Done():
			return nil, err
		case <-t.C:
		}
	}
}

// Unreachable reports whether err says nothing listens at the address or
// no route leads there: the apiserver is down or cut off, not slow.
func Unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

func (d *Dialer) markUnreachable(addr string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.downSince.IsZero() {
		d.downSince = time.Now()
		klog.InfoS("Apiserver unreachable, waiting for it", "address", addr, "err", err)
	}
}

func (d *Dialer) markReachable(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.downSince.IsZero() {
		klog.InfoS("Apiserver reachable again", "address", addr, "after", time.Since(d.downSince).Round(time.Millisecond))
		d.downSince = time.Time{}
	}
}
