package ipvs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// Proxier is the ipvs mode for one IP family.
type Proxier struct {
	opts Options

	mu sync.Mutex
	// last is the state after the last successful sync (nil: unknown, so
	// the next sync reads the kernel).
	last *State
	// want is the desired state of the last successful sync, per Service.
	want       *desired
	drainSince map[drainKey]time.Time
	initDone   bool
}

var (
	_ proxier.Proxier          = (*Proxier)(nil)
	_ proxier.Canary           = (*Proxier)(nil)
	_ proxier.ModeMetricsOwner = (*Proxier)(nil)
)

// ModeMetrics returns the iptables-named metrics the loop records this
// mode's syncs in.
func (p *Proxier) ModeMetrics() proxier.ModeMetrics { return p.opts.Metrics }

// New returns a Proxier. It is pure: nothing touches the kernel before the
// first Sync.
func New(opts Options) (*Proxier, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Kernel == nil {
		o.Kernel = newKernel(o.Family, "", o.IPTablesBackend)
	}
	return &Proxier{opts: o, drainSince: map[drainKey]time.Time{}}, nil
}

// Render prints the deterministic dump of what the ipvs mode programs for
// snap: virtual servers, real servers, addresses, ipsets and iptables rules.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	return Build(snap, &o).Dump(), nil
}

// Sync makes the kernel match req.Snapshot: it updates the desired state
// (only the changed Services on a partial sync), plans the kernel
// operations against what the kernel has (read back on a full sync, the
// last sync's result otherwise), applies them and records the outcome.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	full := req.Full || p.last == nil
	res := proxier.SyncResult{Full: full, NoLocalEndpoints: proxier.NoLocalEndpoints(req.Snapshot)}
	if !p.initDone {
		if err := p.init(ctx); err != nil {
			return res, err
		}
		p.initDone = true
	}
	nodePortAddrs, err := p.nodePortAddrs(ctx, &req.Snapshot.Node)
	if err != nil {
		p.last = nil
		return res, err
	}
	touched := p.updateDesired(req, nodePortAddrs, full)
	input, err := p.planInputFor(ctx, touched, nodePortAddrs, full)
	if err != nil {
		p.fail()
		return res, err
	}
	plan := makePlan(input)
	klog.V(4).InfoS("IPVS plan", "ipFamily", p.opts.Family, "ops", plan.Len())
	if klog.V(6).Enabled() {
		klog.InfoS("IPVS plan detail", "plan", plan.String())
	}
	written, err := plan.Apply(ctx, p.opts.Kernel)
	res.Written = written
	if err != nil {
		p.fail() // the kernel is partly updated: read it on the next (full) sync
		res.RestoreFailed = errors.As(err, new(restoreError))
		return res, fmt.Errorf("ipvs sync: %w", err)
	}
	p.recordApplied(plan, input, touched, full)
	want := p.want.s
	res.Rules = want.counts()
	klog.V(2).InfoS("IPVS synced", "ipFamily", p.opts.Family, "full", full, "virtualServers", len(want.VirtualServers),
		"ops", plan.Len(), "draining", len(plan.draining))
	return res, nil
}

// nodePortAddrs returns the addresses NodePorts answer on, from the node's
// local addresses.
func (p *Proxier) nodePortAddrs(ctx context.Context, node *proxier.NodeInfo) ([]netip.Addr, error) {
	local, err := p.opts.Kernel.ListNodeAddrs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list node addresses: %w", err)
	}
	if local == nil {
		local = []netip.Addr{} // nil would mean the Node object's addresses
	}
	return nodePortAddresses(&p.opts, node, local), nil
}

// updateDesired brings p.want up to date with req: on a partial sync with
// the same inputs, only the changed Services are rebuilt and the returned
// scope says what they touch; otherwise everything is rebuilt and the
// scope is nil.
func (p *Proxier) updateDesired(req proxier.SyncRequest, nodePortAddrs []netip.Addr, full bool) *scope {
	var touched *scope
	if !full && p.want != nil && p.want.sameInputs(req.Snapshot, nodePortAddrs) {
		var ok bool
		if touched, ok = p.want.update(req.Snapshot, req.Changed); !ok {
			touched = nil
		}
	}
	if touched == nil {
		p.want = newDesired(req.Snapshot, &p.opts, nodePortAddrs)
	}
	return touched
}

// planInputFor pairs the desired state with the current one: read from the
// kernel on a full sync, the last sync's result (with fresh connection
// counts of the draining real servers) on a partial one.
func (p *Proxier) planInputFor(ctx context.Context, touched *scope, nodePortAddrs []netip.Addr, full bool) (*planInput, error) {
	want := p.want.s
	input := &planInput{want: want, opts: &p.opts, nodePortAddrs: nodePortAddrs, drainSince: p.drainSince, now: p.opts.Now(), scope: touched}
	if full {
		cur, present, err := p.readKernel(ctx)
		if err != nil {
			return nil, err
		}
		input.cur, input.rules = cur, withJumps(want.Rules, present)
		return input, nil
	}
	input.cur = p.last
	if input.cur.Rules != want.Rules {
		input.rules = want.Rules
	}
	if err := p.refreshDraining(ctx, input.cur); err != nil {
		return nil, err
	}
	if touched != nil {
		// The draining real servers are re-planned too, to be deleted
		// once their connections are gone.
		for dk := range p.drainSince {
			touched.vs[dk.vs] = true
		}
	}
	return input, nil
}

