package pgpool

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestPgbench runs pgbench with 100 clients for 10 s through a pool of 10 in
// transaction mode, with the simple and the extended protocol, and with protocol-level
// prepared statements (-M prepared, which pgpool tracks per client): no transaction
// fails.
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
			cmd := exec.Command(pgbench, "-M", mode, "-c", "100", "-j", "2", "-T", "10", "-n", "-h", host, "-p", port, "-U", f.user, f.db)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGSSLMODE=disable")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("pgbench: %v\n%s", err, out)
			}
			m := pgbenchProcessed.FindSubmatch(out)
			if m == nil || string(m[1]) == "0" {
				t.Fatalf("no transactions processed:\n%s", out)
			}
			if fm := pgbenchFailed.FindSubmatch(out); fm != nil && string(fm[1]) != "0" {
				t.Fatalf("%s failed transactions:\n%s", fm[1], out)
			}
			t.Logf("%s: %s transactions", mode, m[1])
		})
	}
}
