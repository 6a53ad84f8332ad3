package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Progress is called now and then while objects are created or deleted.
type Progress func(done, total int, rate float64)

// Options configures Create and DeleteRole.
type Options struct {
	Workers  int           // parallel requests (default 32)
	Every    time.Duration // progress period (default 5 s)
	Progress Progress      // may be nil
}

func (o Options) normalized() Options {
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Every <= 0 {
		o.Every = 5 * time.Second
	}
	return o
}

// EnsureNamespace creates namespace ns if it does not exist.
func EnsureNamespace(ctx context.Context, c kubernetes.Interface, ns string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// Create creates load Services [from, to) with m endpoints each, Service
// first, then its slice. Existing objects are left as they are. It returns
// the first errors (at most 5) joined.
func Create(ctx context.Context, c kubernetes.Interface, ns string, from, to, m int, opts Options) error {
	opts = opts.normalized()
	return parallel(ctx, to-from, opts, func(ctx context.Context, k int) error {
		svc, eps := LoadObjects(ns, from+k, m, time.Now())
		if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service %s: %w", svc.Name, err)
		}
		if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, eps, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpointslice %s: %w", eps.Name, err)
		}
		return nil
	})
}

// DeleteRole deletes every Service and EndpointSlice in ns labelled with role.
func DeleteRole(ctx context.Context, c kubernetes.Interface, ns, role string, opts Options) error {
	opts = opts.normalized()
	sel := metav1.ListOptions{LabelSelector: RoleLabel + "=" + role}
	if err := c.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		return fmt.Errorf("delete %s endpointslices: %w", role, err)
	}
	list, err := c.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("list %s services: %w", role, err)
	}
	return parallel(ctx, len(list.Items), opts, func(ctx context.Context, k int) error {
		name := list.Items[k].Name
		if err := c.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete service %s: %w", name, err)
		}
		return nil
	})
}

// parallel runs fn(0..n-1) on opts.Workers goroutines, reporting progress.
func parallel(ctx context.Context, n int, opts Options, fn func(ctx context.Context, k int) error) error {
	if n <= 0 {
		return nil
	}
	start := time.Now()
	var done atomic.Int64
	var mu sync.Mutex
	var errs []error
	idx := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range idx {
				if err := fn(ctx, k); err != nil {
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
				done.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	if opts.Progress != nil {
		go func() {
			t := time.NewTicker(opts.Every)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d := int(done.Load())
					opts.Progress(d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
feed:
	for k := 0; k < n; k++ {
		select {
		case idx <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(stop)
	if opts.Progress != nil {
		opts.Progress(n, n, float64(n)/time.Since(start).Seconds())
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