// recordApplied remembers what an applied plan left in the kernel: since
// when each real server drains, and the state the next partial sync
// starts from.
func (p *Proxier) recordApplied(plan *Plan, input *planInput, touched *scope, full bool) {
	now := p.opts.Now()
	for dk := range plan.draining {
		if _, ok := p.drainSince[dk]; !ok {
			p.drainSince[dk] = now
		}
	}
	for dk := range p.drainSince {
		if !plan.draining[dk] {
			delete(p.drainSince, dk)
		}
	}
	want := p.want.s
	if touched == nil || full {
		p.last = want.Clone()
	} else {
		p.last.applyScope(want, touched, input.owned)
	}
	for dk := range plan.draining {
		if v := p.last.VirtualServers[dk.vs]; v != nil {
			v.Dests[dk.dest] = Dest{Weight: 0}
		}
	}
}

// fail forgets what the last sync did: the next one reads the kernel and
// rebuilds everything.
func (p *Proxier) fail() {
	p.last = nil
	p.want = nil
}

// init sets the sysctls and timeouts IPVS needs, in the proxy's namespace.
func (p *Proxier) init(ctx context.Context) error {
	k := p.opts.Kernel
	sysctls := [][2]string{
		{"net/ipv4/vs/conntrack", "1"},
		{"net/ipv4/vs/expire_nodest_conn", "1"},
		{"net/ipv4/vs/expire_quiescent_template", "1"},
	}
	if p.opts.Family == proxier.IPv6 {
		sysctls = append(sysctls, [2]string{"net/ipv6/conf/all/forwarding", "1"})
	} else {
		sysctls = append(sysctls, [2]string{"net/ipv4/ip_forward", "1"})
	}
	if p.opts.StrictARP {
		sysctls = append(sysctls, [2]string{"net/ipv4/conf/all/arp_ignore", "1"}, [2]string{"net/ipv4/conf/all/arp_announce", "2"})
	}
	for _, s := range sysctls {
		if err := k.SetSysctl(ctx, s[0], s[1]); err != nil {
			return fmt.Errorf("ipvs: sysctl %s=%s: %w", s[0], s[1], err)
		}
	}
	destroy := func(name string) error { return k.DestroySet(ctx, name) }
	if err := removeUpstreamLeftovers(ctx, k, destroy, p.opts.Family); err != nil {
		return err
	}
	if p.opts.TCPTimeout > 0 || p.opts.TCPFinTimeout > 0 || p.opts.UDPTimeout > 0 {
		if err := k.SetTimeouts(ctx, p.opts.TCPTimeout, p.opts.TCPFinTimeout, p.opts.UDPTimeout); err != nil {
			return fmt.Errorf("ipvs: set timeouts: %w", err)
		}
	}
	return nil
}

// readKernel reads the current state and which jump rules exist.
func (p *Proxier) readKernel(ctx context.Context) (*State, map[string]bool, error) {
	k := p.opts.Kernel
	cur := NewState()
	var err error
	if cur.VirtualServers, err = k.ListVirtualServers(ctx); err != nil {
		return nil, nil, fmt.Errorf("ipvs: list virtual servers: %w", err)
	}
	if cur.Addrs, err = k.ListAddrs(ctx); err != nil {
		return nil, nil, fmt.Errorf("ipvs: list addresses: %w", err)
	}
	names := slices.Sorted(maps.Keys(ownedSets(p.opts.Family)))
	if cur.Sets, err = k.ListSets(ctx, names); err != nil {
		return nil, nil, fmt.Errorf("ipvs: list sets: %w", err)
	}
	present, err := p.presentJumps(ctx)
	if err != nil {
		return nil, nil, err
	}
	return cur, present, nil
}

func (p *Proxier) presentJumps(ctx context.Context) (map[string]bool, error) {
	present := map[string]bool{}
	for _, t := range tables {
		out, err := p.opts.Kernel.Save(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("ipvs: iptables-save -t %s: %w", t, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-A ") {
				present[t+" "+strings.TrimSpace(line)] = true
			}
		}
	}
	return present, nil
}

// refreshDraining reads the connection counts of the draining real
// servers, so that the plan can delete the ones that are idle.
func (p *Proxier) refreshDraining(ctx context.Context, cur *State) error {
	for dk := range p.drainSince {
		v := cur.VirtualServers[dk.vs]
		if v == nil {
			continue
		}
		dests, err := p.opts.Kernel.ListDests(ctx, dk.vs)
		if IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ipvs: list real servers of %s: %w", dk.vs, err)
		}
		if d, ok := dests[dk.dest]; ok {
			v.Dests[dk.dest] = d
		} else {
			delete(v.Dests, dk.dest)
		}
	}
	return nil
}

