package measure

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// WaitAnswered connects from network namespace ns to addr again and again
// (each attempt a fresh socket, so a fresh conntrack entry and a fresh
// load-balancing decision) until the echo server named want answers, and
// returns when that happened. An attempt that gets no SYN-ACK within
// attempt is abandoned, so the resolution is about attempt (plus interval
// after a fast failure such as a REJECT rule).
func WaitAnswered(ctx context.Context, ns, addr, want string, attempt, interval time.Duration) (time.Time, int, error) {
	var at time.Time
	tries := 0
	var last error
	err := testrig.DoInNetns(ns, func() error {
		d := &net.Dialer{Timeout: attempt}
		for {
			tries++
			name, err := greet(d, addr, attempt)
			if err == nil && name == want {
				at = time.Now()
				return nil
			}
			if err == nil {
				err = fmt.Errorf("answered by %q, want %q", name, want)
			}
			last = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never answered from netns %s after %d attempts: %w (last: %v)", addr, ns, tries, ctx.Err(), last)
			case <-time.After(interval):
			}
		}
	})
	return at, tries, err
}

// greet connects and reads the echo server's "name addr" greeting.
func greet(d *net.Dialer, addr string, timeout time.Duration) (string, error) {
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout + time.Second)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("connected, no greeting: %w", err)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return name, nil
}

// ConnectTimes measures first-packet latency from network namespace ns: per
// round it times one TCP connect (SYN → established, as seen by connect())
// to each address in vias, round robin, and one to direct, interleaved so
// both share the same background load. Every connect uses a new ephemeral
// port (a new conntrack entry, so the first packet walks the nat rules) and
// is closed with SO_LINGER 0 (RST, no TIME_WAIT). warmup rounds are not
// recorded. Failed connects are counted, not timed.
func ConnectTimes(ns string, vias []string, direct string, rounds, warmup int, timeout time.Duration) (via, dir []time.Duration, failed int, err error) {
	if len(vias) == 0 {
		return nil, nil, 0, fmt.Errorf("connect times: no targets")
	}
	err = testrig.DoInNetns(ns, func() error {
		d := &net.Dialer{Timeout: timeout}
		one := func(addr string) (time.Duration, bool) {
			start := time.Now()
			c, err := d.Dial("tcp4", addr)
			el := time.Since(start)
			if err != nil {
				return 0, false
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			return el, true
		}
		for r := 0; r < warmup+rounds; r++ {
			v, okV := one(vias[r%len(vias)])
			dd, okD := one(direct)
			if r < warmup {
				continue
			}
			if okV {
				via = append(via, v)
			} else {
				failed++
			}
			if okD {
				dir = append(dir, dd)
			} else {
				failed++
			}
		}
		return nil
	})
	return via, dir, failed, err
}
