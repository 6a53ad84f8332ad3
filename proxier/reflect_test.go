package proxier

import (
	"context"
	"slices"
	"sync"
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

// requestLog records what a fake apiserver was asked.
type requestLog struct {
	mu    sync.Mutex
	calls []string
}

func (r *requestLog) add(c string) { r.mu.Lock(); r.calls = append(r.calls, c); r.mu.Unlock() }
func (r *requestLog) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// streamOf is a watch-list stream: objs as ADDED events, then the bookmark
// that ends the initial events.
func streamOf(rv string, objs ...*v1.Service) watch.Interface {
	w := watch.NewFakeWithChanSize(len(objs)+1, false)
	for _, o := range objs {
		w.Add(o)
	}
	w.Action(watch.Bookmark, &v1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv,
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	return w
}

// The Reflectors get their first objects by one list (a fresh node's
// first sync waits for them) and relist by a watch-list stream (see
// listFirst).
func TestReflectorListsFirstThenStreams(t *testing.T) {
	var log requestLog
	lw := &listFirst{ListWatch: &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			log.add("list")
			if len(log.get()) == 1 { // the first list fails: the next try lists again
				return nil, apierrors.NewServiceUnavailable("starting")
			}
			return &v1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: []v1.Service{*svcAt("a", "10")}}, nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if o.SendInitialEvents != nil && *o.SendInitialEvents {
				log.add("stream")
				return streamOf("12", svcAt("a", "10"), svcAt("b", "12")), nil
			}
			log.add("watch")
			w := watch.NewFakeWithChanSize(1, false)
			if len(log.get()) == 3 { // the watch after the first good list expires
				w.Error(&apierrors.NewResourceExpired("too old resource version: 10 (42)").ErrStatus)
			}
			return w, nil
		},
	}}
	var mu sync.Mutex
	names := map[string]bool{}
	store := newObjectStore(keepAsIs, func(_, cur any) {
		if s, ok := cur.(*v1.Service); ok {
			mu.Lock()
			names[s.Name] = true
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go newReflector(lw, &v1.Service{}, store, "services", 0).RunWithContext(ctx)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return names["b"] })
	time.Sleep(50 * time.Millisecond) // the watch after the stream
	got := log.get()
	want := []string{"list", "list", "watch", "stream"}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("requests %v, want %v first (lists until one works, its watch, then a stream on the relist)", got, want)
	}
	for _, c := range got[len(want):] {
		if c == "list" {
			t.Errorf("requests %v: listed again after the first list", got)
		}
	}
}