// Flushed reports whether kproxy's iptables jump rules or kube-ipvs0
// disappeared since the last sync (the loop then forces a full sync).
func (p *Proxier) Flushed(ctx context.Context) (bool, error) {
	p.mu.Lock()
	last := p.last
	p.mu.Unlock()
	if last == nil {
		return false, nil
	}
	present, err := p.presentJumps(ctx)
	if err != nil {
		return false, err
	}
	for _, j := range jumps {
		if !present[jumpKey(j)] {
			return true, nil
		}
	}
	return false, nil
}

// Cleanup removes everything this Proxier's mode created for its family.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail()
	return cleanup(ctx, &p.opts)
}

// Cleanup removes kproxy's virtual servers, addresses, kube-ipvs0, sets
// and iptables rules of one family; it is idempotent.
func Cleanup(ctx context.Context, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if o.Kernel == nil {
		o.Kernel = newKernel(o.Family, "", o.IPTablesBackend)
	}
	return cleanup(ctx, &o)
}

func cleanup(ctx context.Context, o *Options) error {
	k := o.Kernel
	var errs []error
	addrs, err := k.ListAddrs(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	vss, err := k.ListVirtualServers(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for key := range vss {
		// Without a snapshot, kproxy's virtual servers are those on
		// kube-ipvs0's addresses and, on other addresses, those in the
		// NodePort range.
		r := o.NodePortRange
		if !o.excluded(key.Addr) && (addrs[key.Addr] || (key.Port >= r[0] && key.Port <= r[1])) {
			errs = append(errs, ignoreNotExist(k.DeleteVirtualServer(ctx, key)))
		}
	}
	if err := cleanupRules(ctx, k); err != nil {
		errs = append(errs, err)
	}
	names := cleanupSets(o.Family)
	if sets, err := k.ListSets(ctx, names); err != nil {
		errs = append(errs, err)
	} else {
		for _, n := range names {
			if _, ok := sets[n]; ok {
				errs = append(errs, k.DestroySet(ctx, n))
			}
		}
	}
	if o.Family == proxier.IPv4 || len(addrs) == 0 {
		// IPv4 owns the interface; IPv6 only removes its addresses.
		errs = append(errs, k.DeleteInterface(ctx))
	} else {
		for a := range addrs {
			errs = append(errs, ignoreNotExist(k.DeleteAddr(ctx, a)))
		}
	}
	return errors.Join(errs...)
}

// cleanupRules deletes, in one restore, the chains of kproxy's and
// kube-proxy's ipvs modes and every rule elsewhere that jumps to them
// (kproxy's jumps and kube-proxy's, whatever their comment).
func cleanupRules(ctx context.Context, k IPTables) error {
	var b strings.Builder
	for _, t := range tables {
		out, err := k.Save(ctx, t)
		if err != nil {
			return fmt.Errorf("ipvs cleanup: iptables-save -t %s: %w", t, err)
		}
		writeTableCleanup(&b, t, strings.Split(string(out), "\n"))
	}
	if err := k.Restore(ctx, []byte(b.String()), false); err != nil {
		return fmt.Errorf("ipvs cleanup: iptables-restore: %w", err)
	}
	return nil
}

// writeTableCleanup writes the restore lines that empty and delete the
// cleanup chains present in table t (lines: its iptables-save).
func writeTableCleanup(b *strings.Builder, t string, lines []string) {
	writeChainRemoval(b, t, lines, cleanupChains(t), nil, nil)
}

// writeChainRemoval writes, for table t (lines: its iptables-save), the
// restore lines that delete every rule elsewhere jumping to one of the
// doomed chains present, and the rules of deleted, then those chains, and
// flush the present chains of flushed.
func writeChainRemoval(b *strings.Builder, t string, lines, doomed, flushed, deleted []string) {
	present := func(c string) bool { return hasChain(lines, c) }
	gone := map[string]bool{}
	for _, c := range doomed {
		gone[c] = present(c)
	}
	fmt.Fprintf(b, "*%s\n", t)
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == "-A" && (!gone[f[1]] && f[len(f)-2] == "-j" && gone[f[len(f)-1]] || slices.Contains(deleted, l)) {
			fmt.Fprintf(b, "-D %s\n", strings.TrimPrefix(l, "-A "))
		}
	}
	for _, c := range append(slices.Clone(doomed), flushed...) {
		if present(c) {
			fmt.Fprintf(b, ":%s - [0:0]\n", c)
		}
	}
	for _, c := range doomed {
		if gone[c] {
			fmt.Fprintf(b, "-X %s\n", c)
		}
	}
	b.WriteString("COMMIT\n")
}

func (s *State) counts() map[string]int {
	m := countRules(s.Rules)
	m["ipvs"] = len(s.VirtualServers)
	for _, v := range s.VirtualServers {
		m["ipvs-real-servers"] += len(v.Dests)
	}
	for _, e := range s.Sets {
		m["ipset"] += len(e)
	}
	m["addresses"] = len(s.Addrs)
	return m
}
