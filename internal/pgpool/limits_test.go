package pgpool

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// sleepOnce connects to dsn, runs select pg_sleep(0.5) and disconnects.
func sleepOnce(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, "select pg_sleep(0.5)")
	return err
}

// runAll runs every dsn's sleepOnce at once and reports each failure.
func runAll(t *testing.T, dsns []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, len(dsns))
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sleepOnce(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
}

// TestMaxDBConnectionsServesEveryUser: five users share a database limited to four
// server connections, two clients each. A slot freed by one user's pool goes to the
// clients of every pool by how long they have waited, so all of them are served well
// within query_wait_timeout.
func TestMaxDBConnectionsServesEveryUser(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.QueryWaitTimeout = 20 * time.Second
	cfg.Databases[f.db].MaxDBConnections = 4
	users := []string{f.user}
	for i := 1; i < 5; i++ {
		u := fmt.Sprintf("%s_m%d", f.user, i)
		f.pg.CreateRole(t, u, f.password)
		cfg.Userlist[u] = f.password
		users = append(users, u)
	}
	pl, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	var dsns []string
	for _, u := range users {
		for k := 0; k < 2; k++ {
			dsns = append(dsns, fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable&default_query_exec_mode=exec", u, f.password, host, port, f.db))
		}
	}
	runAll(t, dsns)
	// No slot of the limit is lost: it counts exactly the server connections open.
	var open int64
	var lim *limiter
	for _, p := range pl.poolList() {
		p.mu.Lock()
		open += int64(p.total())
		lim = p.dbLimit
		p.mu.Unlock()
	}
	if lim == nil || lim.n.Load() != open {
		t.Fatalf("max_db_connections counts %d, %d server connections open", lim.n.Load(), open)
	}
	// And a second wave uses all four: as many backends as the limit at once.
	runAll(t, dsns[:4])
	t.Logf("%d server connections open after the waves", open)
}

// TestMaxUserConnectionsServesEveryDatabase: one user limited to three server
// connections uses three databases, three clients each; every client is served.
func TestMaxUserConnectionsServesEveryDatabase(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.QueryWaitTimeout = 20 * time.Second
	cfg.MaxUserConnections = 3
	dbs := []string{f.db}
	for i := 1; i < 3; i++ {
		db := fmt.Sprintf("%s_m%d", f.db, i)
		f.pg.CreateDatabase(t, db, f.user)
		cfg.Databases[db] = &Database{Host: f.pg.Host, Port: f.pg.Port, ReservePool: -1}
		dbs = append(dbs, db)
	}
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	var dsns []string
	for _, db := range dbs {
		for k := 0; k < 3; k++ {
			dsns = append(dsns, fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable&default_query_exec_mode=exec", f.user, f.password, host, port, db))
		}
	}
	runAll(t, dsns)
}

// TestMaxDBConnectionsKeepsEverySlotInUse: four clients of two users hold the four
// server connections max_db_connections allows, in transactions, while a client of a
// third user waits. All four commit at once: one connection (only one) is closed to
// make room for the waiting client, who opens its own in its place, so the database
// ends with four server connections, idle, in the pooler and in PostgreSQL.
func TestMaxDBConnectionsKeepsEverySlotInUse(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.QueryWaitTimeout = 20 * time.Second
	cfg.Databases[f.db].MaxDBConnections = 4
	users := []string{f.user}
	for i := 1; i < 3; i++ {
		u := fmt.Sprintf("%s_k%d", f.user, i)
		f.pg.CreateRole(t, u, f.password)
		cfg.Userlist[u] = f.password
		users = append(users, u)
	}
	pl, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	dsn := func(u string) string {
		return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable&default_query_exec_mode=exec", u, f.password, host, port, f.db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var holders []pgx.Tx
	for _, u := range users[:2] {
		for k := 0; k < 2; k++ {
			tx, err := connect(t, dsn(u)).Begin(ctx)
			if err == nil {
				_, err = tx.Exec(ctx, "select 1")
			}
			if err != nil {
				t.Fatal(err)
			}
			holders = append(holders, tx)
		}
	}
	waiting := make(chan error, 1)
	go func() { waiting <- sleepOnce(ctx, dsn(users[2])) }()
	waitFor(t, "the third user's client to wait", 10*time.Second, func() bool {
		for _, p := range pl.poolList() {
			p.mu.Lock()
			n := p.waiters.n
			p.mu.Unlock()
			if p.user == users[2] && n == 1 {
				return true
			}
		}
		return false
	})
	start := make(chan struct{})
	errs := make(chan error, len(holders))
	for _, tx := range holders {
		go func() {
			<-start
			errs <- tx.Commit(ctx)
		}()
	}
	close(start)
	for range holders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-waiting; err != nil {
		t.Fatalf("waiting client: %v", err)
	}

	// Settled: no connection opening or in use, none closing (a closed one leaves
	// p.servers when its reader ends).
	var open int
	waitFor(t, "every server connection idle", 10*time.Second, func() bool {
		open = 0
		for _, p := range pl.poolList() {
			p.mu.Lock()
			settled := p.opening == 0 && p.waiters.n == 0 && len(p.idle) == len(p.servers)
			for _, s := range p.idle {
				settled = settled && !s.closed.Load()
			}
			open += len(p.servers)
			p.mu.Unlock()
			if !settled {
				return false
			}
		}
		return true
	})
	if open != 4 {
		t.Fatalf("%d server connections left open, want max_db_connections = 4", open)
	}
	su := f.pg.Connect(t)
	waitFor(t, "PostgreSQL to count the pooler's four connections", 10*time.Second, func() bool {
		var backends int
		err := su.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = any($1) and datname = $2", users, f.db).Scan(&backends)
		return err == nil && backends == open
	})
}
