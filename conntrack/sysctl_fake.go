package conntrack

import (
	"fmt"
	"io/fs"
	"sync"
)

// FakeSysctls is an in-memory Sysctls: reading a name that was never set
// fails like a missing file, Fail injects write errors, Writes records
// every write in order.
type FakeSysctls struct {
	mu     sync.Mutex
	values map[string]string
	// Writes lists "name=value" for every successful write.
	Writes []string
	// Fail, when it returns an error for a name, makes writing it fail.
	Fail func(name string) error
}

var _ Sysctls = (*FakeSysctls)(nil)

// NewFakeSysctls returns sysctls holding values.
func NewFakeSysctls(values map[string]string) *FakeSysctls {
	v := map[string]string{}
	for k, x := range values {
		v[k] = x
	}
	return &FakeSysctls{values: v}
}

// Read implements Sysctls.
func (f *FakeSysctls) Read(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.values[name]
	if !ok {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v, nil
}

// Write implements Sysctls.
func (f *FakeSysctls) Write(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		if err := f.Fail(name); err != nil {
			return &fs.PathError{Op: "write", Path: name, Err: err}
		}
	}
	if _, ok := f.values[name]; !ok {
		return &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f.values[name] = value
	f.Writes = append(f.Writes, fmt.Sprintf("%s=%s", name, value))
	return nil
}
