package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// odysseyName is the program name (and target name) of Yandex's PostgreSQL pooler,
// run as a peer of pgpool and PgBouncer when it is on PATH.
const odysseyName = "odyssey"

// ErrOdysseySetting is wrapped by the error odysseyConfig.render returns for a
// pgbouncer.ini setting it has no odyssey equivalent for.
var ErrOdysseySetting = errors.New("poolbench: no odyssey equivalent")

// PgBouncer defaults the other poolers keep, written out in odyssey's terms (its own
// defaults differ).
const (
	bouncerQueryWaitTimeout  = 120  // s, query_wait_timeout
	bouncerServerIdleTimeout = 600  // s, server_idle_timeout
	bouncerServerLifetime    = 3600 // s, server_lifetime
	bouncerClientLoginTime   = 60   // s, client_login_timeout
	bouncerListenBacklog     = 128  // listen_backlog
	bouncerStatsPeriod       = 60   // s, stats_period
)

// odysseyShutdownMs is odyssey's graceful shutdown timeout, as pgpool's
// --shutdown-timeout: the run does not wait for clients that stay.
const odysseyShutdownMs = 2000

// odysseyDB is a database clients ask odyssey for.
type odysseyDB struct {
	name     string
	poolSize int // 0: default_pool_size
}

// odysseyConfig is what odyssey.conf is written from: the pgbouncer.ini settings the
// other poolers get (poolerSettings) and where things are.
type odysseyConfig struct {
	port      int    // listen on 127.0.0.1:port
	dir       string // unix sockets, locks and the pid file
	workers   int
	pgHost    string
	pgPort    int
	pgDB      string // the database every route leads to
	user      string // the only user let in, also the server login
	password  string
	databases []odysseyDB
	settings  map[string]string // pgbouncer.ini [pgbouncer] settings
}

// odysseyAuth maps pgbouncer.ini's auth_type to odyssey's authentication.
var odysseyAuth = map[string]string{
	"trust":         "none",
	"plain":         "clear_text",
	"md5":           "md5",
	"scram-sha-256": "scram-sha-256",
}

// odysseyRoute is the part of odyssey.conf the pgbouncer.ini settings decide.
type odysseyRoute struct {
	pool          string
	poolSize      int
	clientMax     int // 0: no limit
	auth          string
	poolTimeoutMs int64
}

// odysseyRouteOf maps settings (pgbouncer.ini [pgbouncer] settings) to odyssey's;
// a setting without an equivalent is an error, so that none is dropped unseen.
func odysseyRouteOf(settings map[string]string) (odysseyRoute, error) {
	// PgBouncer 1.18's defaults for what settings leaves out.
	r := odysseyRoute{pool: "session", auth: "md5", poolSize: 20, clientMax: 100, poolTimeoutMs: bouncerQueryWaitTimeout * 1000}
	bad := func(k string) error { return fmt.Errorf("%w: %s = %s", ErrOdysseySetting, k, settings[k]) }
	for k, v := range settings {
		switch k {
		case "pool_mode":
			if v != "session" && v != "transaction" && v != "statement" {
				return r, bad(k)
			}
			r.pool = v
		case "default_pool_size", "max_client_conn":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return r, bad(k)
			}
			if k == "default_pool_size" {
				r.poolSize = n
			} else {
				r.clientMax = n
			}
		case "auth_type":
			a, ok := odysseyAuth[v]
			if !ok {
				return r, bad(k)
			}
			r.auth = a
		case "query_wait_timeout":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || s < 0 {
				return r, bad(k)
			}
			r.poolTimeoutMs = int64(s * 1000)
		default:
			return r, bad(k)
		}
	}
	return r, nil
}

