package userspace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Proxier is the userspace mode for one IP family.
type Proxier struct {
	opts    Options
	kernel  Kernel
	metrics *metrics
	conns   connTable
	src     atomic.Pointer[sourceClassifier]

	mu        sync.Mutex // serializes Sync, Cleanup and Close
	listeners map[listenerKey]*listener
	ports     portPicker // guarded by mu: listeners open during Sync
	applied   string     // the rules last restored successfully
	hooked    bool       // the jump rules are in place
	reported  map[string]bool
	// listenFailed: service ports whose listener could not be opened
	// (logged and counted once until it opens or the port goes away).
	listenFailed map[listenerKey]bool
}

var (
	_ proxier.Proxier          = (*Proxier)(nil)
	_ proxier.ModeMetricsOwner = (*Proxier)(nil)
	_ proxier.Background       = (*Proxier)(nil)
)

// ModeMetrics returns the iptables-named metrics the loop records this
// mode's syncs in.
func (p *Proxier) ModeMetrics() proxier.ModeMetrics { return p.opts.Metrics }

// New builds a Proxier. It is pure: nothing is opened or written until the
// first Sync, and the sweeper starts with Run.
func New(opts Options) (*Proxier, error) {
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	k, err := o.kernel()
	if err != nil {
		return nil, err
	}
	p := &Proxier{
		opts:      o,
		kernel:    k,
		metrics:   newMetrics(o.Registerer, o.MaxServiceLabels),
		listeners: map[listenerKey]*listener{},
		ports:     portPicker{r: o.PortRange},
		reported:  map[string]bool{},

		listenFailed: map[listenerKey]bool{},
	}
	p.src.Store(newSourceClassifier(o.LocalDetector, nil))
	return p, nil
}

func (p *Proxier) srcClassifier() *sourceClassifier { return p.src.Load() }

// Sync opens a listener for every new service port, gives every changed one
// its new endpoints (new connections use them at once), rewrites our chains
// in one iptables-restore when they differ from what is in the kernel, and
// only then closes the listeners of removed service ports. Every sync
// reconciles everything (it is cheap: endpoint changes do not touch the
// kernel), so a partial sync equals a full one; Full only forces the rules
// and jumps to be rewritten.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	snap := req.Snapshot
	if snap == nil {
		return proxier.SyncResult{}, errors.New("userspace: sync without a snapshot")
	}
	res, retry, err := p.reconcile(ctx, snap, req.Full)
	if err == nil && retry {
		// The listeners just closed freed ports a full --proxy-port-range
		// may have lacked: open the new ones now, not a sync period later.
		res, _, err = p.reconcile(ctx, snap, false)
	}
	return res, err
}

// reconcile is one pass of Sync: plan, open the new listeners, render the
// rules for the ports they got, apply them, and close the listeners the
// rules no longer lead to. retry reports that a listener could not open
// while others were closed afterwards, so a second pass may open it.
func (p *Proxier) reconcile(ctx context.Context, snap *proxier.Snapshot, full bool) (res proxier.SyncResult, retry bool, err error) {
	p.src.Store(newSourceClassifier(p.opts.LocalDetector, slices.Clone(snap.Node.IPs)))
	specs, skipped := plan(snap)
	p.report(skipped)
	now := p.opts.Clock.Now()
	ports, openFailed := p.openListeners(specs, now)
	rules := renderRules(specs, ports, &snap.Node, &p.opts)
	res = proxier.SyncResult{Full: true, Rules: rules.Counts, Written: map[string]int{"nat": 0, "filter": 0}, NoLocalEndpoints: proxier.NoLocalEndpoints(snap), Redirects: rules.Redirects}
	if err := p.apply(ctx, rules, full, &res); err != nil {
		return res, false, err
	}
	closed := p.closeRemoved(specs, now)
	klog.V(2).InfoS("Userspace sync done", "family", p.opts.Family, "listeners", len(p.listeners), "natRules", rules.Counts["nat"], "filterRules", rules.Counts["filter"], "written", res.Written["nat"]+res.Written["filter"] > 0)
	return res, openFailed && closed, nil
}

// openListeners makes every spec's listener serve its current endpoints,
// opening the missing ones, and returns the proxy port of each listener
// that is open. failed reports that some listener could not open.
func (p *Proxier) openListeners(specs []listenerSpec, now time.Time) (ports map[listenerKey]int, failed bool) {
	ports = make(map[listenerKey]int, len(specs))
	for i := range specs {
		s := &specs[i]
		l := p.listeners[s.Key]
		if l == nil {
			var err error
			if l, err = p.openListener(s); err != nil {
				failed = true
				p.reportListenFailure(s.Key, err)
				continue
			}
			delete(p.listenFailed, s.Key)
			p.listeners[s.Key] = l
		} else if l.src != s.Src {
			l.update(s, now)
		}
		ports[s.Key] = l.port
	}
	return ports, failed
}

// reportListenFailure logs and counts a listener that could not open, once
// until it opens or its service port goes away. It is not a sync failure:
// the other service ports are programmed, this one is rejected until a
// later sync opens its listener.
func (p *Proxier) reportListenFailure(k listenerKey, err error) {
	if p.listenFailed[k] {
		return
	}
	p.listenFailed[k] = true
	klog.ErrorS(err, "Cannot open proxy listener, the service port is rejected until a later sync opens it", "servicePort", k.Name, "class", k.Class)
	p.metrics.skipped.WithLabelValues("listen failed").Inc()
}

