package kind

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUpReadmeIsCurrent keeps the README's cold and warm `up` times
// generated from the newest committed logs (-kind.update-readme rewrites it).
func TestUpReadmeIsCurrent(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dir, cold, warm, err := latestUpRun(root)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, dir)
	checkGeneratedSection(t, root, upReadmeSection, upSummary(cold, warm, rel))
}

const upLogSample = `[kind-offline 05:06:29] conditions: commit abc1234, 2 cores, load average 0.10 0.20 0.30
[kind-offline 05:06:29] >>> host tools
[kind-offline 05:06:43]     done: host tools (14s)
[kind-offline 05:06:43] >>> binaries (cached in /somewhere)
[kind-offline 05:06:43] >>> building kind
[kind-offline 05:07:28]     done: building kind (45s)
[kind-offline 05:08:00]     done: binaries (cached in /somewhere) (77s)
>>> loading kproxy:dev into kproxy
[kind-offline 05:08:01] >>> nodes Ready
[kind-offline 05:08:02]     done: nodes Ready (1s)
[kind-offline 05:08:02] conditions: load average 1.50 1.00 0.50
[kind-offline 05:08:02] cluster kproxy is up in 93s; kubectl: hack/kind-offline.sh kubectl get pods -A
`

// Only top-level steps count: nested builds are inside "binaries".
func TestParseUpLogTopLevelSteps(t *testing.T) {
	run, err := parseUpLog(upLogSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []upStep{{"host tools", 14}, {"binaries (cached in /somewhere)", 77}, {"nodes Ready", 1}}
	if len(run.Steps) != len(want) {
		t.Fatalf("steps %v, want %v", run.Steps, want)
	}
	for i := range want {
		if run.Steps[i] != want[i] {
			t.Errorf("step %d: %v, want %v", i, run.Steps[i], want[i])
		}
	}
	if run.Total != 93 || len(run.Conditions) != 2 {
		t.Errorf("total %d conditions %q", run.Total, run.Conditions)
	}
	if _, err := parseUpLog("[kind-offline 05:06:29] >>> host tools\n"); err == nil {
		t.Error("an unfinished up must not parse")
	}
}

func TestUpSummaryColdAndWarm(t *testing.T) {
	cold, _ := parseUpLog(upLogSample)
	warm := upRun{Steps: []upStep{{"host tools", 0}, {"binaries (cached)", 2}}, Total: 30}
	s := upSummary(cold, warm, "bench/results/x")
	for _, want := range []string{
		"cold (empty caches, Go module cache included) 1 min 33 s, warm (everything cached) 0 min 30 s",
		"| binaries | 77 | 2 |", "| nodes Ready | 1 | – |", "| **total** | **93** | **30** |",
		"(bench/results/x/notes.md)",
		"The cold run logged: commit abc1234, 2 cores, load average 0.10 0.20 0.30; load average 1.50 1.00 0.50.",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
