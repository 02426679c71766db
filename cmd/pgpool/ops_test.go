package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/internal/pgpool"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/internal/version"
)

// envWithout is this process's environment without the variables named.
func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

// TestPgBouncerCommandLine: PgBouncer's options are accepted with their meaning:
// -h prints the usage, -V the version, -R with no pgpool running fails with a clear
// error (not as an unknown flag), an unknown option fails with status 1, and the suite
// has one version.
func TestPgBouncerCommandLine(t *testing.T) {
	if pgpool.Version != version.Version || !strings.Contains(pgpool.VersionString, version.Version) {
		t.Fatalf("pgpool reports %q / %q, the suite is %q", pgpool.Version, pgpool.VersionString, version.Version)
	}
	var out, errb bytes.Buffer
	if code := execute(context.Background(), []string{"-h"}, &out, &errb); code != 0 {
		t.Fatalf("-h: exit %d: %s", code, errb.String())
	}
	for _, flag := range []string{"-d, --daemon", "-R, --reboot", "-q, --quiet", "-v, --verbose", "-u, --user", "-V, --version", "-h, --help"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("-h lacks %q:\n%s", flag, out.String())
		}
	}
	ini := newFixture(t).writeConfig(t, "")
	out.Reset()
	errb.Reset()
	code := execute(context.Background(), []string{"-R", ini}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "online restart (-R) failed") || strings.Contains(errb.String(), "unknown") {
		t.Fatalf("-R: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"--no-such-flag", ini}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unknown flag") {
		t.Fatalf("unknown flag: exit %d, stderr %q", code, errb.String())
	}
}

