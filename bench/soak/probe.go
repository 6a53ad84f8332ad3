package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// probeStable probes the Services that never change, back to back: every
// failure is the proxy's.
func (e *env) probeStable(ctx context.Context, c config, res *result) {
	for i := 0; ctx.Err() == nil; i++ {
		k := i % c.stable
		want := e.pods[k%len(e.pods)]
		got, err := e.probe(stableIP(k))
		if ctx.Err() != nil {
			return
		}
		res.probes.Add(1)
		if e.out.down() {
			res.downProbes.Add(1)
		}
		if err != nil || got != want {
			res.stableFailures.Add(1)
			res.note(fmt.Sprintf("%s: got %q, %v", stableName(k), got, err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle is how long after a change a churned Service must be programmed
// (kproxy's min sync period is 1 s).
const settle = 3 * time.Second

// probeChurned probes churned Services whose last change is older than
// settle: they must answer from their current endpoint. Changes kproxy may
// have missed because of an outage are left out until it converged.
func (e *env) probeChurned(ctx context.Context, c config, res *result) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for ctx.Err() == nil {
		i := rnd.IntN(c.churned)
		e.mu.Lock()
		want, last := e.state[i], e.lastChange[i]
		e.mu.Unlock()
		since := time.Since(last)
		if want == "" || since < settle || e.out.excluded(last) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		got, err := e.probe(churnIP(i))
		e.mu.Lock()
		changed := e.state[i] != want || !e.lastChange[i].Equal(last)
		e.mu.Unlock()
		if changed || ctx.Err() != nil {
			continue // changed under the probe: not counted
		}
		res.churnProbes.Add(1)
		if err != nil || got != want {
			res.churnFailures.Add(1)
			res.note(fmt.Sprintf("%s (settled %v): got %q want %q, %v", churnName(i), since.Round(time.Millisecond), got, want, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) probe(ip string) (string, error) {
	r, err := testrig.ProbeTCP(e.topo.Node(1).Pods[0].Netns, net.JoinHostPort(ip, "80"), 2*time.Second)
	return r.Name, err
}

func (e *env) waitAnswer(ctx context.Context, ip, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		got, err := e.probe(ip)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not answered by %s: %q %v", ip, want, got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
