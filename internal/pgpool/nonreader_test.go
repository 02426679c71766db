package pgpool

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// stallListener hands out connections whose writes can be made to block, as a client
// that stops reading makes them block once the kernel's buffers are full. A stalled
// write returns only when the connection is closed.
type stallListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[string]*stallConn // by the client's address
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &stallConn{Conn: c, blocked: make(chan struct{}), closed: make(chan struct{})}
	l.mu.Lock()
	l.conns[c.RemoteAddr().String()] = sc
	l.mu.Unlock()
	return sc, nil
}

func (l *stallListener) conn(remote string) *stallConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[remote]
}

type stallConn struct {
	net.Conn
	stalled     atomic.Bool
	blocked     chan struct{} // closed when the first write stalls
	blockedOnce sync.Once
	closed      chan struct{}
	closeOnce   sync.Once
}

func (c *stallConn) Write(b []byte) (int, error) {
	if c.stalled.Load() {
		c.blockedOnce.Do(func() { close(c.blocked) })
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestClientNotReadingBlocksNobody checks that while pgpool's write of replies to a
// client that stopped reading is blocked, the admin console (SHOW CLIENTS, SHOW POOLS),
// a cancel request for that client, another client of the same pool and Shutdown all
// go on: no socket write is made under a lock they need.
func TestClientNotReadingBlocksNobody(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	cfg.WriteTimeout = 10 * time.Minute // the stalled write stays stalled for the whole test
	cfg.AdminUsers = []string{f.user}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &stallListener{Listener: ln, conns: map[string]*stallConn{}}
	pl := New(cfg, testLogger(t))
	served := make(chan error, 1)
	go func() { served <- pl.Serve(sl) }()
	addr := ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stuck, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close(context.Background())
	// A named statement: its replies take the tracked path (prepared.go), which holds
	// the client's lock while it matches them.
	if _, err := stuck.Prepare(ctx, "s", "select 1 where false", nil); err != nil {
		t.Fatal(err)
	}
	sc := sl.conn(stuck.Conn().LocalAddr().String())
	if sc == nil {
		t.Fatal("pgpool's side of the client connection not found")
	}
	sc.stalled.Store(true)
	batch := &pgconn.Batch{}
	for i := 0; i < 3000; i++ {
		batch.ExecPrepared("s", nil, nil, nil)
	}
	batchDone := make(chan struct{})
	go func() {
		defer close(batchDone)
		stuck.ExecBatch(context.Background(), batch).ReadAll() // fails when Shutdown closes it
	}()
	select {
	case <-sc.blocked:
	case <-ctx.Done():
		t.Fatal("pgpool never wrote replies to the client")
	}

	// The admin console lists the stuck client.
	admin := adminConnect(t, (&adminEnv{f: f, addr: addr}).dsn(false, f.user, f.password, "pgbouncer"))
	for _, q := range []string{"SHOW CLIENTS", "SHOW POOLS", "SHOW SERVERS"} {
		qctx, qcancel := context.WithTimeout(ctx, 15*time.Second)
		rows, err := admin.Query(qctx, q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
		}
		qcancel()
		if err != nil {
			t.Fatalf("%s while a client does not read: %v", q, err)
		}
	}

	// A cancel request for the stuck client returns.
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	err = stuck.CancelRequest(cctx)
	ccancel()
	if err != nil {
		t.Fatalf("cancel request: %v", err)
	}

	// Another client of the same pool is served.
	other := connect(t, f.connString(addr))
	var one int
	octx, ocancel := context.WithTimeout(ctx, 15*time.Second)
	err = other.QueryRow(octx, "select 1").Scan(&one)
	ocancel()
	if err != nil || one != 1 {
		t.Fatalf("other client: %v", err)
	}

	// Shutdown ends within its grace period: the stuck write is unblocked by closing
	// the client.
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- pl.Shutdown(sctx) }()
	select {
	case <-shutdownDone:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return while a client does not read")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	<-batchDone
}

// TestUntrackedPipelineBounded: a client of the simple protocol that pipelines
// thousands of Queries and Syncs without reading a reply has at most
// Pooler.inflightMax requests in flight on its server connection: pgpool then stops
// reading from it (its socket pushes back) rather than queueing more, and meanwhile
// serves another client of the same pool and the admin console. In session and in
// transaction mode. The first request waits for a lock the test holds, so PostgreSQL
// answers none of them: what is in flight only grows, and the count seen at any time
// is the most held until then.
func TestUntrackedPipelineBounded(t *testing.T) {
	for _, mode := range []PoolMode{PoolTransaction, PoolSession} {
		t.Run(mode.String(), func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config()
			cfg.PoolMode = mode
			cfg.DefaultPoolSize = 2
			cfg.WriteTimeout = 10 * time.Minute // the stalled write stays stalled for the whole test
			cfg.AdminUsers = []string{f.user}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sl := &stallListener{Listener: ln, conns: map[string]*stallConn{}}
			pl := New(cfg, testLogger(t))
			const bound = 500
			pl.inflightMax = bound
			served := make(chan error, 1)
			go func() { served <- pl.Serve(sl) }()
			t.Cleanup(func() {
				// Short grace: the flooding client's requests never finish.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				pl.Shutdown(ctx)
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
			addr := ln.Addr().String()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Released when the test ends and its connection closes.
			holder := connect(t, f.connString(net.JoinHostPort(f.pg.Host, strconv.Itoa(f.pg.Port))))
			if _, err := holder.Exec(ctx, "select pg_advisory_lock(1)"); err != nil {
				t.Fatal(err)
			}

			rc := dialRaw(t, f.pgconnString(addr))
			sc := sl.conn(rc.conn.LocalAddr().String())
			if sc == nil {
				t.Fatal("pgpool's side of the client connection not found")
			}
			var flooder *client
			for _, c := range pl.clientList() {
				if c.user == f.user {
					flooder = c
				}
			}
			if flooder == nil {
				t.Fatal("pgpool's client not found")
			}
			sc.stalled.Store(true)
			// 20000 Queries and 2000 Syncs, far more than the bound, the first waiting
			// for the test's lock; the writes block once pgpool stops reading, until the
			// test closes the connection.
			batch := wire.AppendMessage(nil, wire.Query, []byte("select pg_advisory_xact_lock(1)\x00"))
			for i := 0; i < 20000; i++ {
				batch = wire.AppendMessage(batch, wire.Query, []byte("select 1\x00"))
				if i%10 == 0 {
					batch = wire.AppendMessage(batch, wire.Sync, nil)
				}
			}
			go rc.conn.Write(batch)

			state := func() (waiting bool, n int) {
				flooder.mu.Lock()
				defer flooder.mu.Unlock()
				return flooder.roomWait, flooder.inflight.len()
			}
			// Nothing is answered, so nothing leaves the queue: it fills up to the bound,
			// never past it, and the client's goroutine waits.
			deadline := time.Now().Add(30 * time.Second)
			for {
				waiting, n := state()
				if n > bound {
					t.Fatalf("%d requests in flight, bound %d", n, bound)
				}
				if waiting && n == bound {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the client never waited for room with the queue full: waiting %v, %d requests in flight", waiting, n)
				}
				time.Sleep(5 * time.Millisecond)
			}

			other := connect(t, f.connString(addr))
			var one int
			if err := other.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("other client while one floods: %v", err)
			}
			admin := adminConnect(t, (&adminEnv{f: f, addr: addr}).dsn(false, f.user, f.password, "pgbouncer"))
			if _, rows := adminQueryResult(t, admin, "SHOW CLIENTS"); len(rows) < 3 {
				t.Errorf("SHOW CLIENTS while a client floods: %v", rows)
			}
			// The premise: PostgreSQL answered nothing, its backend still waits for the lock.
			var locked int
			if err := holder.QueryRow(ctx, "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'").Scan(&locked); err != nil || locked != 1 {
				t.Fatalf("backends waiting for the test's lock: %d, %v; want the flooding client's", locked, err)
			}
			if waiting, n := state(); !waiting || n != bound {
				t.Fatalf("after the other clients: waiting %v, %d requests in flight, want the bound, %d", waiting, n, bound)
			}
		})
	}
}
