package apiwait

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A listener that appears after a second is connected to within about
// one retry interval of appearing.
func TestDialerWaitsForListener(t *testing.T) {
	addr := freeAddr(t)
	type listening struct {
		l  net.Listener
		at time.Time
	}
	appeared := make(chan listening, 1)
	go func() {
		time.Sleep(time.Second)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
		}
		appeared <- listening{l, time.Now()}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := NewDialer().DialContext(ctx, "tcp", addr)
	done := time.Now()
	got := <-appeared
	if got.l != nil {
		defer got.l.Close()
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	at := got.at
	if late, bound := done.Sub(at), RetryInterval+100*time.Millisecond; late > bound { // margin for a loaded machine
		t.Errorf("connected %v after the listener appeared, want <= %v", late, bound)
	}
	if waited := done.Sub(start); waited < 900*time.Millisecond {
		t.Errorf("dial returned after %v, before the listener existed", waited)
	}
}

// The wait ends with the dial's context, returning the refusal.
func TestDialerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewDialer().DialContext(ctx, "tcp", freeAddr(t))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want connection refused", err)
	}
	if took := time.Since(start); took < 450*time.Millisecond || took > time.Second {
		t.Errorf("dial returned after %v, want about 500ms (the context)", took)
	}
}

// Errors other than unreachable are returned at once, not retried.
func TestDialerPassesOtherErrors(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	d := &Dialer{Interval: time.Millisecond, Dial: func(context.Context, string, string) (net.Conn, error) {
		calls++
		return nil, boom
	}}
	if _, err := d.DialContext(context.Background(), "tcp", "x:1"); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("err = %v after %d attempts, want boom after 1", err, calls)
	}
}

func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: &net.AddrError{}}, false},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{&net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, true},
		{&net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, true},
		{&net.OpError{Op: "dial", Err: syscall.ETIMEDOUT}, false},
		{context.DeadlineExceeded, false},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// One line when an outage starts, however many dials wait, and one when
// it ends.
func TestDialerLogsOncePerOutage(t *testing.T) {
	var buf bytes.Buffer
	klog.LogToStderr(false)
	klog.SetOutput(&buf)
	t.Cleanup(func() { klog.LogToStderr(true) })
	refuse := true
	d := &Dialer{Interval: time.Millisecond, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		if refuse {
			return nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
		}
		c, _ := net.Pipe()
		return c, nil
	}}
	dialFor := func(wait time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if c, err := d.DialContext(ctx, "tcp", "x:1"); err == nil {
			c.Close()
		}
	}
	dialFor(20 * time.Millisecond)
	dialFor(20 * time.Millisecond)
	refuse = false
	dialFor(time.Second)
	dialFor(time.Second)
	klog.Flush()
	if n, m := strings.Count(buf.String(), "Apiserver unreachable"), strings.Count(buf.String(), "Apiserver reachable again"); n != 1 || m != 1 {
		t.Errorf("%d unreachable and %d reachable-again lines, want 1 and 1:\n%s", n, m, buf.String())
	}
}