// TestDaemon: -d without a pidfile is refused as PgBouncer refuses it; with one, the
// launched process exits 0, and the detached pgpool, in a session of its own, writes
// its pid to the pidfile, serves, and removes the pidfile when SIGINT stops it.
func TestDaemon(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	pidPath := filepath.Join(f.dir, "pgpool.pid")
	noPid := filepath.Join(f.dir, "nopid.ini")
	b, _ := os.ReadFile(ini)
	os.WriteFile(noPid, bytes.ReplaceAll(b, []byte("pidfile = "+pidPath), nil), 0o644)
	out, err := exec.Command(pgpoolBinary(t), "-d", noPid).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "daemon needs pidfile configured") {
		t.Fatalf("-d without pidfile: exit %d: %s", code, out)
	}

	cmd := exec.Command(pgpoolBinary(t), "-d", "-q", ini)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgpool -d: %v: %s", err, out)
	}
	var pid int
	eventually(t, 20*time.Second, "the pidfile", func() bool {
		b, err := os.ReadFile(pidPath)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	t.Cleanup(func() {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == cmd.Process.Pid {
		t.Fatal("-d did not detach: the pidfile holds the launched process")
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("daemon's session %d (%v), want its own (%d)", sid, err, pid)
	}
	testenv.WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", f.port), 20*time.Second)
	c := testenv.Connect(t, f.connString())
	var n int
	if err := c.QueryRow(ctxT(t, 20*time.Second), "select 6 * 7").Scan(&n); err != nil || n != 42 {
		t.Fatalf("through the daemon: %d, %v", n, err)
	}
	c.Close(context.Background())
	syscall.Kill(pid, syscall.SIGINT)
	eventually(t, 30*time.Second, "the daemon to exit on SIGINT", func() bool { return !processAlive(pid) })
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
	if !strings.Contains(f.logText(), "pgpool stopped") {
		t.Errorf("no stop line in the logfile:\n%s", f.logText())
	}
}

// exitCode is the exit status of a finished command's error (0 for nil).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// processAlive reports whether pid is a running process (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fs := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fs) > 0 && fs[0] != "Z"
}

// TestSIGHUPReopensLogfile: after logrotate's move, SIGHUP makes pgpool write to a
// new file under the logfile's name, and -q keeps standard error silent meanwhile.
func TestSIGHUPReopensLogfile(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	p := f.startPgpool(t, "-q", ini)
	logPath := filepath.Join(f.dir, "pgpool.log")
	eventually(t, 10*time.Second, "the start line", func() bool { return strings.Contains(f.logText(), "pgpool started") })
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "a new logfile after SIGHUP", func() bool {
		return strings.Contains(f.logText(), "logfile reopened")
	})
	old, _ := os.ReadFile(logPath + ".1")
	if !strings.Contains(string(old), "pgpool started") || strings.Contains(string(old), "logfile reopened") {
		t.Fatalf("moved logfile:\n%s", old)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if p.output.Len() != 0 {
		t.Fatalf("-q: standard error got:\n%s", p.output.String())
	}
	if !strings.Contains(f.logText(), "pgpool stopped") {
		t.Fatalf("new logfile lacks the stop line:\n%s", f.logText())
	}
}

// TestLogsToStderrAndLogfile: without -q, as PgBouncer, lines go to standard error
// as well as the logfile; -v given twice turns debug lines on.
func TestLogsToStderrAndLogfile(t *testing.T) {
	f := newFixture(t)
	p := f.startPgpool(t, "-v", "--verbose", f.writeConfig(t, ""))
	// A cancel request for a client with nothing running is logged at debug level.
	c := testenv.Connect(t, f.connString())
	if err := c.PgConn().CancelRequest(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a debug line", func() bool { return strings.Contains(f.logText(), "] DEBUG ") })
	p.cmd.Process.Signal(syscall.SIGINT)
	p.wait(t, 30*time.Second)
	if !strings.Contains(p.output.String(), "pgpool started") || !strings.Contains(f.logText(), "pgpool started") {
		t.Fatalf("stderr:\n%s\nlogfile:\n%s", p.output.String(), f.logText())
	}
}

// TestSIGUSR1PausesUntilSIGUSR2: after SIGUSR1 a new transaction waits (the admin
// console shows the client waiting) and is served only after SIGUSR2.
func TestSIGUSR1PausesUntilSIGUSR2(t *testing.T) {
	f := newFixture(t)
	p := f.startPgpool(t, f.writeConfig(t, "pool_size=2"))
	ctx := ctxT(t, 60*time.Second)
	c := testenv.Connect(t, f.connString())
	var n int
	if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	acfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/pgbouncer?sslmode=disable", f.user, f.password, f.port))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	adm, err := pgx.ConnectConfig(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())
	waiting := func() int {
		rows, err := adm.Query(ctx, "SHOW POOLS")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		total := 0
		for rows.Next() {
			vals, _ := rows.Values()
			for i, fd := range rows.FieldDescriptions() {
				if fd.Name == "cl_waiting" {
					v, _ := strconv.Atoi(fmt.Sprint(vals[i]))
					total += v
				}
			}
		}
		return total
	}

	p.cmd.Process.Signal(syscall.SIGUSR1)
	eventually(t, 10*time.Second, "the pause", func() bool { return strings.Contains(f.logText(), "got SIGUSR1, pausing all activity") })
	done := make(chan error, 1)
	go func() {
		var v int
		err := c.QueryRow(ctx, "select 42").Scan(&v)
		if err == nil && v != 42 {
			err = fmt.Errorf("got %d", v)
		}
		done <- err
	}()
	eventually(t, 10*time.Second, "the client to wait in the pool", func() bool { return waiting() == 1 })
	select {
	case err := <-done:
		t.Fatalf("transaction served while paused: %v", err)
	default:
	}
	p.cmd.Process.Signal(syscall.SIGUSR2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGUSR2: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("transaction still waiting 20s after SIGUSR2")
	}
	// (pgpool resumes, then logs it: the line may follow the served transaction.)
	eventually(t, 10*time.Second, "the resume logged", func() bool { return strings.Contains(f.logText(), "got SIGUSR2, continuing from PAUSE") })
}

// TestSIGTERMFastExit: SIGTERM is PgBouncer 1.18's fast exit: an open transaction
// is cut at once, the status is 1, and the pidfile is removed.
func TestSIGTERMFastExit(t *testing.T) {
	f := newFixture(t)
	p := f.startPgpool(t, "--shutdown-timeout", "10m", f.writeConfig(t, ""))
	ctx := ctxT(t, 60*time.Second)
	c := testenv.Connect(t, f.connString())
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if _, err := tx.Exec(ctx, "select 2"); err == nil {
		t.Fatal("transaction still open after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "pgpool.pid")); !os.IsNotExist(err) {
		t.Fatalf("pidfile left behind: %v", err)
	}
	if !strings.Contains(f.logText(), "got SIGTERM, fast exit") {
		t.Fatalf("log:\n%s", f.logText())
	}
}

// testOSUser is the system user the privilege tests switch to.
const testOSUser = "pgpooltest"

// ensureTestUser creates testOSUser (a system user without a home) when missing.
func ensureTestUser(t *testing.T) *user.User {
	t.Helper()
	if u, err := user.Lookup(testOSUser); err == nil {
		return u
	}
	useradd := testenv.LookPath(t, "useradd")
	if out, err := exec.Command(useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", testOSUser).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	u, err := user.Lookup(testOSUser)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// procIDs returns the Uid: or Gid: line's ids (real, effective, saved, fs) of pid.
func procIDs(t *testing.T, pid int, key string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no %s line in /proc/%d/status", key, pid)
	return nil
}

// TestRootSwitchesUser: run as root, pgpool refuses to start without a user, as
// PgBouncer ("should not run as root"); with user = in the ini, or -u, it binds its
// sockets and then runs with that user's ids (every id of /proc/PID/status) and serves.
func TestRootSwitchesUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the user switch is tested by starting pgpool as root (CI runs as root)")
	}
	u := ensureTestUser(t)
	f := newFixture(t)
	// The switched process must still reach its directory (to remove its files at exit).
	os.Chmod(f.dir, 0o777)
	ini := f.writeConfig(t, "")
	env := envWithout(AllowRootEnv)
	cmd := exec.Command(pgpoolBinary(t), ini)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "should not run as root") {
		t.Fatalf("as root without user: exit %d: %s", code, out)
	}

	for _, tc := range []struct {
		name    string
		setting string
		args    []string
	}{
		{"ini", "user = " + testOSUser, nil},
		{"-u", "", []string{"-u", testOSUser}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(f.dir, "pgpool.log")) // the previous run's
			p := f.startPgpoolEnv(t, env, append(tc.args, f.writeConfig(t, "", tc.setting))...)
			pid := p.cmd.Process.Pid
			// The sockets are bound (so startPgpool saw the port) before the switch.
			eventually(t, 10*time.Second, "the user switch", func() bool { return strings.Contains(f.logText(), "switched user") })
			for _, id := range procIDs(t, pid, "Uid") {
				if id != u.Uid {
					t.Fatalf("Uid line %v, want %s everywhere", procIDs(t, pid, "Uid"), u.Uid)
				}
			}
			for _, id := range procIDs(t, pid, "Gid") {
				if id != u.Gid {
					t.Fatalf("Gid line %v, want %s everywhere", procIDs(t, pid, "Gid"), u.Gid)
				}
			}
			c := testenv.Connect(t, f.connString())
			var n int
			if err := c.QueryRow(ctxT(t, 20*time.Second), "select 6 * 7").Scan(&n); err != nil || n != 42 {
				t.Fatalf("after the switch: %d, %v", n, err)
			}
			c.Close(context.Background())
			p.cmd.Process.Signal(syscall.SIGINT)
			if code := p.wait(t, 30*time.Second); code != 0 {
				t.Fatalf("exit status %d", code)
			}
		})
	}
}

