package measure

import (
	"strings"
	"testing"
)

const iptablesDump = `*filter
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAA - [0:0]
:KUBE-SEP-BBBB - [0:0]
:KUBE-SEP-CCCC - [0:0]
-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-AAAA
-A KUBE-SVC-AAAA -m statistic --mode random --probability 0.5 -j KUBE-SEP-BBBB
-A KUBE-SVC-AAAA -j KUBE-SEP-CCCC
-A KUBE-SEP-BBBB -s 10.180.0.1/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-BBBB -p tcp -m tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-CCCC -s 10.180.0.10/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-CCCC -p tcp -m tcp -j DNAT --to-destination 10.180.0.10:80
COMMIT
`

func TestIptablesEndpointSwap(t *testing.T) {
	fwd, back, err := IptablesEndpointSwap(iptablesDump)
	if err != nil {
		t.Fatal(err)
	}
	wantFwd := `*nat
:KUBE-SVC-AAAA - [0:0]
:KUBE-SEP-FLOORDELTA000000 - [0:0]
:KUBE-SEP-BBBB - [0:0]
-A KUBE-SVC-AAAA -m statistic --mode random --probability 0.5 -j KUBE-SEP-FLOORDELTA000000
-A KUBE-SVC-AAAA -j KUBE-SEP-CCCC
-A KUBE-SEP-FLOORDELTA000000 -s 10.255.254.1/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-FLOORDELTA000000 -p tcp -m tcp -j DNAT --to-destination 10.255.254.1:80
-X KUBE-SEP-BBBB
COMMIT
`
	if fwd != wantFwd {
		t.Errorf("forward:\n%s\nwant:\n%s", fwd, wantFwd)
	}
	wantBack := `*nat
:KUBE-SVC-AAAA - [0:0]
:KUBE-SEP-BBBB - [0:0]
:KUBE-SEP-FLOORDELTA000000 - [0:0]
-A KUBE-SVC-AAAA -m statistic --mode random --probability 0.5 -j KUBE-SEP-BBBB
-A KUBE-SVC-AAAA -j KUBE-SEP-CCCC
-A KUBE-SEP-BBBB -s 10.180.0.1/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-BBBB -p tcp -m tcp -j DNAT --to-destination 10.180.0.1:80
-X KUBE-SEP-FLOORDELTA000000
COMMIT
`
	if back != wantBack {
		t.Errorf("back:\n%s\nwant:\n%s", back, wantBack)
	}
}

func TestIptablesEndpointSwapNeedsAService(t *testing.T) {
	if _, _, err := IptablesEndpointSwap("*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"); err == nil {
		t.Error("no error for a nat table without Service chains")
	}
}

// A KUBE-SEP chain another chain also jumps to (Local traffic policy) is
// not chosen: deleting it would fail.
func TestIptablesEndpointSwapSkipsSharedEndpoints(t *testing.T) {
	dump := strings.Replace(iptablesDump, "-A KUBE-SEP-BBBB -s", "-A KUBE-SVL-DDDD -j KUBE-SEP-BBBB\n-A KUBE-SEP-BBBB -s", 1)
	dump = strings.Replace(dump, ":KUBE-SEP-BBBB - [0:0]", ":KUBE-SEP-BBBB - [0:0]\n:KUBE-SVL-DDDD - [0:0]", 1)
	if _, _, err := IptablesEndpointSwap(dump); err == nil {
		t.Error("chose KUBE-SEP-BBBB, which KUBE-SVL-DDDD jumps to too")
	}
}
