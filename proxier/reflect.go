package proxier

import (
	"context"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
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

// serviceListWatch lists and watches the Services kproxy proxies, with
// the informer's watch-list semantics.
func serviceListWatch(client kubernetes.Interface) cache.ListerWatcher {
	services := client.CoreV1().Services(metav1.NamespaceAll)
	return selectedListWatch(client, services.List, services.Watch, func(o *metav1.ListOptions) {
		o.LabelSelector, o.FieldSelector = ServiceLabelSelector, ServiceFieldSelector
	})
}

// sliceListWatch: see serviceListWatch.
func sliceListWatch(client kubernetes.Interface) cache.ListerWatcher {
	slices := client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll)
	return selectedListWatch(client, slices.List, slices.Watch, func(o *metav1.ListOptions) {
		o.LabelSelector = EndpointSliceLabelSelector
	})
}

// selectedListWatch lists and watches with the options tweak sets.
func selectedListWatch[L runtime.Object](client kubernetes.Interface,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
	tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}, client)
}
