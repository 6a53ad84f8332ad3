package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestRenderGolden runs "kproxy render" on the files in testdata/ and
// compares stdout and stderr with the golden files.
func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string // file fed on stdin when -f -
	}{
		{name: "cluster", args: []string{"-f", "testdata/cluster.yaml", "--hostname-override=node1", "--cluster-cidr=10.244.0.0/16"}},
		{name: "cluster-masquerade-all", args: []string{"-f", "testdata/cluster.yaml", "--hostname-override=NODE1", "--masquerade-all", "--iptables-masquerade-bit=5", "--nodeport-addresses=198.51.100.0/24"}},
		{name: "list-stdin", args: []string{"-f", "-", "--hostname-override=node1", "--cluster-cidr=10.244.0.0/16"}, stdin: "testdata/list.yaml"},
		{name: "cluster-config-file", args: []string{"-f", "testdata/cluster.yaml", "--config=testdata/config.yaml", "--masquerade-all=false"}},
		{name: "cluster-nftables", args: []string{"-f", "testdata/cluster.yaml", "--hostname-override=node1", "--cluster-cidr=10.244.0.0/16", "--proxy-mode=nftables"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdin bytes.Reader
			if tc.stdin != "" {
				data, err := os.ReadFile(tc.stdin)
				if err != nil {
					t.Fatal(err)
				}
				stdin = *bytes.NewReader(data)
			}
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"render"}, tc.args...), &stdin, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			got := stdout.String() + "---- stderr ----\n" + stderr.String()
			golden := filepath.Join("testdata", "render-"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s (run with -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

// TestRenderDeterministic renders the same input twice and with the
// documents in reverse order: the output must not change.
func TestRenderDeterministic(t *testing.T) {
	data, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	reversed := make([]string, len(docs))
	for i, d := range docs {
		reversed[len(docs)-1-i] = d
	}
	out := func(in string) string {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"render", "-f", "-", "--hostname-override=node1"}, strings.NewReader(in), &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		return stdout.String()
	}
	a, b := out(string(data)), out(strings.Join(reversed, "\n---\n"))
	if a != b || a != out(string(data)) {
		t.Errorf("render depends on input order:\n%s\n---- vs ----\n%s", a, b)
	}
	if !strings.Contains(a, "KUBE-SERVICES") {
		t.Errorf("render printed no rules:\n%s", a)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"render"}, 2, "-f FILE is required"},
		{[]string{"render", "-f", "testdata/nonexistent.yaml"}, 1, "no such file"},
		{[]string{"render", "-f", "testdata/cluster.yaml", "--proxy-mode=bogus"}, 2, `mode (--proxy-mode) "bogus"`},
		{[]string{"render", "-f", "testdata/broken.txt"}, 1, "document 1"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}

// TestRenderOtherModes checks that render dispatches to the ipvs and
// userspace modes with the flags applied. Their exact output is those
// packages' golden files' business, not this one's.
func TestRenderOtherModes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--proxy-mode=ipvs", "--ipvs-scheduler=wrr"}, []string{"# kproxy render: mode ipvs, family IPv4, node node1", "TCP 10.96.0.10:80 wrr", "-> 10.244.1.10:8080"}},
		{[]string{"--mode=userspace"}, []string{"# kproxy render: mode userspace, family IPv4, node node1", "10.96.0.10/32", "*nat"}},
		// --masquerade-all reaches the nftables section, as in kube-proxy.
		{[]string{"--proxy-mode=nftables", "--masquerade-all"}, []string{"# kproxy render: mode nftables, family IPv4, node node1",
			"10.96.0.10 . tcp . 80 : goto service-", `comment "masquerade all clusterIP traffic"`}},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"render", "-f", "testdata/cluster.yaml", "--hostname-override=node1", "--cluster-cidr=10.244.0.0/16"}, tc.args...)
		if code := run(args, nil, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, stdout.String())
			}
		}
	}
}
