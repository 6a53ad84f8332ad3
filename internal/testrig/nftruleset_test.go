package testrig

import "testing"

// TestCanonicalNFT: the same table listed with objects and elements in
// another order canonicalizes to the same text; a change of rule order
// does not.
func TestCanonicalNFT(t *testing.T) {
	a := "table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n" +
		"\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n" +
		"\t\telements = { 10.96.0.1 . tcp . 443 : goto service-a,\n\t\t\t     10.96.0.2 . udp . 53 : goto service-b }\n\t}\n" +
		"\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tjump x\n\t}\n}\n"
	b := "table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n" +
		"\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tjump x\n\t}\n" +
		"\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n" +
		"\t\telements = { 10.96.0.2 . udp . 53 : goto service-b,\n\t\t\t     10.96.0.1 . tcp . 443 : goto service-a }\n\t}\n}\n"
	if ca, cb := CanonicalNFT(a), CanonicalNFT(b); ca != cb {
		t.Errorf("same table, different canonical forms:\n%s\n---\n%s", ca, cb)
	}
	c := "table ip kube-proxy {\n\tchain services {\n\t\tjump x\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n}\n"
	d := "table ip kube-proxy {\n\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tjump x\n\t}\n}\n"
	if CanonicalNFT(c) == CanonicalNFT(d) {
		t.Error("rule order was lost")
	}
}
