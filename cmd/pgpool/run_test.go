package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/pgpool"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestRunWithPgxAndPsql runs pgpool from a pgbouncer.ini, as pgbouncer is run,
// and drives it with pgx over TCP and psql over TCP and the unix socket.
func TestRunWithPgxAndPsql(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "pool_size=3")
	f.startPgpool(t, ini)

	pid, err := os.ReadFile(filepath.Join(f.dir, "pgpool.pid"))
	if err != nil || strings.TrimSpace(string(pid)) == "" {
		t.Fatalf("pidfile: %q, %v", pid, err)
	}

	c := testenv.Connect(t, f.connString())
	ctx := ctxT(t, 20*time.Second)
	var n int
	if err := c.QueryRow(ctx, "select 40 + $1::int", 2).Scan(&n); err != nil || n != 42 {
		t.Fatalf("got %d, %v", n, err)
	}

	psql := testenv.LookPath(t, "psql")
	for _, host := range []string{"127.0.0.1", f.dir} {
		cmd := exec.Command(psql, "-X", "-At", "-h", host, "-p", strconv.Itoa(f.port), "-U", f.user,
			"-d", f.db, "-c", "select current_database(), 6 * 7")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql -h %s: %v\n%s", host, err, out)
		}
		if got, want := strings.TrimSpace(string(out)), f.db+"|42"; got != want {
			t.Fatalf("psql -h %s: got %q, want %q", host, got, want)
		}
	}
	if !strings.Contains(f.logText(), "pgpool started") {
		t.Fatalf("log lacks the start line:\n%s", f.logText())
	}
}

// TestRunConfigFlag runs pgpool with --config and checks that SIGINT removes the
// pidfile and exits 0.
func TestRunConfigFlag(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	p := f.startPgpool(t, "--config", ini, "-v")
	pidfile := filepath.Join(f.dir, "pgpool.pid")
	if _, err := os.Stat(pidfile); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d\n%s", code, f.logText())
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile left behind: %v", err)
	}
}

// TestReloadPoolSize raises pool_size with SIGHUP while a client stays connected.
func TestReloadPoolSize(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "pool_size=2")
	p := f.startPgpool(t, ini)
	super := f.pg.Connect(t)

	// A client that stays connected across the reloads, inside a session.
	kept := testenv.Connect(t, f.connString())
	ctx := ctxT(t, 60*time.Second)
	if _, err := kept.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}

	peak := f.busy(t, super, 5, 2)
	if peak > 2 {
		t.Fatalf("pool_size=2: saw %d server connections", peak)
	}

	// A broken file: logged, the running configuration stays.
	if err := os.WriteFile(ini, []byte("[pgbouncer]\nlisten_port = nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload failure in the log", func() bool {
		return strings.Contains(f.logText(), "reload failed")
	})
	if _, err := kept.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("client dropped by a failed reload: %v", err)
	}

	f.writeConfig(t, "pool_size=4")
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload in the log", func() bool {
		return strings.Contains(f.logText(), "configuration reloaded")
	})
	if peak := f.busy(t, super, 5, 4); peak != 4 {
		t.Fatalf("pool_size=4 after reload: peak %d server connections", peak)
	}
	var one int
	if err := kept.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatalf("client dropped by the reload: %v", err)
	}
}

