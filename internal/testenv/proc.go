package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// owner is the user a server runs as and owns its files; nil means the current user.
type owner struct {
	uid, gid int
}

// unprivileged returns the "postgres" user when running as root (PostgreSQL and PgBouncer
// refuse to run as root), or nil when the current user can run them.
func unprivileged() (*owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testenv: running as root and no unprivileged user: %w (the postgresql-15 package creates the user postgres)", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("testenv: user postgres: bad uid %q", u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("testenv: user postgres: bad gid %q", u.Gid)
	}
	return &owner{uid: uid, gid: gid}, nil
}

// chown gives path to o; a nil owner leaves it alone.
func (o *owner) chown(path string) error {
	if o == nil {
		return nil
	}
	return os.Chown(path, o.uid, o.gid)
}

// credential returns the SysProcAttr credential for o, nil for the current user.
func (o *owner) credential() *syscall.Credential {
	if o == nil {
		return nil
	}
	return &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
}

// serverDir creates a fresh directory for a server's files under os.TempDir() (falling
// back to /tmp if another user cannot traverse it), mode 0755 and owned by o. Paths are
// kept short because unix socket paths must fit in about 100 bytes.
func serverDir(prefix string, o *owner) (string, error) {
	base := os.TempDir()
	if o != nil && !traversable(base) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("testenv: %w", err)
	}
	if err := o.chown(dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("testenv: %w", err)
	}
	return dir, nil
}

// traversable reports whether every directory from / down to dir is searchable by others.
func traversable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// writeFile writes data to path with perm and gives it to o.
func writeFile(path string, data []byte, perm os.FileMode, o *owner) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if err := o.chown(path); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

// Process is the operating-system process of a started server. Its methods are safe for
// concurrent use. Kill, Freeze and Thaw act on the process and all its descendants, so
// they reach PostgreSQL's backends too.
type Process struct {
	name    string // for messages, e.g. "redis-server"
	path    string
	args    []string
	env     []string // appended to os.Environ()
	dir     string   // working directory
	logFile string   // receives stdout and stderr
	owner   *owner

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has been waited for
	waitErr error
}

// start starts the process. It fails if the process is already running.
func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("testenv: %s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer logf.Close() // the child has its own copy
	if err := p.owner.chown(p.logFile); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig:  syscall.SIGKILL, // die with the test binary
		Setpgid:    true,            // own process group: ^C and ^Z on a terminal do not reach it
		Credential: p.owner.credential(),
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// current returns the current command and its done channel (nil if never started).
func (p *Process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// Running reports whether the process has been started and has not exited.
func (p *Process) Running() bool {
	cmd, done := p.current()
	return cmd != nil && !isClosed(done)
}

// exitErr returns how the last process exited (nil while it is running).
func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr == nil && p.cmd != nil && isClosed(p.done) {
		return errors.New("exit status 0")
	}
	return p.waitErr
}

// PID returns the process id of the server's main process (PostgreSQL's postmaster),
// 0 if it was never started.
func (p *Process) PID() int {
	cmd, _ := p.current()
	if cmd == nil {
		return 0
	}
	return cmd.Process.Pid
}

// Signal sends sig to the server's main process if it is running.
func (p *Process) Signal(sig syscall.Signal) {
	cmd, done := p.current()
	if cmd == nil || isClosed(done) {
		return
	}
	_ = cmd.Process.Signal(sig)
}

// Freeze stops the server's processes with SIGSTOP (the main process first, so it starts
// no new ones): the kernel still accepts TCP connections on its listening socket, but
// nothing is ever answered.
func (p *Process) Freeze() {
	cmd, done := p.current()
	if cmd == nil || isClosed(done) {
		return
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	stopped := append([]int{pid}, descendants(pid)...)
	for _, c := range stopped[1:] {
		_ = syscall.Kill(c, syscall.SIGSTOP)
	}
	// Signals are delivered asynchronously: wait until every thread has stopped, so
	// that the server answers nothing after Freeze returns.
	_ = poll(StopTimeout, nil, func() error {
		for _, c := range stopped {
			if !allThreadsStopped(c) {
				return fmt.Errorf("pid %d not stopped yet", c)
			}
		}
		return nil
	})
}

// allThreadsStopped reports whether every thread of pid is stopped (or pid is gone).
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return true // gone
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			continue // thread gone
		}
		state, ok := statState(b)
		if ok && state != "T" && state != "t" && state != "Z" && state != "X" {
			return false
		}
	}
	return true
}

