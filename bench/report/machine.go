package report

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where the benchmark ran.
type Machine struct {
	Hostname string     `json:"hostname"`
	Kernel   string     `json:"kernel"`
	CPU      string     `json:"cpu"`
	CPUs     int        `json:"cpus"`
	MemoryGB F          `json:"memory_gb"`
	Go       string     `json:"go"`
	Iptables string     `json:"iptables"`
	Upstream string     `json:"upstream"` // kube-proxy --version
	Kproxy   string     `json:"kproxy"`   // git describe of the kproxy tree
	Source   Provenance `json:"source"`   // the commit kproxy was built from
	LoadAvg  string     `json:"loadavg"`  // at start
}

// DescribeMachine collects a Machine; fields it cannot read stay empty.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), MemoryGB: NaN}
	m.Hostname, _ = os.Hostname()
	m.Kernel = firstLine(run("uname", "-r"))
	m.Iptables = firstLine(run("iptables", "--version"))
	m.Kproxy = firstLine(run("git", "describe", "--always", "--dirty"))
	m.Source = ReadProvenance()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGB = F(kb / (1 << 20))
		}
	}
	return m
}

func run(args ...string) string {
	out, err := runErr(args...)
	if err != nil {
		return ""
	}
	return out
}

func runErr(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).Output()
	return string(out), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// Summary is a one-line description.
func (m Machine) Summary() string {
	return fmt.Sprintf("%d × %s, %s GB RAM, Linux %s, %s, %s", m.CPUs, m.CPU, m.MemoryGB.format(1), m.Kernel, m.Iptables, m.Go)
}

// Markdown renders machine.md.
func (m Machine) Markdown() string {
	var b strings.Builder
	b.WriteString("# Machine\n\n")
	if m.Source.Uncommitted() {
		b.WriteString(uncommittedNote)
	}
	b.WriteString("| | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"hostname", m.Hostname}, {"kernel", m.Kernel}, {"CPU", m.CPU}, {"CPUs", fmt.Sprint(m.CPUs)},
		{"memory", m.MemoryGB.format(1) + " GB"}, {"Go", m.Go}, {"iptables", m.Iptables},
		{"upstream kube-proxy", m.Upstream}, {"kproxy tree", m.Kproxy}, {"kproxy commit", m.Source.String()}, {"load average at start", m.LoadAvg},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	b.WriteString("\nThe control plane (etcd, kube-apiserver), the proxy under test, the load generator and the probes\n" +
		"all share these CPUs; absolute numbers include that contention, ratios between proxies less so.\n")
	return b.String()
}

// LoadAvg1 returns the host's 1-minute load average, or NaN.
func LoadAvg1() F {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return NaN
	}
	var v float64
	if _, err := fmt.Sscanf(string(b), "%f", &v); err != nil {
		return NaN
	}
	return F(v)
}