// busy runs n clients that each hold a server connection for a while and returns
// the most server connections pg_stat_activity showed; it stops watching early
// once it has seen want.
func (f *fixture) busy(t *testing.T, super *pgx.Conn, n, want int) int {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = testenv.Connect(t, f.connString())
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Exec(ctx, "select pg_sleep(1)")
			errs <- err
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := 0
	for {
		select {
		case <-done:
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			return max(peak, f.serverConns(t, super))
		default:
		}
		if n := f.serverConns(t, super); n > peak {
			peak = n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGINTLetsTransactionFinish sends SIGINT (PgBouncer's safe shutdown) while a
// transaction is open: the transaction commits, then pgpool exits 0.
func TestSIGINTLetsTransactionFinish(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	p := f.startPgpool(t, ini)
	ctx := ctxT(t, 60*time.Second)
	c := testenv.Connect(t, f.connString())
	if _, err := c.Exec(ctx, "create table shutdown_t (v int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into shutdown_t values (1)"); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	eventually(t, 10*time.Second, "shutdown to start", func() bool {
		return strings.Contains(f.logText(), "shutting down")
	})
	if _, err := tx.Exec(ctx, "insert into shutdown_t values (2)"); err != nil {
		t.Fatalf("transaction cut by shutdown: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during shutdown: %v", err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	direct := testenv.Connect(t, f.pg.ConnString(f.user, f.password, f.db))
	var n int
	if err := direct.QueryRow(ctx, "select count(*) from shutdown_t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows after shutdown: %d, %v", n, err)
	}
}

// TestSecondSignalExitsAtOnce: with a transaction open and a long shutdown
// timeout, a second SIGINT ends pgpool without waiting.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	p := f.startPgpool(t, "--shutdown-timeout", "10m", ini)
	ctx := ctxT(t, 60*time.Second)
	c := testenv.Connect(t, f.connString())
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	eventually(t, 10*time.Second, "shutdown to start", func() bool {
		return strings.Contains(f.logText(), "shutting down")
	})
	p.cmd.Process.Signal(syscall.SIGINT)
	p.wait(t, 15*time.Second)
	if !strings.Contains(f.logText(), "second signal") {
		t.Fatalf("log lacks the second signal:\n%s", f.logText())
	}
}

// TestStartupErrors: a bad file or an unsupported auth_type stops pgpool with
// status 1 and a message naming the line.
func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(path, []byte("[databases]\n* = host=127.0.0.1\n[pgbouncer]\nauth_type = any\nlisten_addr = 127.0.0.1\n"), 0o644)
	var out, errb bytes.Buffer
	code := execute(context.Background(), []string{path}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), path+":4") || !strings.Contains(errb.String(), "auth_type any is not supported") {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	code = execute(context.Background(), nil, &out, &errb)
	if code != 2 {
		t.Fatalf("no file: exit %d", code)
	}
}

// TestVersion checks `pgpool version`, --version and PgBouncer's -V.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		var out, errb bytes.Buffer
		if code := execute(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if out.String() != pgpool.VersionString+"\n" { // as SHOW VERSION prints it
			t.Fatalf("%v: %q", args, out.String())
		}
	}
}

// TestCheckConfig prints every problem with its line, and exits 1 only on errors.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users := write("userlist.txt", "\"alice\" \"secret\"\nbroken line\n")
	bad := write("bad.ini", fmt.Sprintf(`[databases]
app = host=127.0.0.1 port=5432 pool_size=lots
multi = host=a,b
this is not a setting
[pgbouncer]
listen_port = 64x
auth_type = scram-sha-256
auth_file = %s
frobnicate = 1
pool_mode = transaction
`, users))
	var out bytes.Buffer
	code := execute(context.Background(), []string{"check-config", bad}, &out, &out)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, want := range []string{
		"error: " + bad + ":2: ",
		"error: " + bad + ":4: ",
		"error: " + bad + ":6: ",
		"warning: " + bad + ":9: frobnicate",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	good := write("good.ini", fmt.Sprintf(`[databases]
app = host=127.0.0.1 port=5432
multi = host=,
[pgbouncer]
auth_file = %s
frobnicate = 1
`, write("ok.txt", "\"alice\" \"secret\"\n")))
	out.Reset()
	code = execute(context.Background(), []string{"check-config", good}, &out, &out)
	// multi's host list names no host; without it the file is fine.
	if code != 1 || !strings.Contains(out.String(), good+":3: multi: host list") {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	os.WriteFile(good, []byte("[databases]\nmulti = host=a,b\n[pgbouncer]\nfrobnicate = 1\n"), 0o644)
	out.Reset()
	if code := execute(context.Background(), []string{"check-config", good}, &out, &out); code != 0 {
		t.Fatalf("host list: exit %d\n%s", code, out.String())
	}
	os.WriteFile(good, []byte("[databases]\napp = host=127.0.0.1\n[pgbouncer]\nfrobnicate = 1\n"), 0o644)
	out.Reset()
	if code := execute(context.Background(), []string{"check-config", good}, &out, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "warning: "+good+":4: frobnicate") || !strings.Contains(out.String(), "ok, 1 warning") {
		t.Fatalf("output:\n%s", out.String())
	}
}
