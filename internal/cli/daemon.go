package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// daemonEnv marks the detached child of Daemonize.
const daemonEnv = "POOLSUITE_DAEMONIZED"

// Daemonized reports whether this process is the detached child Daemonize started.
func Daemonized() bool { return os.Getenv(daemonEnv) == "1" }

// Daemonize starts this program again, with the same arguments and environment, as a
// detached process in a session of its own (setsid), standard input and output on
// /dev/null and standard error on stderrPath ("" for /dev/null), and returns its
// process id; the caller then exits. Go cannot fork a running process, so the child
// is a new process: it sees Daemonized() true and goes on in the foreground of its
// own session. The working directory is kept.
func Daemonize(stderrPath string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("daemonize: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("daemonize: %w", err)
	}
	defer devnull.Close()
	errOut := devnull
	if stderrPath != "" {
		f, err := os.OpenFile(stderrPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return 0, fmt.Errorf("daemonize: %w", err)
		}
		defer f.Close()
		errOut = f
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	// The detached copy keeps the command line it was started with (argv[0] too), as
	// nutcracker's fork does, so ps, pgrep -f and pkill -f patterns still find it.
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("daemonize: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// ErrPidfileInUse reports a pidfile naming a process that is still running.
var ErrPidfileInUse = errors.New("pidfile names a running process")

// WritePidfile writes this process's id to path, refusing when the file names a
// process that is still alive (another instance).
func WritePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() {
			if running(pid) {
				return fmt.Errorf("%s: %w (pid %d)", path, ErrPidfileInUse, pid)
			}
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pidfile: %w", err)
	}
	return nil
}

// running reports whether pid is a live process. A zombie (a killed instance its
// parent has not reaped yet, as right after pkill -9) counts as gone.
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// TakeOverPidfile writes this process's id to path in place of oldPid's, the process it
// takes over from: it refuses only when the file names another running process.
func TakeOverPidfile(path string, oldPid int) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() && pid != oldPid {
			if running(pid) {
				return fmt.Errorf("%s: %w (pid %d)", path, ErrPidfileInUse, pid)
			}
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pidfile: %w", err)
	}
	return nil
}

// RemovePidfile removes path if it still holds this process's id.
func RemovePidfile(path string) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
