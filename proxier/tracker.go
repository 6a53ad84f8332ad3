package proxier

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Tracker receives informer events, strips the objects to small values,
// drops no-op changes and hands out snapshots of what changed. It is safe
// for concurrent use: informer handlers call On*, the sync loop calls
// Checkout.
type Tracker struct {
	mu       sync.Mutex
	nodeName string
	families []Family
	invalid  func(kind, name string, err error)
	started  time.Time

	services                          map[types.NamespacedName]familyPorts
	slices                            map[types.NamespacedName]map[string]*Slice
	node                              map[Family]NodeInfo
	serviceCIDRs                      map[string][]netip.Prefix // by ServiceCIDR name
	dirty                             NameSet
	nodeDirty                         bool
	triggers                          map[Family][]time.Time
	pendingServices, pendingEndpoints int

	servicesSynced, slicesSynced bool
	built                        map[Family]map[types.NamespacedName]*Service
}

// NewTracker returns a tracker for the node's families. invalid is called
// once per bad part of an object (a Service port, an endpoint, a slice)
// each time the object changes; it logs and counts.
func NewTracker(nodeName string, families []Family, invalid func(kind, name string, err error), now time.Time) *Tracker {
	t := &Tracker{
		nodeName: nodeName, families: families, invalid: invalid, started: now,
		services:     map[types.NamespacedName]familyPorts{},
		slices:       map[types.NamespacedName]map[string]*Slice{},
		node:         map[Family]NodeInfo{},
		dirty:        NameSet{},
		serviceCIDRs: map[string][]netip.Prefix{},
		triggers:     map[Family][]time.Time{},
		built:        map[Family]map[types.NamespacedName]*Service{},
	}
	for _, f := range families {
		t.node[f] = NodeInfo{Name: nodeName}
		t.built[f] = map[types.NamespacedName]*Service{}
	}
	return t
}

// Families returns the IP families this tracker builds snapshots for.
func (t *Tracker) Families() []Family { return t.families }

// OnService records a Service add (old nil), update, or delete (cur nil).
func (t *Tracker) OnService(old, cur *v1.Service) {
	t.OnTrackedService(t.TrackService(old), t.TrackService(cur))
}

