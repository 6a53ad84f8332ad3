package iptables

import (
	"bytes"
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// Two-level dispatch.
//
// kube-proxy's nat KUBE-SERVICES holds one rule per Service IP and port:
// the first packet of every connection (to a Service or not) walks it
// linearly, and every change rewrites it. From defaultBucketMin entries on,
// kproxy spreads the entries over 256 bucket chains keyed by the last byte
// of the destination address (ClusterIPs are allocated at random, so the
// buckets are even whatever the Service CIDR), reached through 16 chains
// keyed by that byte's high nibble:
//
//	KUBE-SERVICES      -d 0.0.0.48/0.0.0.240 -j KPROXY-SVCS-3      (16 rules)
//	KPROXY-SVCS-3      -d 0.0.0.58/0.0.0.255 -j KPROXY-SVCS-3A     (16 rules)
//	KPROXY-SVCS-3A     -d 10.96.7.58/32 -p tcp ... -j KUBE-SVC-...  (N/256 rules)
//
// A packet walks at most 16 + 16 + N/256 rules instead of N, and a change
// rewrites one bucket of about N/256 rules. The 16 + 256 chains always
// exist while bucketing is on, so KUBE-SERVICES and the first level never
// change. Rules for one destination address stay in one bucket in Service
// name order, so the first match is the same as in the flat layout.

// prefixBucket names the dispatch chains; they are kproxy's own (kube-proxy
// has no such chains), and cleanup removes them.
const prefixBucket = "KPROXY-SVCS-"

const hexDigits = "0123456789ABCDEF"

// bucketOf is the last byte of a.
func bucketOf(a netip.Addr) byte {
	b := a.As16()
	return b[15]
}

func level1Chain(hi byte) string { return prefixBucket + hexDigits[hi:hi+1] }

func level2Chain(b byte) string {
	return prefixBucket + string([]byte{hexDigits[b>>4], hexDigits[b&15]})
}

// lastByteMatch is "-d value/mask" matching the last byte of the address
// under mask, as iptables-save prints it.
func (r *renderer) lastByteMatch(value, mask byte) string {
	if r.opts.Family == proxier.IPv6 {
		var v, m [16]byte
		v[15], m[15] = value&mask, mask
		return netip.AddrFrom16(v).String() + "/" + netip.AddrFrom16(m).String()
	}
	return netip.AddrFrom4([4]byte{0, 0, 0, value & mask}).String() + "/" + netip.AddrFrom4([4]byte{0, 0, 0, mask}).String()
}

// writeBuckets writes nat KUBE-SERVICES's bucket jumps and the bucket
// chains into nat. A bucket holding no destination of a Service changed
// since the last render (dirty, nil: all) keeps the previous render's
// body: a partial sync builds one bucket's text, not 256 (at 10,000
// Services that was most of its own work, bench ipt).
func (r *renderer) writeBuckets(nat map[string]*body, services []*svcRender, dirty *[256]bool) {
	svcs := nat[chainServices]
	var fresh [256]bool
	for hi := byte(0); hi < 16; hi++ {
		l1 := level1Chain(hi)
		svcs.add(chainServices, "-d", r.lastByteMatch(hi<<4, 0xf0), "-j", l1)
		b1 := &body{}
		nat[l1] = b1
		for lo := byte(0); lo < 16; lo++ {
			bk := hi<<4 | lo
			l2 := level2Chain(bk)
			b1.add(l1, "-d", r.lastByteMatch(bk, 0xff), "-j", l2)
			if dirty == nil || dirty[bk] || r.buckets[bk] == nil {
				r.buckets[bk], fresh[bk] = &body{}, true
			}
			nat[l2] = r.buckets[bk]
		}
	}
	for _, s := range services {
		for _, d := range s.disp {
			if bk := bucketOf(d.dst); fresh[bk] {
				r.buckets[bk].addRest(level2Chain(bk), d.rest)
			}
		}
	}
	for bk, f := range fresh {
		if f { // kept until the bucket changes: without append's spare room
			r.buckets[bk].text = bytes.Clone(r.buckets[bk].text)
		}
	}
}

// dirtyBuckets marks the buckets that hold a dispatch entry of a Service
// rendered again or gone in res.
func dirtyBuckets(res *rendered) *[256]bool {
	var dirty [256]bool
	for _, list := range [][]*svcRender{res.changed, res.gone} {
		for _, s := range list {
			for _, d := range s.disp {
				dirty[bucketOf(d.dst)] = true
			}
		}
	}
	return &dirty
}
