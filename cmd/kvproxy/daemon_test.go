package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// waitUntil polls cond (a check of the real process's files or state) until it
// holds or timeout passes.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running process (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// TestNutcrackerFlagsAndSignals runs the kvproxy binary as Debian's init script runs
// nutcracker (-d -o LOG -p PID -v N -c FILE -s PORT -a ADDR) and drives it with
// nutcracker's signals: SIGHUP reopens the moved log file (and reloads), SIGTTIN and
// SIGTTOU move the log level, SIGTERM stops it and removes the pid file.
func TestNutcrackerFlagsAndSignals(t *testing.T) {
	bin := testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/kvproxy", t.TempDir())
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := filepath.Join(dir, "nutcracker.yml")
	os.WriteFile(conf, []byte("alpha:\n  listen: "+listen+"\n  redis: true\n  servers:\n    - "+r.Addr()+":1 one\n"), 0o644)
	logPath, pidPath := filepath.Join(dir, "nutcracker.log"), filepath.Join(dir, "nutcracker.pid")
	statsPort := testenv.FreePort(t)
	cmd := exec.Command(bin, "-d", "-o", logPath, "-p", pidPath, "-v", "6", "-c", conf,
		"-s", strconv.Itoa(statsPort), "-a", "127.0.0.1", "-i", "10000", "-m", "16384")
	cmd.Args[0] = "bin/nutcracker" // as an init script or twemproxy's test harness names it
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kvproxy -d: %v: %s", err, out)
	}
	var pid int
	waitUntil(t, "the pid file", 20*time.Second, func() bool {
		b, err := os.ReadFile(pidPath)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == cmd.Process.Pid {
		t.Fatal("-d did not detach: the pid file holds the launched process")
	}
	// As nutcracker's fork: the daemon's command line is the one it was started with,
	// argv[0] included, so pgrep -f '^bin/nutcracker -d ...' finds it.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || strings.Split(string(b), "\x00")[0] != cmd.Args[0] {
		t.Errorf("daemon's argv[0] %q (%v), want %q", strings.Split(string(b), "\x00")[0], err, cmd.Args[0])
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("daemon's session %d (%v), want its own (%d)", sid, err, pid)
	}
	testenv.WaitTCP(t, listen, 20*time.Second)
	testenv.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", statsPort), 20*time.Second)
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "PING\r\n")
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", line, err)
	}
	logHas := func(path, s string) func() bool {
		return func() bool { b, _ := os.ReadFile(path); return strings.Contains(string(b), s) }
	}
	waitUntil(t, "the start in the log", 10*time.Second, logHas(logPath, "kvproxy started"))

	// logrotate: move the file away, SIGHUP, and the daemon writes to a new one.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGHUP)
	waitUntil(t, "a new log file after SIGHUP", 10*time.Second, logHas(logPath, "log file reopened"))
	waitUntil(t, "the reload after SIGHUP", 10*time.Second, logHas(logPath, "configuration reloaded"))

	syscall.Kill(pid, syscall.SIGTTIN)
	waitUntil(t, "SIGTTIN", 10*time.Second, logHas(logPath, "signal SIGTTIN received, up log level to 7"))
	syscall.Kill(pid, syscall.SIGTTOU) // one at a time: signals of a kind do not queue
	waitUntil(t, "SIGTTOU", 10*time.Second, logHas(logPath, "signal SIGTTOU received, down log level to 6"))
	syscall.Kill(pid, syscall.SIGTTOU)
	waitUntil(t, "SIGTTOU", 10*time.Second, logHas(logPath, "down log level to 5"))

	// A SIGSEGV sent by kill is logged by name (nutcracker's log names it too).
	syscall.Kill(pid, syscall.SIGSEGV)
	waitUntil(t, "SIGSEGV", 10*time.Second, logHas(logPath, "signal SIGSEGV received"))

	syscall.Kill(pid, syscall.SIGTERM)
	waitUntil(t, "the daemon to exit on SIGTERM", 20*time.Second, func() bool { return !alive(pid) })
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if !logHas(logPath, "kvproxy stopped")() {
		t.Error("no stop line in the log")
	}
}
