package main

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kproxy/kproxy/bench/loadgen"
	"github.com/kproxy/kproxy/internal/testrig"
)

// apply creates or updates a Service and its EndpointSlice with one pod.
func (e *env) apply(ctx context.Context, name, ip, pod string) error {
	if err := e.ensureService(ctx, name, ip); err != nil {
		return err
	}
	node := "node1"
	if strings.HasPrefix(pod, "10.244.2.") {
		node = "node2"
	}
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints:   []discovery.Endpoint{{Addresses: []string{pod}, NodeName: &node, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}},
	}
	return testrig.ApplyEndpointSlice(ctx, e.client, es)
}

// ensureService creates the Service unless it exists. A Create of an
// existing Service with a fixed ClusterIP does not fail with AlreadyExists:
// the apiserver allocates the address first and refuses it as "already
// allocated" (by that very Service), so the Service is looked up first.
func (e *env) ensureService(ctx context.Context, name, ip string) error {
	services := e.client.CoreV1().Services("default")
	if _, err := services.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	// A selector, as the endpoint controller's Services have: a new one is
	// then synced with its first slice (proxier.SliceWait).
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Selector: map[string]string{"app": name},
			Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}}
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func (e *env) remove(ctx context.Context, name string) error {
	return testrig.DeleteService(ctx, e.client, "default", name, name+"-1")
}

// churn asks for c.rate changes per second, spread over c.workers writers.
// A tick that finds every writer busy is dropped and counted, so the
// achieved rate is what the table reports.
func (e *env) churn(ctx context.Context, c config, res *result) {
	jobs := make(chan struct{}, c.workers)
	var wg sync.WaitGroup
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for range jobs {
				e.change(ctx, c, res, rnd)
			}
		}()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			select {
			case jobs <- struct{}{}:
			default:
				res.dropped.Add(1)
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// change makes one change: with a background, half the time it moves a
// background Service's endpoint; otherwise it creates a missing churned
// Service, moves its endpoint to another pod, or deletes it.
func (e *env) change(ctx context.Context, c config, res *result, rnd *rand.Rand) {
	if c.background > 0 && rnd.IntN(2) == 0 {
		err := loadgen.TouchLoad(ctx, e.client, loadNS, rnd.IntN(c.background), c.endpoints, time.Now())
		e.count(ctx, res, err, true)
		return
	}
	i, cur := e.claim(rnd)
	var next string
	var err error
	if cur != "" && rnd.IntN(4) == 0 {
		err = e.remove(ctx, churnName(i))
	} else {
		next = e.pods[rnd.IntN(len(e.pods))]
		err = e.apply(ctx, churnName(i), churnIP(i), next)
	}
	if err != nil {
		next = "" // unknown: not probed until a change succeeds
	}
	e.release(i, next)
	e.count(ctx, res, err, false)
}

// claim picks a churned Service no other writer is changing.
func (e *env) claim(rnd *rand.Rand) (int, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := rnd.IntN(len(e.state))
	for e.busy[i] {
		i = (i + 1) % len(e.state)
	}
	e.busy[i] = true
	return i, e.state[i]
}

func (e *env) release(i int, next string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state[i], e.lastChange[i], e.busy[i] = next, time.Now(), false
}

func (e *env) count(ctx context.Context, res *result, err error, background bool) {
	switch {
	case err == nil && background:
		res.changes.Add(1)
		res.touches.Add(1)
	case err == nil:
		res.changes.Add(1)
	case ctx.Err() != nil:
	case e.out.down():
		res.downErrors.Add(1)
	default:
		res.apiErrors.Add(1)
		res.note("api: " + err.Error())
	}
}
