package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	kpconfig "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// TestModeTableComplete: every entry sets every field a new mode could
// forget and says what it needs from the kernel.
func TestModeTableComplete(t *testing.T) {
	if got := nilFuncs(reflect.ValueOf(mode{}), ""); !slices.Contains(got, "modeFuncs.New") || !slices.Contains(got, "Needs") {
		t.Fatalf("nilFuncs(mode{}) = %q: misses fields", got)
	}
	seen := map[string]bool{}
	for _, m := range modeTable {
		if m.Name == "" || seen[m.Name] {
			t.Errorf("mode %q: empty or duplicated name", m.Name)
		}
		seen[m.Name] = true
		for _, field := range nilFuncs(reflect.ValueOf(m), "") {
			t.Errorf("mode %s: %s is nil", m.Name, field)
		}
		if m.SyncSection == "" || m.SyncFlags == "" {
			t.Errorf("mode %s: no SyncSection or SyncFlags", m.Name)
		}
		needs := m.Needs(xtables.NFT)
		if len(needs) == 0 {
			t.Errorf("mode %s needs nothing from the kernel", m.Name)
		}
		for _, r := range needs {
			if r.name == "" || r.probe == nil || r.fix == "" {
				t.Errorf("mode %s: incomplete requirement %+v", m.Name, r)
			}
		}
	}
	if _, ok := modeNamed(defaultMode); !ok {
		t.Errorf("default mode %s is not in the table", defaultMode)
	}
}

// nilFuncs names the nil function fields of v, a struct, and of the
// structs it embeds.
func nilFuncs(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		switch f.Kind() {
		case reflect.Struct:
			out = append(out, nilFuncs(f, prefix+sf.Name+".")...)
		case reflect.Func:
			if f.IsNil() {
				out = append(out, prefix+sf.Name)
			}
		}
	}
	return out
}

// fakeModes is a table of modes whose functions only record their calls
// ("mode/family").
type fakeModes struct {
	table    []mode
	cleaned  []string
	hasSigns bool // what every HasLeftovers answers
}

// newFakeModes builds one fake mode per name; "shared" and "nodewide" in
// a name set SharedChains and NodeWide.
func newFakeModes(names ...string) *fakeModes {
	fm := &fakeModes{}
	for _, name := range names {
		fm.table = append(fm.table, mode{
			Name: name,
			modeFuncs: modeFuncs{
				New:    func(modeSettings, proxier.Family) (proxier.Proxier, error) { return nil, nil },
				Render: func(modeSettings, *proxier.Snapshot, proxier.Family) (string, error) { return "", nil },
				Cleanup: func(_ context.Context, s modeSettings, f proxier.Family) error {
					fm.cleaned = append(fm.cleaned, fmt.Sprintf("%s/%s", name, f))
					return nil
				},
			},
			HasLeftovers: func(context.Context, modeSettings, proxier.Family) (bool, error) { return fm.hasSigns, nil },
			SyncSection:  "iptables",
			SyncPeriods:  iptablesSyncPeriods,
			SyncFlags:    "iptables",
			Needs:        onlyIPTables,
			SharedChains: strings.Contains(name, "shared"),
			NodeWide:     strings.Contains(name, "nodewide"),
		})
	}
	return fm
}

func (fm *fakeModes) removeLeftovers(t *testing.T, current string, families []proxier.Family, cleanDisabled bool) []string {
	t.Helper()
	fm.cleaned = nil
	c := defaultConfig()
	c.Mode = kpconfig.ProxyMode(current)
	if err := removeLeftovers(context.Background(), fm.table, modeSettings{cfg: c}, families, cleanDisabled); err != nil {
		t.Fatal(err)
	}
	return fm.cleaned
}

// TestLeftoversCleanEveryOtherMode: with leftovers of every mode present,
// starting in one mode cleans every other mode of the table, node-wide
// ones last, and never the running one in a family it proxies.
func TestLeftoversCleanEveryOtherMode(t *testing.T) {
	fm := newFakeModes("a-shared", "b-shared-nodewide", "c", "d")
	fm.hasSigns = true
	v4 := []proxier.Family{proxier.IPv4}
	for _, tc := range []struct {
		current string
		want    string
	}{
		{"a-shared", "c/IPv4 d/IPv4 b-shared-nodewide/IPv4"},
		{"b-shared-nodewide", "a-shared/IPv4 c/IPv4 d/IPv4"},
		{"c", "a-shared/IPv4 d/IPv4 b-shared-nodewide/IPv4"},
		{"d", "a-shared/IPv4 c/IPv4 b-shared-nodewide/IPv4"},
	} {
		if got := strings.Join(fm.removeLeftovers(t, tc.current, v4, false), " "); got != tc.want {
			t.Errorf("%s, IPv4: cleaned %q, want %q", tc.current, got, tc.want)
		}
	}
}