// odysseyQuote returns s as an odyssey.conf string.
func odysseyQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// render returns odyssey.conf for c: one route per database, for c.user only, to
// c.pgDB on c.pgHost:c.pgPort over TCP, logging to standard output.
func (c odysseyConfig) render() (string, error) {
	r, err := odysseyRouteOf(c.settings)
	if err != nil {
		return "", err
	}
	q := odysseyQuote
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# written by poolbench: the pgbouncer.ini settings of the other poolers, in odyssey's terms")
	w("daemonize no")
	w("unix_socket_dir %s", q(c.dir))
	w("unix_socket_mode \"0644\"")
	w("locks_dir %s", q(filepath.Join(c.dir, "locks")))
	w("pid_file %s", q(filepath.Join(c.dir, "odyssey.pid")))
	w("graceful_shutdown_timeout_ms %d", odysseyShutdownMs)
	w("enable_online_restart no")
	w("log_to_stdout yes")
	w("log_format \"%%p %%t %%l [%%i %%s] (%%c) %%m\\n\"")
	w("log_debug no")
	w("log_config no")
	w("log_session yes") // log_connections, log_disconnections
	w("log_query no")
	w("log_stats yes")
	w("stats_interval %d", bouncerStatsPeriod)
	w("workers %d", c.workers)
	w("resolvers 1")
	w("nodelay yes")
	if r.clientMax > 0 {
		w("client_max %d", r.clientMax)
	}
	w("")
	w("listen {")
	w("\thost \"127.0.0.1\"")
	w("\tport %d", c.port)
	w("\tbacklog %d", bouncerListenBacklog)
	w("\tclient_login_timeout %d", bouncerClientLoginTime*1000)
	w("\ttls \"disable\"")
	w("}")
	w("")
	w("storage \"postgres\" {")
	w("\ttype \"remote\"")
	w("\thost %s", q(c.pgHost))
	w("\tport %d", c.pgPort)
	w("}")
	for _, db := range c.databases {
		size := r.poolSize
		if db.poolSize > 0 {
			size = db.poolSize
		}
		w("")
		w("database %s {", q(db.name))
		w("\tuser %s {", q(c.user))
		w("\t\tauthentication %s", q(r.auth))
		if r.auth != "none" {
			w("\t\tpassword %s", q(c.password))
		}
		w("\t\tstorage \"postgres\"")
		w("\t\tstorage_db %s", q(c.pgDB))
		w("\t\tstorage_user %s", q(c.user))
		w("\t\tstorage_password %s", q(c.password))
		w("\t\tpool %s", q(r.pool))
		w("\t\tpool_size %d", size)
		w("\t\tpool_timeout %d", r.poolTimeoutMs)
		w("\t\tpool_ttl %d", bouncerServerIdleTimeout)
		w("\t\tserver_lifetime %d", bouncerServerLifetime)
		// PgBouncer sends no reset query in transaction pooling; both it (1.21 on)
		// and pgpool keep protocol-level prepared statements (max_prepared_statements).
		w("\t\tpool_discard no")
		w("\t\tpool_reserve_prepared_statement yes")
		w("\t\tpool_cancel yes")
		w("\t\tpool_rollback yes")
		w("\t\tapplication_name_add_host no")
		w("\t\tclient_fwd_error yes")
		w("\t}")
		w("}")
	}
	return b.String(), nil
}

// errOdysseyNotReady is returned when odyssey accepts connections but does not serve
// a query.
var errOdysseyNotReady = errors.New("poolbench: odyssey serves no query")

// odysseyReadyTimeout bounds the query that tells odyssey is ready.
const odysseyReadyTimeout = 15 * time.Second

// odysseyWorkers is the number of odyssey's worker threads: one per CPU.
func odysseyWorkers() int { return runtime.NumCPU() }

// startOdyssey starts odyssey (found on PATH, in b) in front of e's PostgreSQL with
// s's settings (the pgbouncer.ini settings the other poolers get), its files in
// dir/odyssey[-key], and returns it as a target once it has served a query through
// each database.
func (e *pgEnv) startOdyssey(cl *cleanups, dir string, b *bins, s poolerSetup) (*target, error) {
	path, settings := b.path(odysseyName), s.settings
	odir := poolerDir(dir, odysseyName, s.key)
	if err := os.MkdirAll(filepath.Join(odir, "locks"), 0o755); err != nil {
		return nil, err
	}
	port, err := testenv.PickFreePort()
	if err != nil {
		return nil, err
	}
	c := odysseyConfig{
		port: port, dir: odir, workers: odysseyWorkers(),
		pgHost: e.pg.Host, pgPort: e.pg.Port, pgDB: "postgres",
		user: e.user, password: e.password, settings: settings,
		databases: []odysseyDB{{name: "bench"}, {name: overloadDB, poolSize: overloadPoolSize}},
	}
	conf, err := c.render()
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(odir, "odyssey.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	proc, err := testenv.LaunchProcess(testenv.ProcessSpec{
		Name: odysseyName, Path: path, Args: []string{confPath},
		Dir: odir, LogFile: filepath.Join(odir, "odyssey.log"), ReadyAddrs: []string{addr},
	})
	if err != nil {
		return nil, err
	}
	t := &target{name: odysseyName, protocol: "pg", port: port, db: "bench", pid: proc.PID()}
	for _, db := range c.databases {
		if err := e.queryThrough(t, db.name); err != nil {
			proc.Terminate()
			return nil, fmt.Errorf("%w: database %s: %w: %s", errOdysseyNotReady, db.name, err, lastLines([]byte(proc.LogTail()), 5))
		}
	}
	cl.add(proc.Terminate)
	return t, nil
}

// queryThrough logs in to t's database db as e's user and runs SELECT 1.
func (e *pgEnv) queryThrough(t *target, db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), odysseyReadyTimeout)
	defer cancel()
	c, err := pgconn.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
		t.port, e.user, e.password, db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, "SELECT 1").ReadAll()
	return err
}
