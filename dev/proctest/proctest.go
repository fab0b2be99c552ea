// Package proctest runs the project's commands as real child processes in tests: it
// builds them once per test binary, starts them with an environment of the test's
// choosing, and kills, signals or restarts them on demand. Each process logs to a file
// among the test's temporary files; the tail of that log is printed when the test fails.
package proctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	binDir  string
	built   = map[string]string{} // package → binary path
)

// Binary builds the main package pkg (an import path) once per test binary and returns
// the path of the program. It fails the test when the build fails.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "xsw-proctest-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	out := filepath.Join(binDir, path.Base(pkg))
	if base := path.Base(pkg); len(base) > 1 && base[0] == 'v' && base[1] >= '0' && base[1] <= '9' {
		out = filepath.Join(binDir, path.Base(path.Dir(pkg))) // a module's major version suffix
	}
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Eventually polls cond every 50ms until it holds, failing the test after timeout with
// what it was waiting for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Process is a program running as a child process of the test.
type Process struct {
	Name string
	// Log is the path of the file that receives the process's standard output and error.
	Log string

	t      testing.TB
	bin    string
	env    map[string]string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

// Start runs bin with env as its whole environment (plus PATH) and args, and kills it
// when the test ends if it is still running. name labels its log.
func Start(t testing.TB, name, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Log: filepath.Join(t.TempDir(), name+".log"), t: t, bin: bin, env: env, args: args}
	p.start()
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

func (p *Process) start() {
	p.t.Helper()
	logFile, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The kernel kills the child when the test binary dies, so no process outlives an
	// interrupted run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	p.cmd, p.exited, p.err = cmd, make(chan struct{}), nil
	exited := p.exited
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.err = err
		close(exited)
	}()
}

// Pid is the process id of the running process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

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

// Restart starts the program again with the same environment and arguments, once the
// previous run has exited; the log continues in the same file.
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("restart %s: still running", p.Name)
	}
	p.start()
}

// String names the process and its pid.
func (p *Process) String() string { return fmt.Sprintf("%s[%d]", p.Name, p.cmd.Process.Pid) }