// TestLeftoversWithoutSigns: a mode sharing chain names with the running
// one, or a node-wide one, is cleaned only when its own signs are there;
// the others always; a family not proxied loses every mode's rules but
// the running node-wide mode's; guessed families keep theirs.
func TestLeftoversWithoutSigns(t *testing.T) {
	fm := newFakeModes("a-shared", "b-shared-nodewide", "c")
	v4 := []proxier.Family{proxier.IPv4}
	for _, tc := range []struct {
		current       string
		cleanDisabled bool
		want          string
	}{
		{"a-shared", false, "c/IPv4"},
		{"c", false, "a-shared/IPv4"},
		{"a-shared", true, "c/IPv4 a-shared/IPv6 c/IPv6"},
		{"b-shared-nodewide", true, "c/IPv4 a-shared/IPv6 c/IPv6"},
	} {
		if got := strings.Join(fm.removeLeftovers(t, tc.current, v4, tc.cleanDisabled), " "); got != tc.want {
			t.Errorf("%s, cleanDisabled %v: cleaned %q, want %q", tc.current, tc.cleanDisabled, got, tc.want)
		}
	}
}

// TestLeftoversDecidedBeforeCleaning: a Cleanup that removes a node-wide
// sign (kube-ipvs0) does not stop the other family's cleanup.
func TestLeftoversDecidedBeforeCleaning(t *testing.T) {
	fm := newFakeModes("a", "b-nodewide")
	fm.hasSigns = true
	cleanup := fm.table[1].Cleanup
	fm.table[1].Cleanup = func(ctx context.Context, s modeSettings, f proxier.Family) error {
		fm.hasSigns = false
		return cleanup(ctx, s, f)
	}
	got := fm.removeLeftovers(t, "a", []proxier.Family{proxier.IPv4, proxier.IPv6}, true)
	if want := []string{"b-nodewide/IPv4", "b-nodewide/IPv6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cleaned %q, want %q", got, want)
	}
}

// TestLeftoversOfTheRealModes pins what the pairwise code before the
// table did, for the three modes (and nftables, which shares no chain
// name with them and so cleans and is cleaned by each of them): which others each cleans in a family
// it proxies (with and without the others' signs) and in one it does not.
func TestLeftoversOfTheRealModes(t *testing.T) {
	fm := &fakeModes{table: slices.Clone(modeTable)}
	for i := range fm.table {
		name := fm.table[i].Name
		fm.table[i].Cleanup = func(_ context.Context, _ modeSettings, f proxier.Family) error {
			fm.cleaned = append(fm.cleaned, fmt.Sprintf("%s/%s", name, f))
			return nil
		}
		fm.table[i].HasLeftovers = func(context.Context, modeSettings, proxier.Family) (bool, error) { return fm.hasSigns, nil }
	}
	v4 := []proxier.Family{proxier.IPv4}
	for _, tc := range []struct {
		current  string
		hasSigns bool
		want     string
	}{
		{ModeIPTables, true, "userspace/IPv4 nftables/IPv4 ipvs/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6 ipvs/IPv6"},
		{ModeIPTables, false, "userspace/IPv4 nftables/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6"},
		{ModeIPVS, true, "iptables/IPv4 userspace/IPv4 nftables/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6"},
		{ModeIPVS, false, "userspace/IPv4 nftables/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6"},
		{ModeUserspace, true, "iptables/IPv4 nftables/IPv4 ipvs/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6 ipvs/IPv6"},
		{ModeUserspace, false, "iptables/IPv4 nftables/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6"},
		{ModeNFTables, true, "iptables/IPv4 userspace/IPv4 ipvs/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6 ipvs/IPv6"},
		{ModeNFTables, false, "iptables/IPv4 userspace/IPv4 iptables/IPv6 userspace/IPv6 nftables/IPv6"},
	} {
		fm.hasSigns = tc.hasSigns
		if got := strings.Join(fm.removeLeftovers(t, tc.current, v4, true), " "); got != tc.want {
			t.Errorf("%s, signs %v: cleaned %q, want %q", tc.current, tc.hasSigns, got, tc.want)
		}
	}
}

// TestCleanupAllCleansEveryMode: --cleanup runs every mode's Cleanup in
// both families and every backend, node-wide modes last.
func TestCleanupAllCleansEveryMode(t *testing.T) {
	fm := newFakeModes("a-nodewide", "b", "c")
	err := cleanupAll(context.Background(), fm.table, modeSettings{cfg: defaultConfig()}, []xtables.Backend{xtables.Legacy, xtables.NFT})
	if err != nil {
		t.Fatal(err)
	}
	want := "b/IPv4 b/IPv4 c/IPv4 c/IPv4 a-nodewide/IPv4 a-nodewide/IPv4 b/IPv6 b/IPv6 c/IPv6 c/IPv6 a-nodewide/IPv6 a-nodewide/IPv6"
	if got := strings.Join(fm.cleaned, " "); got != want {
		t.Errorf("cleaned %q, want %q", got, want)
	}
}
