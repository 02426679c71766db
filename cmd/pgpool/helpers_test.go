package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) {
	// The tests run as root in CI; pgpool refuses root without a user to switch to,
	// except with this. The tests of that rule take it out of their command's environment.
	os.Setenv(AllowRootEnv, "1")
	testenv.Main(m)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// pgpoolBinary builds cmd/pgpool once per test binary (with -race if the tests
// run with it) and returns its path.
func pgpoolBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pgpool-test-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(buildDir, "pgpool")}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "pgpool")
}

// fixture is a PostgreSQL role and database of one test, and a directory for
// pgpool's files.
type fixture struct {
	pg       *testenv.Postgres
	user     string
	password string
	db       string
	dir      string
	port     int // pgpool's listen_port
}

var fixtureSeq struct {
	sync.Mutex
	n int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	fixtureSeq.Lock()
	fixtureSeq.n++
	n := fixtureSeq.n
	fixtureSeq.Unlock()
	f := &fixture{
		pg:       pg,
		user:     fmt.Sprintf("cli_u%d_%d", os.Getpid(), n),
		password: "pw-" + fmt.Sprint(n),
		db:       fmt.Sprintf("cli_d%d_%d", os.Getpid(), n),
		dir:      t.TempDir(),
		port:     testenv.FreePort(t),
	}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	return f
}

// writeConfig writes userlist.txt and pgbouncer.ini into f.dir; settings are extra
// [pgbouncer] lines and dbExtra is appended to the database's entry.
func (f *fixture) writeConfig(t *testing.T, dbExtra string, settings ...string) string {
	t.Helper()
	userlist := fmt.Sprintf("%q %q\n", f.user, f.password)
	if err := os.WriteFile(filepath.Join(f.dir, "userlist.txt"), []byte(userlist), 0o600); err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf(`[databases]
%s = host=127.0.0.1 port=%d dbname=%s %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir = %s
auth_type = scram-sha-256
auth_file = %s
admin_users = %s
pool_mode = transaction
logfile = %s
pidfile = %s
%s
`, f.db, f.pg.Port, f.db, dbExtra, f.port, f.dir, filepath.Join(f.dir, "userlist.txt"), f.user,
		filepath.Join(f.dir, "pgpool.log"), filepath.Join(f.dir, "pgpool.pid"), strings.Join(settings, "\n"))
	path := filepath.Join(f.dir, "pgbouncer.ini")
	// Write then rename, so a reload never reads a half-written file.
	if err := os.WriteFile(path+".new", []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (f *fixture) connString() string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", f.user, f.password, f.port, f.db)
}

func (f *fixture) logText() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "pgpool.log"))
	return string(b)
}

// proc is a pgpool process started by a test.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	output bytes.Buffer // stdout and stderr
}

// startPgpool runs pgpool with args and waits until it accepts connections on
// f.port. It is killed in t.Cleanup if still running.
func (f *fixture) startPgpool(t *testing.T, args ...string) *proc {
	t.Helper()
	return f.startPgpoolEnv(t, nil, args...)
}

// startPgpoolEnv is startPgpool with env as the process's environment (nil: this
// process's).
func (f *fixture) startPgpoolEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(pgpoolBinary(t), args...)
	p.cmd.Env = env
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("pgpool output:\n%s\npgpool log:\n%s", p.output.String(), f.logText())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.port), time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("pgpool exited: %v\n%s\n%s", p.err, p.output.String(), f.logText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgpool did not listen within 30s\n%s", f.logText())
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("pgpool did not exit within %v", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// eventually polls cond until it is true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverConns counts f.user's server connections to f.db in pg_stat_activity.
func (f *fixture) serverConns(t *testing.T, super *pgx.Conn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := super.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1 and datname = $2",
		f.user, f.db).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