// OnTrackedService is OnService for the informer's tracked form.
func (t *Tracker) OnTrackedService(old, cur *TrackedService) {
	if old == nil && cur == nil {
		return
	}
	if old != nil && cur != nil && old.ResourceVersion == cur.ResourceVersion && old.ResourceVersion != "" {
		return // periodic resync: nothing changed
	}
	obj := cur
	if obj == nil {
		obj = old
	}
	name := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	var ports familyPorts
	if cur != nil {
		ports = cur.ports
		t.report("Service", name.String(), cur.problems)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if reflect.DeepEqual(t.services[name], ports) {
		return
	}
	if ports.empty() {
		delete(t.services, name) // skipped or wholly invalid: same as absent
	} else {
		t.services[name] = ports
	}
	t.dirty[name] = struct{}{}
	t.pendingServices++
}

// OnEndpointSlice records an EndpointSlice add (old nil), update, or
// delete (cur nil).
func (t *Tracker) OnEndpointSlice(old, cur *discovery.EndpointSlice) {
	t.OnTrackedSlice(TrackSlice(old), TrackSlice(cur))
}

// OnTrackedSlice is OnEndpointSlice for the informer's tracked form.
func (t *Tracker) OnTrackedSlice(old, cur *TrackedSlice) {
	if old == nil && cur == nil {
		return
	}
	if old != nil && cur != nil && old.ResourceVersion == cur.ResourceVersion && old.ResourceVersion != "" {
		return
	}
	obj := cur
	if obj == nil {
		obj = old
	}
	if old != nil && cur != nil && old.service != cur.service {
		// The slice moved to another Service: remove it from the old one.
		t.OnTrackedSlice(old, nil)
		old = nil
	}
	if obj.service == "" {
		return // not owned by a Service
	}
	name := types.NamespacedName{Namespace: obj.Namespace, Name: obj.service}
	var s *Slice
	if cur != nil {
		s = cur.slice
		t.report("EndpointSlice", obj.Namespace+"/"+obj.Name, cur.problems)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	bySlice := t.slices[name]
	prev := bySlice[obj.Name]
	if s != nil && prev != nil && reflect.DeepEqual(withoutTrigger(prev), withoutTrigger(s)) {
		bySlice[obj.Name] = s
		return
	}
	if s == nil && prev == nil {
		return
	}
	if s == nil {
		delete(bySlice, obj.Name)
		if len(bySlice) == 0 {
			delete(t.slices, name)
		}
	} else {
		if bySlice == nil {
			bySlice = map[string]*Slice{}
			t.slices[name] = bySlice
		}
		bySlice[obj.Name] = s
		if !s.TriggerTime.IsZero() && s.TriggerTime.After(t.started) {
			t.triggers[s.Family] = append(t.triggers[s.Family], s.TriggerTime)
		}
	}
	t.dirty[name] = struct{}{}
	t.pendingEndpoints++
}

// familyPorts are one Service's ports of each family: a pair rather than
// a map, which would cost an allocation per Service.
type familyPorts struct {
	v4, v6 []ServicePort
	// selector: the Service selects pods, so the endpointslice controller
	// writes its EndpointSlices.
	selector bool
}

func (p *familyPorts) set(f Family, ports []ServicePort) {
	if len(ports) == 0 {
		ports = nil
	}
	if f == IPv6 {
		p.v6 = ports
	} else {
		p.v4 = ports
	}
}

func (p familyPorts) of(f Family) []ServicePort {
	if f == IPv6 {
		return p.v6
	}
	return p.v4
}

func (p familyPorts) empty() bool { return p.v4 == nil && p.v6 == nil }

func withoutTrigger(s *Slice) Slice {
	c := *s
	c.TriggerTime = time.Time{}
	return c
}

// OnNode records the node's own Node object (cur nil on delete).
func (t *Tracker) OnNode(cur *v1.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.families {
		n := NodeInfoFromAPI(cur, t.nodeName, f)
		if !reflect.DeepEqual(n, t.node[f]) {
			t.node[f] = n
			t.nodeDirty = true
		}
	}
}

// SetServicesSynced and SetSlicesSynced record that the informers have
// delivered their initial lists.
func (t *Tracker) SetServicesSynced() { t.mu.Lock(); t.servicesSynced = true; t.mu.Unlock() }

// SetSlicesSynced: see SetServicesSynced.
func (t *Tracker) SetSlicesSynced() { t.mu.Lock(); t.slicesSynced = true; t.mu.Unlock() }

// Synced reports whether both informers have synced; nothing syncs before.
func (t *Tracker) Synced() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.servicesSynced && t.slicesSynced
}

// Pending returns the number of Service and EndpointSlice changes not yet
// checked out.
func (t *Tracker) Pending() (services, endpoints int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingServices, t.pendingEndpoints
}

// Checkout is what changed since the previous checkout, for every family.
type Checkout struct {
	Snapshots map[Family]*Snapshot
	// Changed lists, per family, the Services whose desired state differs
	// from the previous checkout (added, changed or removed).
	Changed map[Family]NameSet
	// NodeChanged is true when the Node's labels or addresses changed: every
	// Service was rebuilt and backends should do a full sync.
	NodeChanged bool
	// TriggerTimes are, per family, the last-change-trigger-times of the
	// slices changed: a family's sync observes only its own slices', as
	// each of kube-proxy's per-family proxiers does.
	TriggerTimes                    map[Family][]time.Time
	ServiceChanges, EndpointChanges int
}

// Checkout builds new snapshots from everything received so far and
// clears the pending changes.
func (t *Tracker) Checkout() Checkout {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := Checkout{
		Snapshots:       map[Family]*Snapshot{},
		Changed:         map[Family]NameSet{},
		NodeChanged:     t.nodeDirty,
		TriggerTimes:    t.triggers,
		ServiceChanges:  t.pendingServices,
		EndpointChanges: t.pendingEndpoints,
	}
	dirty := t.dirty
	if t.nodeDirty {
		// Topology and locality may have changed for every Service.
		dirty = NameSet{}
		for _, f := range t.families {
			for n := range t.built[f] {
				dirty[n] = struct{}{}
			}
		}
		for n := range t.services {
			dirty[n] = struct{}{}
		}
	}
	for _, f := range t.families {
		node := t.node[f]
		prev := t.built[f]
		next := maps.Clone(prev)
		changed := NameSet{}
		for n := range dirty {
			svc := buildService(n, t.services[n].of(f), t.slices[n], &node, f)
			old := prev[n]
			if svc == nil {
				if old != nil {
					delete(next, n)
					changed[n] = struct{}{}
				}
				continue
			}
			if old != nil && reflect.DeepEqual(old, svc) {
				continue
			}
			next[n] = svc
			changed[n] = struct{}{}
		}
		t.built[f] = next
		c.Snapshots[f] = &Snapshot{Family: f, Node: node, ServiceCIDRs: t.serviceCIDRsOf(f), Services: next}
		c.Changed[f] = changed
	}
	t.dirty = NameSet{}
	t.nodeDirty = false
	t.triggers = map[Family][]time.Time{}
	t.pendingServices, t.pendingEndpoints = 0, 0
	return c
}

func (t *Tracker) report(kind, name string, errs []error) {
	if len(errs) == 0 || t.invalid == nil {
		return
	}
	seen := map[string]bool{}
	var uniq []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			uniq = append(uniq, e)
		}
	}
	t.invalid(kind, name, errors.Join(uniq...))
}

// LogInvalid is the default invalid-object reporter: one log line per
// object change naming the object and every problem found.
func LogInvalid(kind, name string, err error) {
	klog.InfoS("Skipping invalid parts of object", "kind", kind, "object", name, "problems", err.Error())
}
