package main

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestRunPgbenchManyClients runs pgbench with more clients than can log in within a
// one-second -T: poolbench must give them the time to log in and still measure a
// second of transactions, and learn how long the target's logins take.
func TestRunPgbenchManyClients(t *testing.T) {
	pgbench := testenv.LookPath(t, "pgbench")
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{MaxConnections: 250})
	init := exec.Command(pgbench, "-i", "-q", "-s", "1", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.SuperUser, "postgres")
	init.Env = append(os.Environ(), "PGPASSWORD="+pg.SuperPassword, "PGSSLMODE=disable")
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	e := &pgEnv{pg: pg, user: pg.SuperUser, password: pg.SuperPassword}
	b := &bins{paths: map[string]string{"pgbench": pgbench}}
	tg := &target{name: DirectTarget, protocol: "pg", port: pg.Port, db: "postgres"}
	s, err := runPgbench(t.Context(), e, b, tg, pgRun{script: "select", mode: "simple", clients: 200, seconds: 1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Failure != "" || s.Requests == 0 || s.Throughput <= 0 || s.P99Ms == nil {
		t.Errorf("200 clients over -T 1: %d transactions, throughput %v, failure %q", s.Requests, s.Throughput, s.Failure)
	}
	if e.loginPerClient[DirectTarget] <= 0 {
		t.Errorf("login time per client not learnt: %v", e.loginPerClient)
	}
}
