package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/procfs"
)

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU reads the busy and the total CPU time of every CPU, in seconds.
func machineCPU() (busy, total float64) {
	st, err := procFS().Stat()
	if err != nil {
		return 0, 0
	}
	c := st.CPUTotal // guest time is already counted in user time
	busy = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return busy, busy + c.Idle + c.Iowait
}

// procFS is /proc (an empty one, whose reads fail, where there is none).
func procFS() procfs.FS {
	fs, _ := procfs.NewDefaultFS()
	return fs
}

// cpuMeter measures CPU use between its creation and a reading.
type cpuMeter struct {
	began       time.Time
	self        time.Duration
	busy, total float64
}

func newCPUMeter() cpuMeter {
	b, t := machineCPU()
	return cpuMeter{began: time.Now(), self: selfCPU(), busy: b, total: t}
}

// read returns the cores this process used on average, and the share of the machine's
// CPU time that was busy (every process), since the meter was made.
func (m cpuMeter) read() (selfCores, machineBusy float64) {
	wall := time.Since(m.began)
	b, t := machineCPU()
	if wall > 0 {
		selfCores = float64(selfCPU()-m.self) / float64(wall)
	}
	if t > m.total {
		machineBusy = (b - m.busy) / (t - m.total)
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

// summary names the machine's CPUs and its load before the run, for comparing runs.
func (m Machine) summary() string {
	return fmt.Sprintf("%d CPUs, load average %s", m.CPUs, orDash(m.LoadBefore))
}

func machine(ctx context.Context, adminURL string) Machine {
	m := Machine{
		Date: time.Now().UTC().Truncate(time.Second), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAverage(),
	}
	if cpus, err := procFS().CPUInfo(); err == nil && len(cpus) > 0 {
		m.CPUModel = cpus[0].ModelName
	}
	if mem, err := procFS().Meminfo(); err == nil && mem.MemTotalBytes != nil {
		m.MemoryMB = int64(*mem.MemTotalBytes >> 20)
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

func loadAverage() string {
	l, err := procFS().LoadAvg()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}
