package proxier

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// listOnly marks a fake client without watch-list support, so the
// Reflector lists and then watches.
type listOnly struct{}

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

// An apiserver that restarted refuses kproxy's old resourceVersion as
// expired: the Reflector must list again within relistBackoff's first
// step (0.2–0.3 s), not client-go's default 0.8–1.6 s.
func TestReflectorRelistsSoonAfterExpiredWatch(t *testing.T) {
	lists := make(chan time.Time, 4)
	var watches atomic.Int32
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			lists <- time.Now()
			return &v1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []v1.Service{*svcAt("a", "10")}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			w := watch.NewFakeWithChanSize(1, false)
			if watches.Add(1) == 1 {
				w.Error(&apierrors.NewResourceExpired("too old resource version: 10 (42)").ErrStatus)
			}
			return w, nil
		},
	}, listOnly{})
	store := newObjectStore(keepAsIs, func(o, c any) {})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go newReflector(lw, &v1.Service{}, store, "services", 0).RunWithContext(ctx)
	first := <-lists
	select {
	case second := <-lists:
		if gap := second.Sub(first); gap >= 800*time.Millisecond {
			t.Errorf("relisted %v after the first list (the watch expired at once), want < 0.8 s", gap)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no relist within 10 s of an expired watch")
	}
}
