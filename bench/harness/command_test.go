package harness

import "testing"

func TestCommandLine(t *testing.T) {
	got := CommandLine("/work/kproxy", []string{"-n", "1000", "-kproxy", "/tmp/k/kproxy",
		"-out=/work/kproxy/bench/results/x", "-allow-dirty"})
	want := "go run ./bench -n 1000 -kproxy kproxy -out=bench/results/x -allow-dirty"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
