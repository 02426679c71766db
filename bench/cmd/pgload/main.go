// Command pgload runs the demo workload against pgpool: many concurrent pgx
// clients, each running short transactions, and prints what pgpool did: clients
// served, server connections used (from PostgreSQL's pg_stat_activity and
// pgpool's admin console), transactions per second and the time clients spent
// waiting for a server connection (SHOW STATS total_wait_time).
//
// Usage:
//
//	pgload -dsn URL -pg-dsn URL [-admin-dsn URL] [-clients 500] [-duration 10s]
//
// -dsn connects through pgpool; -pg-dsn connects straight to PostgreSQL as a
// superuser (to watch pg_stat_activity and to create the demo table); -admin-dsn
// connects to pgpool's admin console (database pgbouncer). Each transaction
// checks that it stays on one server connection (pg_backend_pid() is constant)
// and sees its own uncommitted row. The exit status is 1 if any transaction
// failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	var (
		dsn      = flag.String("dsn", "", "connection string through pgpool")
		pgDSN    = flag.String("pg-dsn", "", "superuser connection string straight to PostgreSQL")
		adminDSN = flag.String("admin-dsn", "", "connection string of pgpool's admin console (optional)")
		clients  = flag.Int("clients", 500, "concurrent clients")
		duration = flag.Duration("duration", 10*time.Second, "how long the clients run transactions")
	)
	flag.Parse()
	if *dsn == "" || *pgDSN == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dsn, *pgDSN, *adminDSN, *clients, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "pgload:", err)
		os.Exit(1)
	}
}

// result is what the clients did.
type result struct {
	connected atomic.Int64
	txns      atomic.Int64
	failures  atomic.Int64
	firstErr  atomic.Pointer[error]
}

func (r *result) fail(err error) {
	r.failures.Add(1)
	r.firstErr.CompareAndSwap(nil, &err)
}

func run(dsn, pgDSN, adminDSN string, clients int, duration time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), duration+90*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	super, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer super.Close(ctx)
	setup, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting through pgpool: %w", err)
	}
	if _, err := setup.Exec(ctx, "create table if not exists pgload (client int, n int, at timestamptz default now())"); err != nil {
		return err
	}
	setup.Close(ctx)

	// Watch pg_stat_activity: how many server connections does pgpool hold?
	watchCtx, stopWatch := context.WithCancel(ctx)
	var peak atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watch(watchCtx, super, cfg.User, cfg.Database, &peak)
	}()

	var res result
	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(ctx, cfg, i, end, &res)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopWatch()
	<-watched

	n := res.txns.Load()
	fmt.Printf("\npgpool demo: %d clients running transactions for %v through pgpool\n", clients, duration)
	fmt.Printf("  clients served:            %d of %d connected\n", res.connected.Load(), clients)
	fmt.Printf("  transactions:              %d committed, %d failed\n", n, res.failures.Load())
	fmt.Printf("  transactions per second:   %.0f\n", float64(n)/elapsed.Seconds())
	fmt.Printf("  server connections used:   at most %d at once (pg_stat_activity, sampled every 20ms)\n", peak.Load())
	if adminDSN != "" {
		if err := adminReport(ctx, adminDSN, cfg.Database); err != nil {
			fmt.Printf("  admin console:             not available (%v)\n", err)
		}
	}
	if p := res.firstErr.Load(); p != nil {
		return fmt.Errorf("%d transactions failed; first: %w", res.failures.Load(), *p)
	}
	return nil
}

// client connects and runs transactions until end.
func client(ctx context.Context, cfg *pgx.ConnConfig, id int, end time.Time, res *result) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		res.fail(fmt.Errorf("client %d: connect: %w", id, err))
		return
	}
	defer conn.Close(context.Background())
	res.connected.Add(1)
	for n := 0; time.Now().Before(end); n++ {
		if err := transaction(ctx, conn, id, n); err != nil {
			res.fail(fmt.Errorf("client %d: %w", id, err))
			return
		}
		res.txns.Add(1)
	}
}

// errIsolation reports a transaction that saw another connection or lost its row.
var errIsolation = errors.New("pgload: isolation broken")

// transaction runs one short transaction that checks it stays on one server
// connection and sees its own row.
func transaction(ctx context.Context, conn *pgx.Conn, id, n int) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var pid1, pid2, seen int
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "insert into pgload (client, n) values ($1, $2)", id, n); err != nil {
		return err
	}
	err = tx.QueryRow(ctx, "select pg_backend_pid(), count(*) from pgload where client = $1 and n = $2", id, n).Scan(&pid2, &seen)
	if err != nil {
		return err
	}
	if pid1 != pid2 || seen != 1 {
		return fmt.Errorf("%w: backend %d then %d, own row seen %d times", errIsolation, pid1, pid2, seen)
	}
	return tx.Commit(ctx)
}

// watch samples the number of server connections of user to database until ctx ends.
func watch(ctx context.Context, super *pgx.Conn, user, database string, peak *atomic.Int64) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var n int64
		err := super.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1 and datname = $2 and backend_type = 'client backend'",
			user, database).Scan(&n)
		if err == nil && n > peak.Load() {
			peak.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminReport prints the demo database's rows of SHOW POOLS and SHOW STATS.
func adminReport(ctx context.Context, adminDSN, database string) error {
	cfg, err := pgx.ParseConfig(adminDSN)
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, show := range []struct {
		cmd  string
		cols []string
	}{
		{"SHOW POOLS", []string{"database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait", "pool_mode"}},
		{"SHOW STATS", []string{"database", "total_xact_count", "total_query_count", "total_wait_time", "avg_xact_time", "avg_wait_time"}},
	} {
		rows, err := showRows(ctx, conn, show.cmd)
		if err != nil {
			return err
		}
		fmt.Printf("  %s (pgpool admin console):\n", show.cmd)
		for _, row := range rows {
			if row["database"] != database {
				continue
			}
			var parts []string
			for _, c := range show.cols {
				if v, ok := row[c]; ok {
					parts = append(parts, c+"="+v)
				}
			}
			fmt.Printf("    %s\n", strings.Join(parts, " "))
			if v, ok := row["total_wait_time"]; ok {
				us, _ := strconv.ParseFloat(v, 64)
				xacts, _ := strconv.ParseFloat(row["total_xact_count"], 64)
				perXact := 0.0
				if xacts > 0 {
					perXact = us / xacts / 1000
				}
				fmt.Printf("  time waiting for a server connection: %.1f s summed over all clients, %.1f ms per transaction (SHOW STATS total_wait_time)\n",
					us/1e6, perXact)
			}
		}
	}
	return nil
}

// showRows runs an admin console command and returns its rows as column -> text.
func showRows(ctx context.Context, conn *pgx.Conn, cmd string) ([]map[string]string, error) {
	rs, err := conn.Query(ctx, cmd)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []map[string]string
	for rs.Next() {
		vals := rs.RawValues()
		row := map[string]string{}
		for i, fd := range rs.FieldDescriptions() {
			row[fd.Name] = string(vals[i])
		}
		out = append(out, row)
	}
	return out, rs.Err()
}
