package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a service binary running as a child process.
type process struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited; err is then set
	err     error
	logPath string
	match   *matchWriter
}

// start runs the binary name with vars as its whole environment (plus PATH and HOME), in
// a directory of its own (so that no .env is read), logging to outDir/<label>.log. When
// readyLine is set, waitLine waits for the first log line containing it.
func (e *env) start(label, name string, vars map[string]string, readyLine string, args ...string) (*process, error) {
	logPath := filepath.Join(e.opts.outDir, label+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	dir, err := e.dataDir("cwd-" + label)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd := exec.Command(e.bins[name], args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{name: label, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	var out io.Writer = logFile
	if readyLine != "" {
		p.match = newMatchWriter(readyLine)
		out = io.MultiWriter(logFile, p.match)
	}
	cmd.Stdout, cmd.Stderr = out, out
	setDeathSignal(cmd)
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// stop sends SIGTERM and waits up to timeout for the process to exit, then kills it.
func (p *process) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, timeout)
	}
}

// alive reports an error when the process has exited.
func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.logPath)
	default:
		return nil
	}
}

// status reads a kB field (VmHWM, VmRSS) of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// peakRSS is the process's resident set high-water mark (VmHWM) so far.
func (p *process) peakRSS() (int64, error) {
	if err := p.alive(); err != nil {
		return 0, err
	}
	return procStatus(p.cmd.Process.Pid, "VmHWM")
}

// cpuTime is the CPU time (user and system) the process has used so far.
func (p *process) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields start after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", p.cmd.Process.Pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// matchWriter closes ready at the first line written that contains needle, and notes
// when.
type matchWriter struct {
	needle []byte
	mu     sync.Mutex
	buf    []byte
	ready  chan struct{}
	at     time.Time
	line   string
}

func newMatchWriter(needle string) *matchWriter {
	return &matchWriter{needle: []byte(needle), ready: make(chan struct{})}
}

func (m *matchWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf == nil && !m.at.IsZero() {
		return len(p), nil
	}
	m.buf = append(m.buf, p...)
	for {
		i := bytes.IndexByte(m.buf, '\n')
		if i < 0 {
			break
		}
		line := m.buf[:i]
		if bytes.Contains(line, m.needle) {
			m.at, m.line, m.buf = time.Now(), string(line), nil
			close(m.ready)
			return len(p), nil
		}
		m.buf = m.buf[i+1:]
	}
	return len(p), nil
}

// waitLine waits for the ready line of p and returns when it was written and the line.
func (p *process) waitLine(ctx context.Context, timeout time.Duration) (time.Time, string, error) {
	select {
	case <-p.match.ready:
		p.match.mu.Lock()
		defer p.match.mu.Unlock()
		return p.match.at, p.match.line, nil
	case <-p.exited:
		return time.Time{}, "", p.alive()
	case <-ctx.Done():
		return time.Time{}, "", ctx.Err()
	case <-time.After(timeout):
		return time.Time{}, "", fmt.Errorf("%s: no %q in its log after %v (log: %s)", p.name, p.match.needle, timeout, p.logPath)
	}
}
