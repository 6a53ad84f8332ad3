package proxier

import (
	"context"
	"errors"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// listFirst makes a Reflector get its first objects by a list and its
// relists by a watch-list stream (the objects sent as watch events). A
// fresh node waits for the first objects before its first sync: at 10,000
// Services and 10,000 EndpointSlices the stream took 1.3 s where a list
// took 0.37 s (a diagnostic bench run's log; cold start 1.28 s in nft8,
// which listed, against 1.85 s in nft9, which streamed). A relist happens while kproxy runs (after an apiserver
// outage): there the stream's lower peak matters, as a list holds every
// listed API object until it is stored (134 MiB of RSS against 81 MiB
// steady in the soak, see RELIABILITY.md). client-go itself still lists
// when a stream request fails with an error it does not retry.
type listFirst struct {
	*cache.ListWatch
	// listed: a list succeeded; until then streams are refused.
	listed atomic.Bool
}

// errListFirst makes client-go's Reflector fall back to a list; it is not
// a retriable error, so the Reflector lists at once.
var errListFirst = errors.New("kproxy: the first objects come by a list")

// WatchWithContext refuses watch-list streams until a list succeeded.
func (l *listFirst) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if o.SendInitialEvents != nil && *o.SendInitialEvents && !l.listed.Load() {
		return nil, errListFirst
	}
	return l.ListWatch.WatchWithContext(ctx, o)
}

// ListWithContext records a successful list.
func (l *listFirst) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	obj, err := l.ListWatch.ListWithContext(ctx, o)
	if err == nil {
		l.listed.Store(true)
	}
	return obj, err
}
