package pgpool

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestActiveRecordDefaults runs ActiveRecord (Debian's ruby-activerecord with ruby-pg)
// with Rails' default database settings, prepared statements and advisory locks on,
// through pgpool in transaction mode over 4 server connections: a migration runs, then
// 16 threads create, lock, update and query rows; totals must be exact and no thread
// may see an error.
func TestActiveRecordDefaults(t *testing.T) {
	ruby := testenv.LookPath(t, "ruby")
	if out, err := exec.Command(ruby, "-e", `require "active_record"; require "pg"`).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("ActiveRecord is not installed (Debian packages ruby-activerecord, ruby-pg; scripts/setup.sh): %s", out)
		}
		t.Skipf("ActiveRecord not installed: %s", out)
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 4
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(ruby, "testdata/rails/app.rb")
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGDATABASE="+f.db,
		"PGUSER="+f.user, "PGPASSWORD="+f.password, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ActiveRecord workload failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
