package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat CPU times (100
// on every architecture Go supports there).
const clockTicks = 100

// CPUSplit is where the machine's CPU went during a measurement: cores used
// per process group, and the cores the machine has.
type CPUSplit struct {
	Cores   map[string]float64
	Total   float64 // all processes of the machine, cores
	Machine int     // cores of the machine
}

// String lists the groups, largest first: "dynalite 0.61, postgres 0.55, …".
func (c CPUSplit) String() string {
	names := make([]string, 0, len(c.Cores))
	for n := range c.Cores {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(c.Cores[b], c.Cores[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, len(names)+1)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, c.Cores[n]))
	}
	return fmt.Sprintf("%s (cores; all processes %.2f of %d)", strings.Join(parts, ", "), c.Total, c.Machine)
}

// cpuMeter samples the CPU time of process groups (by a pid, or by a word
// of the command line) between two points in time.
type cpuMeter struct {
	groups func(pid int, cmdline string) string // "" = not in a group
	start  time.Time
	busy0  float64
	t0     map[int]procCPU
}

type procCPU struct {
	group string
	ticks int64
}

// newCPUMeter groups the processes of the bench: ferry's sync (by pid), the
// emulators, PostgreSQL (every backend, the workload's included) and the
// bench itself (which generates the workload and probes).
func newCPUMeter(syncPID int) *cpuMeter {
	self := os.Getpid()
	return &cpuMeter{groups: func(pid int, cmd string) string {
		switch {
		case pid == syncPID:
			return "ferry sync"
		case pid == self:
			return "workload generator + prober"
		case strings.Contains(cmd, "dynalite"):
			return "dynalite"
		case strings.Contains(cmd, "kinesalite"):
			return "kinesalite"
		case strings.Contains(cmd, "postgres"):
			return "postgres"
		}
		return ""
	}}
}

// begin takes the first sample.
func (m *cpuMeter) begin() {
	m.start, m.t0 = time.Now(), m.sample()
	m.busy0 = machineBusy()
}

// end returns the split since begin. A process that started in between
// counts from zero; one that ended in between is missed (the workload's
// connections live through the whole window).
func (m *cpuMeter) end() CPUSplit {
	t1 := m.sample()
	secs := time.Since(m.start).Seconds()
	out := CPUSplit{Cores: map[string]float64{}, Machine: runtime.NumCPU()}
	for pid, p := range t1 {
		d := p.ticks - m.t0[pid].ticks
		out.Cores[p.group] += float64(d) / clockTicks / secs
	}
	out.Total = (machineBusy() - m.busy0) / secs
	return out
}

func (m *cpuMeter) sample() map[int]procCPU {
	out := map[int]procCPU{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		g := m.groups(pid, string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		if g == "" {
			continue
		}
		if t, ok := procTicks(d + "/stat"); ok {
			out[pid] = procCPU{group: g, ticks: t}
		}
	}
	return out
}

// procTicks reads utime+stime from /proc/PID/stat (fields 14 and 15; the
// command name before them may contain spaces, so count after its ')').
func procTicks(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	return u + s, err1 == nil && err2 == nil
}

// machineBusy is the machine's non-idle CPU time in seconds (/proc/stat).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return float64(busy) / clockTicks
}
