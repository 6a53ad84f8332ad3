package testrig

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// Scope owns the lifetime of rig objects: *testing.T and *testing.B satisfy it,
// and MainScope provides it for objects shared by a whole test binary (TestMain).
type Scope interface {
	// Cleanup registers f to run when the scope ends (last registered runs first).
	Cleanup(f func())
	// TempDir returns a directory that is removed when the scope ends.
	TempDir() string
	Logf(format string, args ...any)
	// Failed reports whether the scope has failed (process logs are dumped then).
	Failed() bool
}

var (
	_ Scope = (*testing.T)(nil)
	_ Scope = (*testing.B)(nil)
	_ Scope = (*MainScope)(nil)
)

// MainScope is a Scope for a TestMain: objects created in it live until Close.
// Use it through Main.
type MainScope struct {
	mu       sync.Mutex
	cleanups []func()
	dir      string
	failed   bool
}

// Cleanup registers f to run at Close.
func (s *MainScope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir returns one directory (per scope) removed at Close.
func (s *MainScope) TempDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "kproxy-testrig-")
		if err != nil {
			// No sensible way to continue; mirror testing.T.TempDir, which fails the test.
			fmt.Fprintf(os.Stderr, "testrig: MainScope.TempDir: %v\n", err)
			return os.TempDir()
		}
		s.dir = dir
		s.cleanups = append(s.cleanups, func() { os.RemoveAll(dir) })
	}
	return s.dir
}

// Logf writes to stderr.
func (s *MainScope) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testrig: "+format+"\n", args...)
}

// Failed reports whether MarkFailed was called.
func (s *MainScope) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// MarkFailed makes Failed report true, so Close dumps process logs.
func (s *MainScope) MarkFailed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
}

// Close runs the cleanups, last registered first. It is idempotent.
func (s *MainScope) Close() {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			return
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		f()
	}
}

// Main runs a test binary whose tests share rig objects. If the kernel
// prerequisites hold, setup builds the shared objects in a MainScope (e.g. a
// Topology and a ControlPlane stored in package variables); otherwise setup is not
// called and the tests are expected to skip (RequireRoot). A setup error exits
// with status 1 (after cleanup). SIGINT and SIGTERM run the cleanups before
// exiting, so no namespace or process is left behind. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testrig.Main(m, setup)) }
func Main(m *testing.M, setup func(s *MainScope) error) int {
	s := &MainScope{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "testrig: %v: cleaning up\n", sig)
			s.Close()
			os.Exit(2)
		case <-done:
		}
	}()
	defer signal.Stop(sigs)
	defer s.Close()

	if err := CheckKernel(); err == nil {
		if err := setup(s); err != nil {
			fmt.Fprintf(os.Stderr, "testrig: shared setup: %v\n", err)
			s.MarkFailed()
			return 1
		}
	} else {
		fmt.Fprintf(os.Stderr, "testrig: shared setup skipped: %v\n", err)
	}
	code := m.Run()
	if code != 0 {
		s.MarkFailed()
	}
	return code
}
