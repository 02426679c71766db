package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestRebootUnderLoad: `pgpool -R` with the same ini takes over from the running
// pgpool while pgbench runs through it: pgbench sees no failed transaction, a client
// idle since a SET keeps its connection and setting, the old process exits with
// status 0, the pidfile names the new one, and SHOW FDS through psql lists the
// listeners and clients; a second -R takes over from the first restarted process.
func TestRebootUnderLoad(t *testing.T) {
	pgbench := testenv.LookPath(t, "pgbench")
	psql := testenv.LookPath(t, "psql")
	f := newFixture(t)
	init := exec.Command(pgbench, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(f.pg.Port), "-U", f.user, f.db)
	init.Env = append(os.Environ(), "PGPASSWORD="+f.password)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	ini := f.writeConfig(t, "", "default_pool_size = 4", "max_client_conn = 50")
	old := f.startPgpool(t, ini)
	ctx := ctxT(t, 90*time.Second)

	idle := testenv.Connect(t, f.connString())
	if _, err := idle.Exec(ctx, "SET work_mem = '5MB'"); err != nil {
		t.Fatal(err)
	}

	bench := exec.Command(pgbench, "-c", "4", "-j", "2", "-T", "8", "-n", "-h", "127.0.0.1", "-p", strconv.Itoa(f.port), "-U", f.user, f.db)
	bench.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGSSLMODE=disable")
	var benchOut strings.Builder
	bench.Stdout, bench.Stderr = &benchOut, &benchOut
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	benchDone := make(chan error, 1)
	go func() { benchDone <- bench.Wait() }()
	t.Cleanup(func() {
		bench.Process.Kill()
	})
	// pgbench is under way when its transactions show in pg_stat_database.
	su := f.pg.Connect(t)
	eventually(t, 20*time.Second, "pgbench to run", func() bool {
		var n int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where datname = $1 and usename = $2 and query like 'UPDATE pgbench%'", f.db, f.user).Scan(&n)
		return n > 0
	})

	next := f.startPgpool(t, "-R", ini)
	if code := old.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the old pgpool exited with status %d\n%s", code, old.output.String())
	}
	select {
	case <-next.done:
		t.Fatalf("the new pgpool exited: %v\n%s", next.err, next.output.String())
	default:
	}
	if err := <-benchDone; err != nil {
		t.Fatalf("pgbench: %v\n%s", err, benchOut.String())
	}
	out := benchOut.String()
	m := pgbenchProcessed.FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("pgbench processed nothing:\n%s", out)
	}
	if fm := pgbenchFailed.FindStringSubmatch(out); fm == nil || fm[1] != "0" {
		t.Fatalf("pgbench failed transactions:\n%s", out)
	}
	// The 4 pgbench clients and the idle one moved; none was closed.
	took := regexp.MustCompile(`online restart: took over.* clients=(\d+) skipped=(\d+)`).FindStringSubmatch(f.logText())
	if took == nil || took[1] != "5" || took[2] != "0" {
		t.Fatalf("the new process's log does not say it took the 5 clients: %v\n%s", took, f.logText())
	}
	t.Logf("pgbench across the takeover: %s transactions, 0 failed; %s clients taken over", m[1], took[1])

	var s string
	if err := idle.QueryRow(ctx, "SHOW work_mem").Scan(&s); err != nil || s != "5MB" {
		t.Fatalf("idle client after the takeover: %q, %v", s, err)
	}
	pid, err := os.ReadFile(filepath.Join(f.dir, "pgpool.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(next.cmd.Process.Pid) {
		t.Fatalf("pidfile %q (%v), want the new process %d", pid, err, next.cmd.Process.Pid)
	}

	dsn := "postgres://" + f.user + ":" + f.password + "@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port)) + "/pgbouncer?sslmode=disable"
	cmd := exec.Command(psql, "-X", "-A", "-c", "SHOW FDS", dsn)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	fds, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql SHOW FDS: %v\n%s", err, fds)
	}
	lines := strings.Split(string(fds), "\n")
	if !strings.HasPrefix(lines[0], "fd|task|user|database|addr|port|cancel|link|client_encoding|std_strings|datestyle|timezone|password|scram_client_key|scram_server_key") {
		t.Fatalf("SHOW FDS header: %s", lines[0])
	}
	var pooler, client int
	for _, l := range lines[1:] {
		cols := strings.Split(l, "|")
		if len(cols) < 2 {
			continue
		}
		switch cols[1] {
		case "pooler":
			pooler++
		case "client":
			client++
		}
	}
	if pooler != 2 || client < 1 {
		t.Fatalf("SHOW FDS lists %d listeners and %d clients, want 2 and at least 1:\n%s", pooler, client, fds)
	}

	// A second online restart takes over from the first restarted process (whose
	// sockets another process opened): it exits and the pidfile names the third.
	third := f.startPgpool(t, "-R", ini)
	if code := next.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the second pgpool exited with status %d\n%s", code, next.output.String())
	}
	if err := idle.QueryRow(ctx, "SHOW work_mem").Scan(&s); err != nil || s != "5MB" {
		t.Fatalf("idle client after the second takeover: %q, %v", s, err)
	}
	pid, err = os.ReadFile(filepath.Join(f.dir, "pgpool.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(third.cmd.Process.Pid) {
		t.Fatalf("pidfile %q (%v) after the second takeover, want %d", pid, err, third.cmd.Process.Pid)
	}
}

// scramSalt starts a SCRAM login to addr as user and returns the salt of the
// server-first-message, then hangs up.
func scramSalt(t *testing.T, addr, user, db string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user, "database": db}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("%s: want AuthenticationSASL, got %#v", user, m)
	}
	fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=0123456789abcdefghijkl")})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	cont, ok := m.(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		t.Fatalf("%s: want AuthenticationSASLContinue, got %#v", user, m)
	}
	for _, a := range strings.Split(string(cont.Data), ",") {
		if v, ok := strings.CutPrefix(a, "s="); ok {
			return v
		}
	}
	t.Fatalf("%s: no salt in %q", user, cont.Data)
	return ""
}

// TestRebootKeepsMockSalts: `pgpool -R` hands the process's mock key over with the
// sockets, so an unknown user's mock SCRAM exchange shows the same salt before and
// after the restart (a salt that changed would tell the user does not exist), and so
// does a user whose auth_file password is in plain text.
func TestRebootKeepsMockSalts(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	old := f.startPgpool(t, ini)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port))
	users := []string{"nosuchuser_" + f.user, f.user}
	before := map[string]string{}
	for _, u := range users {
		before[u] = scramSalt(t, addr, u, f.db)
		if again := scramSalt(t, addr, u, f.db); again != before[u] {
			t.Fatalf("%s: salt %s, then %s in the same process", u, before[u], again)
		}
	}
	f.startPgpool(t, "-R", ini)
	if code := old.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the old pgpool exited with status %d\n%s", code, old.output.String())
	}
	for _, u := range users {
		if got := scramSalt(t, addr, u, f.db); got != before[u] {
			t.Errorf("%s: salt %s after the online restart, %s before", u, got, before[u])
		}
	}
}
