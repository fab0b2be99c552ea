package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux port Go
// supports.
const clockTicks = 100

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU reads the busy and total jiffies of every CPU from /proc/stat.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// cpuMeter measures CPU use between its creation and a reading.
type cpuMeter struct {
	began      time.Time
	self       time.Duration
	busy, jiff int64
}

func newCPUMeter() cpuMeter {
	b, t := machineCPU()
	return cpuMeter{began: time.Now(), self: selfCPU(), busy: b, jiff: t}
}

// read returns the cores this process used on average, and the share of the machine's
// CPU time that was busy (every process), since the meter was made.
func (m cpuMeter) read() (selfCores, machineBusy float64) {
	wall := time.Since(m.began)
	b, t := machineCPU()
	if wall > 0 {
		selfCores = float64(selfCPU()-m.self) / float64(wall)
	}
	if t > m.jiff {
		machineBusy = float64(b-m.busy) / float64(t-m.jiff)
	}
	return selfCores, machineBusy
}

// settle lets what came before finish before the next figure is measured: Postgres
// writes its dirty pages out (CHECKPOINT; skipped with a warning without the right), and
// the machine's CPU quiets down (autovacuum after large inserts, services finishing
// their work), for at most 30 seconds. Without it a run could pay for the last one's
// leftovers, and figures moved by a third between runs.
func (e *env) settle(ctx context.Context, before string) {
	if err := e.admin(ctx, "CHECKPOINT"); err != nil {
		e.log.Warn("checkpoint before measuring", "before", before, "err", err)
	}
	const quiet, window, limit = 0.15, 500 * time.Millisecond, 30 * time.Second
	began := time.Now()
	for time.Since(began) < limit && ctx.Err() == nil {
		m := newCPUMeter()
		select {
		case <-ctx.Done():
			return
		case <-time.After(window):
		}
		if _, busy := m.read(); busy < quiet {
			e.log.Debug("machine quiet", "before", before, "after", time.Since(began).Round(time.Millisecond))
			return
		}
	}
	e.log.Warn("machine still busy; measuring anyway", "before", before, "waited", limit)
}

// Machine describes where the figures were measured.
type Machine struct {
	Date       time.Time `json:"date"`
	CPUs       int       `json:"cpus"`
	CPUModel   string    `json:"cpu_model"`
	MemoryMB   int64     `json:"memory_mb"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	Kernel     string    `json:"kernel"`
	Postgres   string    `json:"postgres"`
	LoadBefore string    `json:"load_average_before"`
	LoadAfter  string    `json:"load_average_after"`
}

func machine(ctx context.Context, adminURL string) Machine {
	m := Machine{
		Date: time.Now().UTC().Truncate(time.Second), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAverage(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if mem, err := procMemTotal(); err == nil {
		m.MemoryMB = mem >> 20
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if conn, err := pgx.Connect(ctx, adminURL); err == nil {
		_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&m.Postgres)
		conn.Close(ctx)
	}
	return m
}

func procMemTotal() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no MemTotal")
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
