// Package proctest runs the project's commands as real child processes, for tests and
// for the benchmark harness: it builds them once per program, starts them with an
// environment of the caller's choosing, and kills, signals, restarts or measures them on
// demand. In a test (Start), each process logs to a file among the test's temporary
// files, the tail of which is printed when the test fails; outside one (Run), the caller
// names the log and stops the process.
package proctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

var (
	buildMu sync.Mutex
	binDir  string
	built   = map[string]string{} // package → binary path
)

// Build builds the main packages pkgs (import paths) that this program has not built yet,
// in one go build, and returns the paths of their programs in the order of pkgs.
func Build(pkgs ...string) ([]string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "xsw-proctest-bin-")
		if err != nil {
			return nil, err
		}
		binDir = dir
	}
	var todo []string
	for _, pkg := range pkgs {
		if _, ok := built[pkg]; !ok {
			todo = append(todo, pkg)
		}
	}
	if len(todo) > 0 {
		args := append([]string{"build", "-o", binDir + string(filepath.Separator)}, todo...)
		if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", strings.Join(todo, " "), err, b)
		}
		for _, pkg := range todo {
			name := path.Base(pkg)
			if len(name) > 1 && name[0] == 'v' && name[1] >= '0' && name[1] <= '9' {
				name = path.Base(path.Dir(pkg)) // a module's major version suffix
			}
			built[pkg] = filepath.Join(binDir, name)
		}
	}
	out := make([]string, len(pkgs))
	for i, pkg := range pkgs {
		out[i] = built[pkg]
	}
	return out, nil
}

// RemoveBinaries removes the programs Build built: a program that builds them calls it
// before it ends. The next Build builds them again.
func RemoveBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	binDir, built = "", map[string]string{}
}

// Binary builds the main package pkg (an import path) once per test binary and returns
// the path of the program. It fails the test when the build fails.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	bins, err := Build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	return bins[0]
}

// LoopbackAddr returns a loopback address with a port that was free a moment ago.
func LoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// FreeAddr is LoopbackAddr in a test: it fails the test when no port is free.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := LoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// PollInterval is how often Poll tries its condition.
const PollInterval = 20 * time.Millisecond

// Poll calls cond every PollInterval until it reports true or an error, ctx ends or
// timeout passes; the error then says what it was waiting for.
func Poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// Command is a program to run as a child process.
type Command struct {
	// Name labels the process.
	Name string
	Bin  string
	Args []string
	// Env is the process's whole environment, with PATH added.
	Env map[string]string
	// Dir is its working directory (the caller's when empty).
	Dir string
	// Log is the file that receives its standard output and error, appended to.
	Log string
}

// Process is a program running as a child process.
type Process struct {
	Name string
	// Log is the path of the file that receives the process's standard output and error.
	Log string

	t       testing.TB // nil outside a test
	c       Command
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited; err is then set
	err     error
}

// Run starts c; the caller stops it. The kernel kills the process if this program dies.
func Run(c Command) (*Process, error) {
	p := &Process{Name: c.Name, Log: c.Log, c: c}
	return p, p.start()
}

// Start runs bin with env as its whole environment (plus PATH) and args, and kills it
// when the test ends if it is still running. name labels its log.
func Start(t testing.TB, name, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Log: filepath.Join(t.TempDir(), name+".log"), t: t}
	p.c = Command{Name: name, Bin: bin, Args: args, Env: env, Log: p.Log}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("%s log (%s):\n%s", name, p.Log, b)
		}
	})
	return p
}

func (p *Process) start() error {
	logFile, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.c.Bin, p.c.Args...)
	cmd.Dir = p.c.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range p.c.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The kernel kills the child when this program dies, so no process outlives an
	// interrupted run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.exited, p.err = cmd, make(chan struct{}), nil
	exited := p.exited
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.err = err
		close(exited)
	}()
	return nil
}

// Pid is the process id of the running process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.started }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited; it is valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Alive returns an error saying how the process exited, or nil while it runs.
func (p *Process) Alive() error {
	if p.Running() {
		return nil
	}
	return fmt.Errorf("%s exited: %v (log: %s)", p.Name, p.err, p.Log)
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the process with SIGKILL, as a crash would, and waits until it is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then kills it. It
// reports whether the process exited of its own accord.
func (p *Process) Stop(timeout time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Restart starts the program of Start again with the same environment and arguments,
// once the previous run has exited; the log continues in the same file.
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("restart %s: still running", p.Name)
	}
	if err := p.start(); err != nil {
		p.t.Fatal(err)
	}
}

// WaitLog waits up to timeout for a line of the process's log that contains substr and
// returns it. It fails at once if the process exits first.
func (p *Process) WaitLog(ctx context.Context, timeout time.Duration, substr string) (string, error) {
	var line string
	err := Poll(ctx, timeout, fmt.Sprintf("%q in the log of %s (%s)", substr, p.Name, p.Log), func() (bool, error) {
		running := p.Running() // before reading: a line written before the exit is found
		b, err := os.ReadFile(p.Log)
		if err != nil {
			return false, err
		}
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, substr) {
				line = strings.TrimSuffix(l, "\n")
				return true, nil
			}
		}
		if !running {
			return false, p.Alive()
		}
		return false, nil
	})
	return line, err
}

// PeakRSS is the process's resident set high-water mark so far (VmHWM), in bytes.
func (p *Process) PeakRSS() (int64, error) {
	if err := p.Alive(); err != nil {
		return 0, err
	}
	proc, err := procfs.NewProc(p.Pid())
	if err != nil {
		return 0, err
	}
	st, err := proc.NewStatus()
	return int64(st.VmHWM), err
}

// CPUTime is the CPU time (user and system) the process has used so far.
func (p *Process) CPUTime() (time.Duration, error) {
	proc, err := procfs.NewProc(p.Pid())
	if err != nil {
		return 0, err
	}
	st, err := proc.Stat()
	return time.Duration(st.CPUTime() * float64(time.Second)), err
}

// String names the process and its pid.
func (p *Process) String() string { return fmt.Sprintf("%s[%d]", p.Name, p.cmd.Process.Pid) }