// apply restores rules when they differ from what the kernel has (or full
// asks for it) and ensures the jumps into our chains; res records what was
// written.
func (p *Proxier) apply(ctx context.Context, rules ruleSet, full bool, res *proxier.SyncResult) error {
	if full || rules.Text != p.applied {
		klog.V(5).InfoS("Restoring userspace rules", "rules", rules.Text)
		if err := p.kernel.Restore(ctx, []byte(rules.Text), false); err != nil {
			xtables.LogRestoreFailure(err, p.opts.Family)
			p.applied = ""
			res.RestoreFailed = true
			return fmt.Errorf("userspace: restore rules: %w", err)
		}
		p.applied = rules.Text
		res.Written = rules.Counts
	}
	if full || !p.hooked {
		return p.hook(ctx)
	}
	return nil
}

// closeRemoved closes the listeners of service ports no longer in specs
// (the rules no longer lead to them) and forgets their listen failures; it
// reports whether it closed any.
func (p *Proxier) closeRemoved(specs []listenerSpec, now time.Time) (closed bool) {
	want := make(map[listenerKey]bool, len(specs))
	for i := range specs {
		want[specs[i].Key] = true
	}
	for k, l := range p.listeners {
		if !want[k] {
			l.close(now)
			delete(p.listeners, k)
			closed = true
		}
	}
	for k := range p.listenFailed {
		if !want[k] {
			delete(p.listenFailed, k)
		}
	}
	return closed
}

// hook ensures the jump rules into our chains.
func (p *Proxier) hook(ctx context.Context) error {
	p.hooked = false
	for _, j := range jumps {
		if _, err := p.kernel.EnsureRule(ctx, xtables.Append, j.table, j.chain, j.rule()...); err != nil {
			return fmt.Errorf("userspace: hook %s into %s/%s: %w", j.target, j.table, j.chain, err)
		}
	}
	p.hooked = true
	return nil
}

// report logs and counts each skipped service port once.
func (p *Proxier) report(skipped []error) {
	for _, err := range skipped {
		msg := err.Error()
		if p.reported[msg] {
			continue
		}
		p.reported[msg] = true
		klog.InfoS("Skipping service port", "reason", msg)
		p.metrics.skipped.WithLabelValues("unsupported protocol").Inc()
	}
}

// Close stops every listener and aborts every connection; the rules stay
// (new connections are then refused). Use Cleanup to remove them too.
func (p *Proxier) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Clock.Now()
	for k, l := range p.listeners {
		l.close(now)
		delete(p.listeners, k)
	}
	for _, c := range p.conns.snapshot() {
		c.abort()
	}
	p.applied, p.hooked = "", false
	return nil
}

// Cleanup closes everything and removes our rules.
func (p *Proxier) Cleanup(ctx context.Context) error {
	_ = p.Close()
	return cleanup(ctx, p.kernel)
}

// Cleanup removes every chain and jump rule of the userspace mode for
// opts.Family, without a running Proxier. It is idempotent.
func Cleanup(ctx context.Context, opts Options) error {
	o, err := opts.normalized()
	if err != nil {
		return err
	}
	k, err := o.kernel()
	if err != nil {
		return err
	}
	return cleanup(ctx, k)
}

// ourChains are this mode's chains, by table.
var ourChains = map[string][]string{"nat": {chainServices, chainNodePorts}, "filter": {chainFilter}}

// cleanup deletes, table by table, the jumps into our chains and the
// chains. One iptables-save per table tells which chains are there (a jump
// into a missing chain cannot exist): on a node the mode never ran on, as
// at every start of another mode, that is all it costs. A table that
// cannot be listed has every jump and chain deleted by commands that
// check for them, as before.
func cleanup(ctx context.Context, k Kernel) error {
	var errs []error
	for _, table := range []string{"nat", "filter"} {
		chains, err := xtables.SavedChains(ctx, k, table)
		listed := err == nil
		if !listed {
			errs = append(errs, fmt.Errorf("list %s: %w", table, err))
		}
		there := func(chain string) bool { return !listed || slices.Contains(chains, chain) }
		for _, j := range jumps {
			if j.table != table || !there(j.target) {
				continue
			}
			if err := k.DeleteRule(ctx, j.table, j.chain, j.rule()...); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range ourChains[table] {
			if !there(c) {
				continue
			}
			if err := k.DeleteChain(ctx, table, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("userspace cleanup: %w", err)
	}
	return nil
}

// ListenerInfo describes one open proxy listener.
type ListenerInfo struct {
	Name proxier.ServicePortName
	// External is true for the listener of NodePorts, externalIPs and
	// LoadBalancer IPs, false for the ClusterIP one.
	External  bool
	ProxyPort int
}

// Listeners returns the open listeners, sorted.
func (p *Proxier) Listeners() []ListenerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]listenerKey, 0, len(p.listeners))
	for k := range p.listeners {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]ListenerInfo, len(keys))
	for i, k := range keys {
		out[i] = ListenerInfo{Name: k.Name, External: k.Class == external, ProxyPort: p.listeners[k].port}
	}
	return out
}
