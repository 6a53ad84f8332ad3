// Package apiwait makes the API client wait for a kube-apiserver that is
// down instead of failing fast.
//
// client-go's reflector backs off between failed list and watch attempts
// (0.8 s doubling to 30 s, jitter up to 2×), and the shared informers give
// no way to shorten that. A request whose connection attempt waits does not
// fail, so the reflector's backoff does not grow during an outage, and the
// waiting list or watch goes on within one retry interval of the apiserver
// accepting connections again.
package apiwait