// statState returns the state field of a /proc stat line.
func statState(b []byte) (string, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 1 {
		return "", false
	}
	return f[0], true
}

// Thaw resumes a frozen server with SIGCONT.
func (p *Process) Thaw() {
	cmd, done := p.current()
	if cmd == nil || isClosed(done) {
		return
	}
	p.thaw(cmd.Process.Pid)
}

func (p *Process) thaw(pid int) {
	for _, c := range descendants(pid) {
		_ = syscall.Kill(c, syscall.SIGCONT)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// Kill kills the server's processes with SIGKILL, as in a crash, and waits until they
// have exited. The server's files are kept, so the server can be restarted.
func (p *Process) Kill() {
	cmd, done := p.current()
	if cmd == nil {
		return
	}
	var children []int
	if !isClosed(done) {
		pid := cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGSTOP) // no new children from here on
		children = descendants(pid)
		_ = cmd.Process.Kill()
		for _, c := range children {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	}
	<-done
	// Children (PostgreSQL's backends) are reparented once the main process is gone;
	// wait until they are dead too, so that a restart finds their resources released.
	_ = poll(StopTimeout, nil, func() error {
		for _, c := range children {
			if alive(c) {
				return fmt.Errorf("pid %d still alive", c)
			}
		}
		return nil
	})
}

// stop sends sig (and thaws the server, in case it is frozen), waits up to StopTimeout
// for it to exit, then kills it. It returns once the process has been waited for.
func (p *Process) stop(sig syscall.Signal) {
	cmd, done := p.current()
	if cmd == nil {
		return
	}
	if !isClosed(done) {
		_ = cmd.Process.Signal(sig)
		p.thaw(cmd.Process.Pid)
	}
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	p.Kill()
}

// descendants returns the pids of all processes descending from pid, read from /proc.
// PostgreSQL's backends call setsid(), so they are not in the postmaster's process group.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPID(c); ok {
			children[pp] = append(children[pp], c)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procStat returns the state and parent pid fields of /proc/<pid>/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return "", 0, false
	}
	return f[0], ppid, true
}

func parentPID(pid int) (int, bool) {
	_, ppid, ok := procStat(pid)
	return ppid, ok
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

// LogFile returns the file that receives the server's output.
func (p *Process) LogFile() string { return p.logFile }

// LogTail returns the last few kilobytes of the server's output, for failure messages.
func (p *Process) LogTail() string { return fileTail(p.logFile, 4096) }

// fileTail returns up to the last n bytes of path, or a note saying why it cannot.
func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(fi.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// startError describes a failed start with the server's log tail.
func startError(p *Process, err error) error {
	return fmt.Errorf("testenv: %s did not start: %w\n--- %s (tail) ---\n%s", p.name, err, p.logFile, p.LogTail())
}

// portInUse reports whether a failed start looks like a lost race for the port chosen by
// freePort, in which case the caller retries with another port.
func portInUse(p *Process, err error) bool {
	if !errors.Is(err, errExited) {
		return false
	}
	return strings.Contains(strings.ToLower(p.LogTail()), "address already in use")
}

// startWithRetry runs attempt up to three times while it fails because another process
// took the port in the meantime.
func startWithRetry(attempt func() (retry bool, err error)) error {
	var err error
	for range 3 {
		var retry bool
		retry, err = attempt()
		if err == nil || !retry {
			return err
		}
	}
	return err
}