// notifySocket is a unixgram socket standing for systemd's notify socket.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "ntf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{path: path, conn: conn}
}

// next returns the next message other than WATCHDOG=1, counting those in *pings.
func (n *notifySocket) next(t *testing.T, pings *int) string {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		n.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the notify socket: %v", err)
		}
		if msg := string(buf[:k]); msg != "WATCHDOG=1" {
			return msg
		} else {
			*pings++
		}
	}
}

// TestSdNotify: with NOTIFY_SOCKET set, pgpool sends READY=1 once it serves,
// RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP reload, WATCHDOG=1
// every half WATCHDOG_USEC, and STOPPING=1 at shutdown, in that order.
func TestSdNotify(t *testing.T) {
	f := newFixture(t)
	ns := newNotifySocket(t)
	env := append(os.Environ(), "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=100000")
	p := f.startPgpoolEnv(t, env, f.writeConfig(t, ""))
	pings := 0
	if msg := ns.next(t, &pings); msg != "READY=1" {
		t.Fatalf("first message %q, want READY=1", msg)
	}
	if pings != 0 {
		t.Fatal("watchdog pings before READY=1")
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	msg := ns.next(t, &pings)
	lines := strings.Split(msg, "\n")
	if lines[0] != "RELOADING=1" || len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("on SIGHUP: %q", msg)
	}
	if usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec <= 0 {
		t.Fatalf("MONOTONIC_USEC in %q", msg)
	}
	if msg := ns.next(t, &pings); msg != "READY=1" {
		t.Fatalf("after the reload %q, want READY=1", msg)
	}
	eventually(t, 10*time.Second, "the reload in the log", func() bool { return strings.Contains(f.logText(), "got SIGHUP") })
	buf := make([]byte, 64)
	for pings < 2 { // every 50ms: two come long before the read deadline
		ns.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := ns.conn.Read(buf)
		if err != nil || string(buf[:k]) != "WATCHDOG=1" {
			t.Fatalf("waiting for watchdog pings: %q %v", buf[:k], err)
		}
		pings++
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if msg := ns.next(t, &pings); msg != "STOPPING=1" {
		t.Fatalf("at shutdown %q, want STOPPING=1", msg)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
