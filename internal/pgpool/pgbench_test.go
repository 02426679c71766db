package pgpool

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestPgbench's load: clients, and transactions each.
const (
	pgbenchClients   = 100
	pgbenchPerClient = 20
)

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestPgbench runs pgbench with 100 clients of 20 transactions each through a pool
// of 10 in transaction mode, with the simple and the extended protocol, and with
// protocol-level prepared statements (-M prepared, which pgpool tracks per client):
// every transaction is processed and none fails. The load is bounded by count, not
// by time, so a slow machine (logins under the race detector) takes longer instead of
// processing nothing; a deadline bounds the whole run.
func TestPgbench(t *testing.T) {
	pgbench := testenv.LookPath(t, "pgbench")
	f := newFixture(t)
	init := exec.Command(pgbench, "-i", "-s", "1", "-q", "-h", f.pg.Host, "-p", strconv.Itoa(f.pg.Port), "-U", f.user, f.db)
	init.Env = append(os.Environ(), "PGPASSWORD="+f.password)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	cfg := f.config()
	cfg.DefaultPoolSize = 10
	cfg.MaxClientConn = 200
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, pgbench, "-M", mode, "-c", strconv.Itoa(pgbenchClients), "-j", "2", "-t", strconv.Itoa(pgbenchPerClient), "-n", "-h", host, "-p", port, "-U", f.user, f.db)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGSSLMODE=disable")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("pgbench: %v\n%s", err, out)
			}
			m := pgbenchProcessed.FindSubmatch(out)
			if want := strconv.Itoa(pgbenchClients * pgbenchPerClient); m == nil || string(m[1]) != want {
				t.Fatalf("want %s transactions processed:\n%s", want, out)
			}
			if fm := pgbenchFailed.FindSubmatch(out); fm != nil && string(fm[1]) != "0" {
				t.Fatalf("%s failed transactions:\n%s", fm[1], out)
			}
			t.Logf("%s: %s transactions", mode, m[1])
		})
	}
}
