package harness

import (
	"reflect"
	"testing"
)

func TestParseWorkloads(t *testing.T) {
	got, err := ParseWorkloads(IssueWorkloads)
	want := []Step{{M: 2, Ns: []int{1000, 5000, 10000}}, {M: 10, Ns: []int{5000}}, {M: 50, Ns: []int{5000}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := ParseWorkloads("1000"); err == nil {
		t.Error("accepted a workload without M")
	}
}
