package kind

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// upReadmeSection names the README section the `up` timings are written to.
const upReadmeSection = "kind-up"

// upStep is one top-level step of `hack/kind-offline.sh up`, as its log
// reports it.
type upStep struct {
	Name    string
	Seconds int
}

// upRun is one `up`, parsed from its log.
type upRun struct {
	Steps      []upStep
	Total      int      // seconds, from "cluster … is up in Ns"
	Conditions []string // the "conditions:" lines, when the log has them
}

var (
	upLogLine   = regexp.MustCompile(`^\[kind-offline [0-9:]+\] (.*)$`)
	upDoneLine  = regexp.MustCompile(`^\s*done: (.*) \((\d+)s\)$`)
	upTotalLine = regexp.MustCompile(`^cluster \S+ is up in (\d+)s`)
)

// parseUpLog reads the step tree of an `up` log: ">>> name" opens a step,
// "done: name (Ns)" closes the innermost one; only top-level steps are kept.
func parseUpLog(log string) (upRun, error) {
	var run upRun
	depth := 0
	for _, line := range strings.Split(log, "\n") {
		m := upLogLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		msg := m[1]
		switch {
		case strings.HasPrefix(msg, ">>> "):
			depth++
		case upDoneLine.MatchString(msg):
			d := upDoneLine.FindStringSubmatch(msg)
			depth--
			if depth == 0 {
				secs, _ := strconv.Atoi(d[2])
				run.Steps = append(run.Steps, upStep{Name: d[1], Seconds: secs})
			}
		case strings.HasPrefix(msg, "conditions: "):
			run.Conditions = append(run.Conditions, strings.TrimPrefix(msg, "conditions: "))
		case upTotalLine.MatchString(msg):
			run.Total, _ = strconv.Atoi(upTotalLine.FindStringSubmatch(msg)[1])
		}
	}
	if run.Total == 0 || len(run.Steps) == 0 {
		return run, fmt.Errorf("no completed `up` in the log")
	}
	return run, nil
}

// upSummary is the README's table of a cold and a warm `up`, step by step;
// notes (the run's notes.md, relative link dir) say under what conditions.
func upSummary(cold, warm upRun, dir string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "`hack/kind-offline.sh up iptables` on this 2-core machine: cold (empty caches, Go module cache included) %s, warm (everything cached) %s; conditions and full logs in [%s](%s/notes.md).\n\n",
		minutes(cold.Total), minutes(warm.Total), dir, dir)
	s.WriteString("| step | cold (s) | warm (s) |\n|---|---|---|\n")
	warmByName := map[string]int{}
	for _, st := range warm.Steps {
		warmByName[stepKey(st.Name)] = st.Seconds
	}
	for _, st := range cold.Steps {
		w, ok := warmByName[stepKey(st.Name)]
		ws := "–"
		if ok {
			ws = strconv.Itoa(w)
		}
		fmt.Fprintf(&s, "| %s | %d | %s |\n", stepKey(st.Name), st.Seconds, ws)
	}
	fmt.Fprintf(&s, "| **total** | **%d** | **%d** |\n", cold.Total, warm.Total)
	for _, run := range []struct {
		name string
		upRun
	}{{"cold", cold}, {"warm", warm}} {
		if len(run.Conditions) > 0 {
			fmt.Fprintf(&s, "\nThe %s run logged: %s.\n", run.name, strings.Join(run.Conditions, "; "))
		}
	}
	return s.String()
}

// stepKey drops a step's parenthesized remark, which may name paths.
func stepKey(name string) string {
	if i := strings.Index(name, " ("); i > 0 {
		return name[:i]
	}
	return name
}

func minutes(secs int) string {
	return fmt.Sprintf("%d min %02d s", secs/60, secs%60)
}

// latestUpRun returns the newest bench/results/*-kind-up directory under
// root with its cold and warm runs.
func latestUpRun(root string) (dir string, cold, warm upRun, err error) {
	dirs, _ := filepath.Glob(filepath.Join(root, "bench", "results", "*-kind-up"))
	if len(dirs) == 0 {
		return "", cold, warm, fmt.Errorf("no kind up timings under %s/bench/results", root)
	}
	sort.Strings(dirs)
	dir = dirs[len(dirs)-1]
	for name, run := range map[string]*upRun{"cold.log": &cold, "warm.log": &warm} {
		b, rerr := os.ReadFile(filepath.Join(dir, name))
		if rerr != nil {
			return dir, cold, warm, rerr
		}
		if *run, err = parseUpLog(string(b)); err != nil {
			return dir, cold, warm, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
	}
	return dir, cold, warm, nil
}
