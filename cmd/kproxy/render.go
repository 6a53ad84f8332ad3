package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kproxy/kproxy/proxier"
)

// objects is what "kproxy render" reads.
type objects struct {
	services []*v1.Service
	slices   []*discovery.EndpointSlice
	nodes    []*v1.Node
	cidrs    []*networking.ServiceCIDR
}

// runRender is "kproxy render -f FILE [flags]": it prints what a full sync
// would write for the objects in FILE, with no kernel access.
func runRender(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var file string
	o, err := parseOptionsWith(args, stderr, func(fs *pflag.FlagSet) {
		fs.StringVarP(&file, "filename", "f", "", "Services, EndpointSlices and Nodes as YAML or JSON (documents or Lists); - is stdin.")
	})
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err == nil && file == "" {
		err = errors.New("render: -f FILE is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "kproxy: %v\n", err)
		return 2
	}
	var in io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(stderr, "kproxy: render: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	objs, err := readObjects(in, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kproxy: render: %v\n", err)
		return 1
	}
	out, err := render(o.Config, objs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kproxy: render: %v\n", err)
		return 1
	}
	_, _ = io.WriteString(stdout, out)
	return 0
}

// render feeds objs through the same Tracker the daemon uses and renders
// one full sync per family. Deterministic.
func render(c *Config, objs *objects, stderr io.Writer) (string, error) {
	name, err := nodeName(c)
	if err != nil {
		return "", err
	}
	var node *v1.Node
	for _, n := range objs.nodes {
		if n.Name == name {
			node = n
		}
	}
	clusterCIDRs, _ := parseClusterCIDRs(c.ClusterCIDR)
	families := chooseFamilies(clusterCIDRs, node)
	invalid := func(kind, obj string, err error) {
		fmt.Fprintf(stderr, "skipping invalid parts of %s %s: %v\n", kind, obj, err)
	}
	t := proxier.NewTracker(name, families, invalid, time.Unix(0, 0))
	// The daemon's informers only list what their selectors match.
	t.OnNode(node)
	for _, c := range objs.cidrs {
		t.OnServiceCIDR(nil, c)
	}
	for _, s := range objs.services {
		if proxier.ServiceListed(s) {
			t.OnService(nil, s)
		}
	}
	for _, s := range objs.slices {
		if proxier.EndpointSliceListed(s) {
			t.OnEndpointSlice(nil, s)
		}
	}
	t.SetServicesSynced()
	t.SetSlicesSynced()
	co := t.Checkout()
	local, err := localDetector(c, clusterCIDRs, node)
	if err != nil {
		return "", err
	}
	// render reads no kernel state: be-liberal only from the configuration.
	settings := modeSettings{cfg: c, local: local, tcpBeLiberal: c.Conntrack.TCPBeLiberal}
	var b bytes.Buffer
	for _, f := range families {
		out, err := renderMode(settings, co.Snapshots[f], f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(&b, "# kproxy render: mode %s, family %s, node %s\n", c.Mode, f, name)
		b.WriteString(out)
	}
	return b.String(), nil
}

// readObjects decodes a stream of YAML documents or JSON objects, each a
// Service, an EndpointSlice, a Node or a List of them (as "kubectl get -o
// yaml" prints). Anything else, or a broken object, is reported on stderr
// and skipped; only an unreadable stream is an error.
func readObjects(r io.Reader, stderr io.Writer) (*objects, error) {
	objs := &objects{}
	dec := yaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	for i := 1; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		objs.add(raw, fmt.Sprintf("document %d", i), stderr)
	}
}

func (objs *objects) add(raw []byte, where string, stderr io.Writer) {
	obj, gvk, err := proxier.Decoder().Decode(raw, nil, nil)
	if runtime.IsNotRegisteredError(err) && gvk != nil {
		obj, err = nil, nil // another API group: the default case says so
	}
	if err != nil {
		fmt.Fprintf(stderr, "skipping %s: %v\n", where, err)
		return
	}
	switch o := obj.(type) {
	case *v1.Service:
		objs.services = append(objs.services, o)
	case *discovery.EndpointSlice:
		objs.slices = append(objs.slices, o)
	case *v1.Node:
		objs.nodes = append(objs.nodes, o)
	case *networking.ServiceCIDR:
		objs.cidrs = append(objs.cidrs, o)
	case *v1.List:
		objs.addItems(o.Items, where, stderr)
	default:
		fmt.Fprintf(stderr, "skipping %s: kind %s is not a Service, EndpointSlice, Node, ServiceCIDR or List\n", where, gvk.Kind)
	}
}

func (objs *objects) addItems(items []runtime.RawExtension, where string, stderr io.Writer) {
	for j, it := range items {
		objs.add(it.Raw, fmt.Sprintf("%s item %d", where, j+1), stderr)
	}
}

// renderMode is the pure render of the configured mode for one family.
func renderMode(s modeSettings, snap *proxier.Snapshot, f proxier.Family) (string, error) {
	m, known := modeNamed(s.cfg.Mode)
	if !known {
		return "", fmt.Errorf("--proxy-mode=%s: %w", s.cfg.Mode, errModeNotBuilt)
	}
	return m.Render(s, snap, f)
}
