// Package flowtest is kproxy's backend-neutral packet-flow table: scenarios
// (Services, EndpointSlices and the Node, as API objects) and cases (a
// source kind, a destination kind, a protocol) with the expected outcome
// (one of a set of endpoints, masqueraded or not; rejected; dropped).
//
// Every mode runs the same table: against its rendered rules through a
// tracer in pure tests, and against the kernel with real packets in a
// testrig topology. The address plan matches testrig: this node is node1
// (198.51.100.11, pods 10.244.1.0/24), the other node is node2
// (198.51.100.12, pods 10.244.2.0/24), the outside client is
// 198.51.100.100, Service IPs live in 10.96.0.0/16.
package flowtest
