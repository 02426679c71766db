package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMapLogSettings: log_connections, log_disconnections, log_pooler_errors,
// log_stats and stats_period reach the pooler, without "not honoured" warnings.
func TestMapLogSettings(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(ini, []byte(`[databases]
app = host=db1

[pgbouncer]
log_connections = 0
log_disconnections = 0
log_pooler_errors = 0
log_stats = 0
stats_period = 7
log_format = json
syslog_ident = pgp
syslog_facility = local3
`), 0o644)
	rc, warnings, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	pc := rc.Pooler
	if pc.LogConnections || pc.LogDisconnections || pc.LogPoolerErrors || pc.LogStats || pc.StatsPeriod != 7*time.Second {
		t.Errorf("log settings: connections %v disconnections %v pooler_errors %v stats %v period %v",
			pc.LogConnections, pc.LogDisconnections, pc.LogPoolerErrors, pc.LogStats, pc.StatsPeriod)
	}
	if rc.Ini.LogFormat != "json" || rc.Ini.SyslogIdent != "pgp" || rc.Ini.SyslogFacility != "local3" {
		t.Errorf("ini: log_format %q syslog_ident %q syslog_facility %q", rc.Ini.LogFormat, rc.Ini.SyslogIdent, rc.Ini.SyslogFacility)
	}
}

// TestLogfileHasPgBouncerLines: the pgpool binary writes PgBouncer's line format to its
// logfile, with the client's prefix on the connection's lines.
func TestLogfileHasPgBouncerLines(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	f.startPgpool(t, ini)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, f.connString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	re := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ \[\d+\] LOG C-0x[0-9a-f]+: ` +
		regexp.QuoteMeta(f.db+"/"+f.user) + `@127\.0\.0\.1:\d+ closing because: client close request \(age=\d+s\)$`)
	eventually(t, 10*time.Second, "the closing line in the logfile", func() bool { return re.MatchString(f.logText()) })
	if !regexp.MustCompile(`(?m)LOG C-0x[0-9a-f]+: \S+ login attempt: db=` + regexp.QuoteMeta(f.db) + ` user=` + regexp.QuoteMeta(f.user) + ` tls=no$`).MatchString(f.logText()) {
		t.Errorf("no login attempt line in:\n%s", f.logText())
	}
}
