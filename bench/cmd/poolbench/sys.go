package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// errProcStat is returned for a /proc/PID/stat line that cannot be read.
var errProcStat = errors.New("poolbench: unexpected /proc stat line")

// parseCPUTime returns utime+stime of a /proc/PID/stat line.
func parseCPUTime(stat []byte) (time.Duration, error) {
	// pid (comm) state ppid ... utime stime: fields 14 and 15; comm may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errProcStat
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, errProcStat
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errProcStat
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuTime returns the CPU time (user plus system, all threads) pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPUTime(b)
}

// parseRSS returns VmRSS in bytes from a /proc/PID/status file.
func parseRSS(status []byte) (int64, bool) {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err == nil
			}
		}
	}
	return 0, false
}

// rssBytes returns the resident set size of pid.
func rssBytes(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	return parseRSS(b)
}

// parseLoadAvg reads the three load averages of /proc/loadavg.
func parseLoadAvg(b []byte) ([3]float64, bool) {
	var la [3]float64
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return la, false
	}
	for i := range la {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return la, false
		}
		la[i] = v
	}
	return la, true
}

// loadAvg1m returns the machine's 1-minute load average now.
func loadAvg1m() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	la, ok := parseLoadAvg(b)
	return la[0], ok
}

// machineInfo describes this machine now.
func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg, _ = parseLoadAvg(b)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

// toolVersion returns the first line a program prints for args (its version).
func toolVersion(path string, args ...string) string {
	out, _ := exec.Command(path, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// raiseNoFile raises this process's open-file limit to its hard limit, for thousands of
// client connections (the programs started from here inherit it).
func raiseNoFile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
