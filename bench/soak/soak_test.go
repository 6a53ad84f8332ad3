package main

import (
	"strings"
	"testing"
	"time"
)

func TestDispatchRules(t *testing.T) {
	save := strings.Join([]string{
		"*nat",
		":KUBE-SERVICES - [0:0]",
		`-A KUBE-SERVICES -d 0.0.0.48/0.0.0.240 -j KPROXY-SVCS-3`,
		`-A KPROXY-SVCS-3A -d 10.96.7.58/32 -p tcp -m comment --comment "bench/svc-1:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC`,
		`-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-DEF`,
		`-A KUBE-SVC-DEF -j KUBE-SEP-123`,
		`-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
		"COMMIT",
	}, "\n")
	if got := dispatchRules(save); got != 2 {
		t.Errorf("dispatchRules = %d, want 2", got)
	}
}

func TestVerdicts(t *testing.T) {
	c := config{mode: "iptables", stable: 2, background: 10}
	r := &result{samples: []sample{{rss: 100, goroutines: 40}}, end: sample{rss: 109, goroutines: 44}}
	r.rules.add(12, time.Second)
	if v := r.verdicts(c); len(v) != 0 {
		t.Errorf("flat run: verdicts %q", v)
	}
	r.end = sample{rss: 111, goroutines: 44}
	if v := r.verdicts(c); len(v) != 1 {
		t.Errorf("RSS 1.11× without an outage: verdicts %q, want the growth", v)
	}
	r.outage = outageFigures{ran: true, convergedOK: true, converged: time.Second, rssSteady: 100, rssAfter: 115}
	if v := r.verdicts(c); len(v) != 0 {
		t.Errorf("RSS 1.11× after a relist: verdicts %q, want none (bound 1.2×)", v)
	}
	r.end = sample{rss: 121, goroutines: 46}
	r.rules.add(11, 2*time.Second)
	r.stableFailures.Add(1)
	r.outage = outageFigures{ran: true, convergedOK: true, converged: 3 * time.Second, rssSteady: 100, rssAfter: 121}
	if v := r.verdicts(c); len(v) != 6 {
		t.Errorf("verdicts = %q, want six: probes, RSS, goroutines, rules, convergence, outage RSS", v)
	}
}

func TestOutageExcludes(t *testing.T) {
	var o outage
	before := time.Now().Add(-time.Minute)
	if o.excluded(time.Now()) || o.down() {
		t.Fatal("no outage yet")
	}
	o.mark(&o.killedAt)
	if !o.down() || !o.active() || o.excluded(before) || !o.excluded(time.Now().Add(-time.Second)) {
		t.Error("while down: changes up to settle before the kill are left out, older ones counted")
	}
	o.mark(&o.backAt)
	during := time.Now()
	if !o.excluded(during) {
		t.Error("back, not converged: changes since the kill are left out")
	}
	o.mark(&o.converge)
	if o.down() || o.active() || o.excluded(during) || o.excluded(before) {
		t.Error("after convergence: every change counts again")
	}
}

func TestConfigCheck(t *testing.T) {
	ok := config{duration: 8 * time.Minute, warmup: time.Minute, rate: 50, workers: 8, stable: 20, churned: 100, endpoints: 2,
		killAfter: 3 * time.Minute, down: 30 * time.Second}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*config){
		func(c *config) { c.stable = 31 },
		func(c *config) { c.workers = 101 },
		func(c *config) { c.killAfter = 30 * time.Second },
		func(c *config) { c.down = 5 * time.Minute },
	} {
		c := ok
		bad(&c)
		if c.check() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
