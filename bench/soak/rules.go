package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// ruleCount is the range of Service dispatch rules seen in the node's nat
// table: a flush, even a short one, shows as a low minimum.
type ruleCount struct {
	mu        sync.Mutex
	n, lo, hi int
	lowestAt  time.Duration
}

func (r *ruleCount) add(v int, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || v < r.lo {
		r.lo, r.lowestAt = v, at
	}
	r.hi = max(r.hi, v)
	r.n++
}

func (r *ruleCount) min() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lo
}

// countRules reads the node's nat table every c.rulesEvery (every second
// while an apiserver outage lasts) in iptables mode.
func (e *env) countRules(ctx context.Context, c config, res *result) {
	if c.mode != "iptables" {
		return
	}
	for ctx.Err() == nil {
		out, err := testrig.Exec(e.topo.Node(1).Netns, "iptables-save", "-t", "nat")
		if err == nil {
			res.rules.add(dispatchRules(out), time.Since(res.started))
		} else if ctx.Err() == nil {
			res.note("iptables-save: " + err.Error())
		}
		every := c.rulesEvery
		if e.out.active() {
			every = time.Second
		}
		sleepCtx(ctx, every)
	}
}

// dispatchRules counts the rules that send a Service IP and port to its
// KUBE-SVC chain, from KUBE-SERVICES or a dispatch bucket chain: one per
// programmed ClusterIP port with endpoints.
func dispatchRules(natSave string) int {
	n := 0
	for _, l := range strings.Split(natSave, "\n") {
		if (strings.HasPrefix(l, "-A KUBE-SERVICES ") || strings.HasPrefix(l, "-A KPROXY-SVCS-")) && strings.Contains(l, " -j KUBE-SVC-") {
			n++
		}
	}
	return n
}
