package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Kind says what a Row measured.
type Kind string

// Row kinds.
const (
	KindUpstream Kind = "upstream" // upstream kube-proxy
	KindKproxy   Kind = "kproxy"   // kproxy in some mode
	KindFloor    Kind = "floor"    // bare iptables-restore of the same ruleset
)

// Row is one proxy on one workload. Durations are in seconds unless the name
// says otherwise; a value that was not measured is NaN (null in JSON).
type Row struct {
	Proxy string `json:"proxy"` // e.g. "kproxy-iptables", "upstream-iptables", "floor"
	Kind  Kind   `json:"kind"`
	Mode  string `json:"mode"`
	N     int    `json:"n"` // load Services
	M     int    `json:"m"` // endpoints per Service
	// Repeat numbers the row among the proxy's runs on the workload (from
	// 0); the tables show the median and min–max over them.
	Repeat int    `json:"repeat"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`

	FirstSyncWall F `json:"first_sync_wall_s"` // exec → first sync done, fresh node
	// FirstSyncOver is the limit the first sync did not finish within (0:
	// it finished), so the table shows "> limit" instead of dropping it.
	FirstSyncOver     float64 `json:"first_sync_over_s,omitempty"`
	FirstSyncMetric   F       `json:"first_sync_metric_s"`   // that sync's duration (full-sync histogram)
	RestartSyncWall   F       `json:"restart_sync_wall_s"`   // exec → first sync done, over the previous instance's rules
	RestartSyncMetric F       `json:"restart_sync_metric_s"` // that full sync's duration (histogram)
	PartialMetric     F       `json:"partial_sync_metric_s"` // median partial sync (histogram) after one Service changed
	PartialWall       F       `json:"partial_sync_wall_s"`   // median API update → sync done (includes min-sync-period waits)
	// The parts of the first, restart and (median) partial syncs spent in
	// iptables-restore / nft, by kproxy's own metric (not in upstream).
	FirstSyncKernelWrite F `json:"first_sync_kernel_write_s"`
	RestartKernelWrite   F `json:"restart_sync_kernel_write_s"`
	PartialKernelWrite   F `json:"partial_sync_kernel_write_s"`
	// KubeServicesWall (iptables floor only) is a --noflush restore of the
	// nat KUBE-SERVICES chain alone: what upstream's partial sync writes at
	// least.
	KubeServicesWall F `json:"kube_services_restore_s"`

	ProgP50        F   `json:"programming_p50_s"` // create Service+slice → connection through it answered
	ProgP90        F   `json:"programming_p90_s"`
	ProgP99        F   `json:"programming_p99_s"`
	ProgSamples    int `json:"programming_samples"`
	ProgMetricMean F   `json:"programming_metric_mean_s"` // the proxy's own network programming histogram, mean over the probes

	FirstPacketP50 F   `json:"first_packet_p50_us"` // connect() through a ClusterIP
	FirstPacketP99 F   `json:"first_packet_p99_us"`
	DirectP50      F   `json:"direct_p50_us"` // connect() straight to the pod, same node (walks the whole chain)
	DirectP99      F   `json:"direct_p99_us"`
	FirstPacketN   int `json:"first_packet_samples"`
	// FirstPacketFailed counts connects (either kind) that failed; up to 1 %
	// is tolerated as noise of a loaded machine.
	FirstPacketFailed int `json:"first_packet_failed"`

	RSSMB F `json:"rss_mb"` // VmRSS at steady state after the probes
	HWMMB F `json:"hwm_mb"` // VmHWM (peak)
	CPU   F `json:"cpu_s"`  // process + reaped children CPU seconds over the whole scripted workload

	Rules  int `json:"rules"`  // iptables "-A" rules (all tables) or IPVS entries
	Chains int `json:"chains"` // iptables chains (all tables)
	Bytes  int `json:"ruleset_bytes"`

	LoadAvg F `json:"loadavg_1m"` // host 1-minute load average when the row was finished (contention)
}

// F is a float64 that encodes NaN as JSON null.
type F float64

// NaN is a not-measured value.
var NaN = F(math.NaN())

// Valid reports whether f was measured.
func (f F) Valid() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// MarshalJSON implements json.Marshaler.
func (f F) MarshalJSON() ([]byte, error) {
	if !f.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *F) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = NaN
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = F(v)
	return nil
}

// NewRow returns a row with every measurement unset.
func NewRow(proxy string, kind Kind, mode string, n, m int) Row {
	nan := NaN
	return Row{
		Proxy: proxy, Kind: kind, Mode: mode, N: n, M: m, Status: "ok",
		FirstSyncWall: nan, FirstSyncMetric: nan, RestartSyncWall: nan, RestartSyncMetric: nan,
		FirstSyncKernelWrite: nan, RestartKernelWrite: nan, PartialKernelWrite: nan,
		PartialMetric: nan, PartialWall: nan, KubeServicesWall: nan, ProgP50: nan, ProgP90: nan, ProgP99: nan, ProgMetricMean: nan,
		FirstPacketP50: nan, FirstPacketP99: nan, DirectP50: nan, DirectP99: nan,
		RSSMB: nan, HWMMB: nan, CPU: nan, LoadAvg: nan,
	}
}

// Results is a whole run.
type Results struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Command  string    `json:"command"`
	Machine  Machine   `json:"machine"`
	Settings string    `json:"settings"`
	Rows     []Row     `json:"rows"`
}

// Write writes results.json, results.md, machine.md and the plots into dir.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "machine.md"), []byte(r.Machine.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return r.Plot(dir)
}

// Read reads a results.json.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		// Not in earlier runs (a measured time is never exactly 0).
		for _, f := range []*F{&row.KubeServicesWall, &row.FirstSyncKernelWrite, &row.RestartKernelWrite, &row.PartialKernelWrite} {
			if *f == 0 {
				*f = NaN
			}
		}
		if r.Rows[i].Kind == KindFloor { // no API update to time from; runs before 2026-12-08 copied the load time here
			r.Rows[i].PartialWall = NaN
		}
	}
	return &r, nil
}
