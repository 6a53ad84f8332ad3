package proxier

import (
	"sync"
	"sync/atomic"

	"k8s.io/client-go/tools/cache"
)

// objectStore is a Reflector's store for one kind of object: it keeps the
// tracked form of each object by key and hands every change to onChange,
// old and new (nil when there is none), as an informer's handler would
// see it. A relist (Replace) reports what it added, changed and dropped.
type objectStore struct {
	transform cache.TransformFunc
	onChange  func(old, cur any)

	mu     sync.Mutex
	objs   map[string]any
	synced atomic.Bool
}

func newObjectStore(transform cache.TransformFunc, onChange func(old, cur any)) *objectStore {
	return &objectStore{transform: transform, onChange: onChange, objs: map[string]any{}}
}

// The Reflector's watch-list stream keeps a full list in a store of its
// own before it hands it over: with Transformer that store keeps the
// tracked forms, not the API objects (without it a relist at 10,000
// Services peaked at 113 MiB of RSS, against 98-101 MiB with shared
// informers; a plain list, which holds every listed API object until
// Replace, peaked at 134 MiB against 81 MiB steady in the soak's
// apiserver outage, so kproxy relists by the stream; only the first
// objects come by a list, see listFirst). The transform is idempotent,
// so Replace may transform again.
var _ cache.TransformingStore = (*objectStore)(nil)

func (s *objectStore) Transformer() cache.TransformFunc { return s.transform }

// HasSynced: the first list has been stored.
func (s *objectStore) HasSynced() bool { return s.synced.Load() }

func (s *objectStore) Add(obj any) error { return s.Update(obj) }

func (s *objectStore) Update(obj any) error {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return err
	}
	cur, err := s.transform(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.objs[key]
	s.objs[key] = cur
	s.onChange(old, cur)
	return nil
}

func (s *objectStore) Delete(obj any) error {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.objs[key]; ok {
		delete(s.objs, key)
		s.onChange(old, nil)
	}
	return nil
}

// Replace stores a full list: every listed object is an add or an update,
// every stored object the list lacks a delete.
func (s *objectStore) Replace(list []any, _ string) error {
	next := make(map[string]any, len(list))
	for _, obj := range list {
		key, err := cache.MetaNamespaceKeyFunc(obj)
		if err != nil {
			return err
		}
		if next[key], err = s.transform(obj); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, cur := range next {
		s.onChange(s.objs[key], cur)
	}
	for key, old := range s.objs {
		if _, ok := next[key]; !ok {
			s.onChange(old, nil)
		}
	}
	s.objs = next
	s.synced.Store(true)
	return nil
}

// Resync hands every object on again unchanged, as an informer's periodic
// resync does.
func (s *objectStore) Resync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, obj := range s.objs {
		s.onChange(obj, obj)
	}
	return nil
}
