package testrig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Process is a long-running child started by StartProcess. Its stdout and
// stderr go to LogPath.
type Process struct {
	Name    string // base name of the program
	Netns   string
	Args    []string
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
	stopMu  sync.Mutex
}

// StartProcess starts args inside network namespace ns (through "ip netns
// exec", which execs the program, so PID is the program's), in its own process
// group, with output captured under t.TempDir(). In cleanup the process is
// stopped by PID (SIGTERM, then SIGKILL), and if the test failed the tail of its
// output is logged. It fails the test on error.
func StartProcess(t testing.TB, ns string, args ...string) *Process {
	t.Helper()
	p, err := StartProcessIn(t, ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartProcessIn is StartProcess for any Scope, returning the error.
func StartProcessIn(s Scope, ns string, args ...string) (*Process, error) {
	if len(args) == 0 {
		return nil, errors.New("start process: no command")
	}
	name := filepath.Base(args[0])
	logFile, err := os.CreateTemp(s.TempDir(), name+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{
		Name:    name,
		Netns:   ns,
		Args:    args,
		LogPath: logFile.Name(),
		logFile: logFile,
		done:    make(chan struct{}),
	}
	p.cmd = Command(context.Background(), ns, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Dies with the test binary even if it is SIGKILLed. Pdeathsig fires when
		// the forking *thread* exits, so the fork happens on a thread that lives
		// as long as the process (startThread).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := startOnLongLivedThread(p.cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s in netns %s: %w", name, ns, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.logFile.Close()
		close(p.done)
	}()
	s.Cleanup(func() {
		if err := p.Stop(); err != nil {
			s.Logf("cleanup: %v", err)
		}
		if s.Failed() {
			s.Logf("last lines of %s (pid %d, netns %s, log %s):\n%s", p.Name, p.PID(), p.Netns, p.LogPath, p.Tail(40))
		}
	})
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its Wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	if err := syscall.Kill(-p.PID(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, waits up to 10 s, then SIGKILLs it,
// and waits for the exit. It is idempotent and returns nil if the process
// already exited.
func (p *Process) Stop() error {
	return p.stop(syscall.SIGTERM, stopGrace)
}

// Kill SIGKILLs the process group and waits for the exit.
func (p *Process) Kill() error {
	return p.stop(syscall.SIGKILL, stopGrace)
}

func (p *Process) stop(sig syscall.Signal, grace time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if err := p.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored %v for %s and was killed", p.Name, p.PID(), sig, grace)
	case <-time.After(grace):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID())
	}
}

// Log returns everything the process has written so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("<read %s: %v>", p.LogPath, err)
	}
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startThread serves startOnLongLivedThread. It is started once and runs on a
// locked OS thread for the life of the test binary, so Pdeathsig only fires when
// the whole process dies. This is the rig's only package-level state.
var startThread struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd *exec.Cmd
	err chan error
}

func startOnLongLivedThread(cmd *exec.Cmd) error {
	startThread.once.Do(func() {
		startThread.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range startThread.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	startThread.reqs <- startReq{cmd: cmd, err: errc}
	return <-errc
}
