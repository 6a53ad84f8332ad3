package proxier

import (
	"context"
	"math"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
)

// relistBackoff paces a Reflector's retries after a failed list or watch.
// After an apiserver restart kproxy's resumed watches are refused (403
// while its authorizer starts, or an expired resourceVersion), and
// client-go's default first wait, 0.8-1.6 s, sat inside a recovery at
// 10,000 Services that missed 2 s. This one starts at 0.2 s and doubles
// to the same 30 s cap, so an apiserver that keeps failing still sees the
// reflector back off within a few attempts.
var relistBackoff = wait.Backoff{
	Duration: 200 * time.Millisecond,
	Factor:   2,
	Jitter:   0.5,
	Cap:      30 * time.Second,
	Steps:    int(math.Ceil(float64(30*time.Second) / float64(200*time.Millisecond))),
}

// runReflector runs a Reflector of Services or EndpointSlices (as lw lists and
// watches them) into an objectStore until ctx ends, and returns the store.
func runReflector(ctx context.Context, lw cache.ListerWatcher, obj runtime.Object, name string,
	resync time.Duration, transform cache.TransformFunc, onChange func(old, cur any)) *objectStore {
	store := newObjectStore(transform, onChange)
	go newReflector(lw, obj, store, name, resync).RunWithContext(ctx)
	return store
}

func newReflector(lw cache.ListerWatcher, obj runtime.Object, store cache.ReflectorStore, name string,
	resync time.Duration) *cache.Reflector {
	backoff := relistBackoff
	return cache.NewReflectorWithOptions(lw, obj, store, cache.ReflectorOptions{
		Name: name, ResyncPeriod: resync, Backoff: &backoff, // type: "*v1.Service", as in informers' log lines
	})
}

// serviceListWatch lists and watches the Services kproxy proxies.
func serviceListWatch(c *APIClient) cache.ListerWatcher {
	return listWatch(c.core, "services", func() runtime.Object { return &v1.ServiceList{} }, func(o *metav1.ListOptions) {
		o.LabelSelector, o.FieldSelector = ServiceLabelSelector, ServiceFieldSelector
	})
}

// sliceListWatch: see serviceListWatch.
func sliceListWatch(c *APIClient) cache.ListerWatcher {
	return listWatch(c.discovery, "endpointslices", func() runtime.Object { return &discovery.EndpointSliceList{} }, func(o *metav1.ListOptions) {
		o.LabelSelector = EndpointSliceLabelSelector
	})
}

// nodeListWatch lists and watches the Node named name.
func nodeListWatch(c *APIClient, name string) cache.ListerWatcher {
	return listWatch(c.core, "nodes", func() runtime.Object { return &v1.NodeList{} }, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	})
}

// cidrListWatch lists and watches the ServiceCIDRs.
func cidrListWatch(c *APIClient) cache.ListerWatcher {
	return listWatch(c.networking, "servicecidrs", func() runtime.Object { return &networking.ServiceCIDRList{} }, func(*metav1.ListOptions) {})
}
