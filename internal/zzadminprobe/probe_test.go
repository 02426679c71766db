package zzadminprobe

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestProbe(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	pg.CreateRole(t, "probeu", "pw")
	pg.CreateDatabase(t, "probedb", "probeu")
	b := testenv.StartPgBouncer(t, testenv.PgBouncerOptions{
		Databases: map[string]string{"probedb": pg.PgBouncerDB("probedb")},
		Settings:  map[string]string{"admin_users": "adm", "stats_users": "st", "auth_type": "md5", "pool_mode": "transaction"},
		Userlist:  "\"adm\" \"apw\"\n\"st\" \"spw\"\n\"probeu\" \"pw\"\n\"nobody\" \"npw\"\n",
	})
	ctx := context.Background()
	app, err := pgconn.Connect(ctx, b.ConnString("probeu", "pw", "probedb"))
	if err != nil {
		t.Fatal(err)
	}
	app.Exec(ctx, "begin; select 1").ReadAll()
	cc, _ := pgconn.ParseConfig(b.ConnString("adm", "apw", "pgbouncer"))
	cc.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { fmt.Printf("NOTICE %s %s %q %q\n", n.Severity, n.Code, n.Message, n.Detail) }
	c, err := pgconn.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("params: %v pid=%d\n", c.ParameterStatus("server_version"), c.PID())
	for _, k := range []string{"server_version", "client_encoding", "server_encoding", "DateStyle", "TimeZone", "standard_conforming_strings", "is_superuser", "application_name", "integer_datetimes"} {
		fmt.Printf("  %s=%q\n", k, c.ParameterStatus(k))
	}
	cmds := []string{"SHOW POOLS", "show clients", "SHOW SERVERS", "SHOW STATS", "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES", "SHOW TOTALS", "SHOW DATABASES", "SHOW USERS", "SHOW CONFIG", "SHOW VERSION", "SHOW LISTS", "SHOW MEM", "SHOW STATE", "SHOW HELP", "show pools;", "  show   pools ; ", "FOO", "SHOW FOO", "SHOW", "SHOW client_encoding", "SET client_encoding = 'x'", "SET foo = 1", "SET default_pool_size = 30", "RESUME", "RESUME probedb", "PAUSE nosuch", "KILL", "DISABLE", "SELECT 1", "show pools; show lists", "PAUSE pgbouncer", "KILL pgbouncer", "RECONNECT probedb", "PAUSE probedb"}
	for _, q := range cmds {
		fmt.Printf("=== %q\n", q)
		mrr := c.Exec(ctx, q)
		for mrr.NextResult() {
			rr := mrr.ResultReader()
			for _, fd := range rr.FieldDescriptions() {
				fmt.Printf("  col %s oid=%d size=%d mod=%d fmt=%d tbl=%d attr=%d\n", fd.Name, fd.DataTypeOID, fd.DataTypeSize, fd.TypeModifier, fd.Format, fd.TableOID, fd.TableAttributeNumber)
			}
			n := 0
			for rr.NextRow() {
				if n < 40 {
					vals := rr.Values()
					s := make([]any, len(vals))
					for i, v := range vals {
						if v == nil {
							s[i] = "NULL"
						} else {
							s[i] = string(v)
						}
					}
					fmt.Printf("  row %q\n", s)
				}
				n++
			}
			tag, err := rr.Close()
			fmt.Printf("  tag=%q err=%v\n", tag, err)
			if pe, ok := err.(*pgconn.PgError); ok {
				fmt.Printf("  pgerr sev=%s code=%s msg=%q\n", pe.Severity, pe.Code, pe.Message)
			}
		}
		if err := mrr.Close(); err != nil {
			fmt.Printf("  err=%v\n", err)
		}
	}
	// stats user
	s, err := pgconn.Connect(ctx, b.ConnString("st", "spw", "pgbouncer"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PAUSE", "SHOW POOLS", "SHOW FDS", "RELOAD", "SET default_pool_size = 30"} {
		_, err := s.Exec(ctx, q).ReadAll()
		fmt.Printf("stats %q: %v\n", q, err)
	}
	_, err = pgconn.Connect(ctx, b.ConnString("probeu", "pw", "pgbouncer"))
	fmt.Printf("nonadmin: %#v\n", err)
	_, err = pgconn.Connect(ctx, b.ConnString("nobody", "wrong", "pgbouncer"))
	fmt.Printf("nonadmin wrong pw: %v\n", err)
	_, err = pgconn.Connect(ctx, b.ConnString("adm", "wrong", "pgbouncer"))
	fmt.Printf("admin wrong pw: %v\n", err)
	// extended protocol
	rr := c.ExecParams(ctx, "SHOW POOLS", nil, nil, nil, nil)
	_, err = rr.Close()
	fmt.Printf("extended: %v\n", err)
	_ = pgproto3.Query{}
	time.Sleep(100 * time.Millisecond)
	app.Close(ctx)
}
