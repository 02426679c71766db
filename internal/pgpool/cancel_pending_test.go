package pgpool

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// holdPoint holds one client goroutine at a hook of the read path: armed, the next
// call to hold blocks, reporting the client on entered, until release is closed.
type holdPoint struct {
	armed   atomic.Bool
	entered chan *client
	release chan struct{}
}

func newHoldPoint(t *testing.T) *holdPoint {
	h := &holdPoint{entered: make(chan *client, 1), release: make(chan struct{})}
	h.armed.Store(true)
	t.Cleanup(h.let)
	return h
}

// let releases the held goroutine (once).
func (h *holdPoint) let() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *holdPoint) hold(c *client) {
	if h.armed.CompareAndSwap(true, false) {
		h.entered <- c
		<-h.release
	}
}

// pendingSignal reports each client whose cancel became pending.
func pendingSignal() (func(*client), chan *client) {
	ch := make(chan *client, 8)
	return func(c *client) { ch <- c }, ch
}

// cancelAsync sends a CancelRequest for pc and reports when pgpool has closed it.
func cancelAsync(ctx context.Context, pc *pgconn.PgConn) <-chan error {
	done := make(chan error, 1)
	go func() { done <- pc.CancelRequest(ctx) }()
	return done
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func isCanceled(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == CodeQueryCanceled
}

// holdRig is a pooler with a cancel_wait_timeout of 30s, a hold point and a pending
// signal in its cancel hooks (hooks returns the hooks the test holds the client at;
// pending is set over them), and one client logged in to it through pgconn.
type holdRig struct {
	pc      *pgconn.PgConn
	ctx     context.Context
	hp      *holdPoint
	pending chan *client
}

func newHoldRig(t *testing.T, hooks func(hp *holdPoint) *cancelHooks) *holdRig {
	t.Helper()
	f := newFixture(t)
	cfg := f.config()
	cfg.CancelWaitTimeout = 30 * time.Second
	pl, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	hp := newHoldPoint(t)
	onPending, pending := pendingSignal()
	h := hooks(hp)
	h.pending = onPending
	pl.hooks.Store(h)
	pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	return &holdRig{pc: pc, ctx: ctx, hp: hp, pending: pending}
}

// holdAfterRead returns hooks that hold the client once it has read a message of type typ.
func holdAfterRead(typ byte) func(hp *holdPoint) *cancelHooks {
	return func(hp *holdPoint) *cancelHooks {
		return &cancelHooks{afterRead: func(c *client, got byte) {
			if got == typ {
				hp.hold(c)
			}
		}}
	}
}

// holdBeforeRead holds the client as it goes to read.
func holdBeforeRead(hp *holdPoint) *cancelHooks { return &cancelHooks{beforeRead: hp.hold} }

// TestCancelBeforeQueryIsHandledCancelsIt: the client's query has been read by pgpool
// but not yet handled (no server connection bound, nothing in flight) when its cancel
// arrives; the client sent it first, so the query is canceled (57014), as PostgreSQL
// would cancel it.
func TestCancelBeforeQueryIsHandledCancelsIt(t *testing.T) {
	r := newHoldRig(t, holdAfterRead(wire.Query))
	ctx, pc, hp, pending := r.ctx, r.pc, r.hp, r.pending

	mrr := pc.Exec(ctx, "select pg_sleep(10)")
	c := recv(t, hp.entered, "the query to be read")
	canceled := cancelAsync(ctx, pc)
	if got := recv(t, pending, "the cancel to be pending"); got != c {
		t.Fatalf("cancel pending for client %d, want %d", got.id, c.id)
	}
	start := time.Now()
	hp.let()
	_, err := mrr.ReadAll()
	if !isCanceled(err) {
		t.Fatalf("query ended with %v after %v, want 57014", err, time.Since(start))
	}
	if err := recv(t, canceled, "the cancel request to end"); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	if c.pendCancel.Load() != nil {
		t.Fatal("a pending cancel is left")
	}
}

// TestCancelWithQueryInReceiveQueueCancelsIt: the client's query waits in its socket's
// receive queue, not yet read by pgpool's client goroutine (held before its read),
// when its cancel arrives; the query is canceled once pgpool reads and sends it.
func TestCancelWithQueryInReceiveQueueCancelsIt(t *testing.T) {
	r := newHoldRig(t, holdBeforeRead)
	ctx, pc, hp, pending := r.ctx, r.pc, r.hp, r.pending
	// Held at its first read after login, with nothing buffered.
	c := recv(t, hp.entered, "the client to go to read")
	if c.rd.Buffered() != 0 {
		t.Fatalf("%d bytes buffered before the query was sent", c.rd.Buffered())
	}

	mrr := pc.Exec(ctx, "select pg_sleep(10)")
	waitFor(t, "the query in the receive queue", 10*time.Second, func() bool {
		b, ok := c.unreadBound()
		return ok && b > c.rd.Received()
	})
	canceled := cancelAsync(ctx, pc)
	recv(t, pending, "the cancel to be pending")
	hp.let()
	_, err := mrr.ReadAll()
	if !isCanceled(err) {
		t.Fatalf("query ended with %v, want 57014", err)
	}
	if err := recv(t, canceled, "the cancel request to end"); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
}

// TestCancelWithInputEmptyIsDropped: a cancel that comes while the client has sent
// nothing pgpool has not read is dropped at once (the cancel request ends while the
// client is still held before its read), and the query the client sends next runs
// to its end.
func TestCancelWithInputEmptyIsDropped(t *testing.T) {
	r := newHoldRig(t, holdBeforeRead)
	ctx, pc, hp, pending := r.ctx, r.pc, r.hp, r.pending
	recv(t, hp.entered, "the client to go to read")
	if err := recv(t, cancelAsync(ctx, pc), "the cancel request to be dropped"); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	hp.let()
	if _, err := pc.Exec(ctx, "select pg_sleep(0.3)").ReadAll(); err != nil {
		t.Fatalf("the next query: %v", err)
	}
	select {
	case <-pending:
		t.Fatal("a cancel for a client with nothing unread was made pending")
	default:
	}
}

// TestPendingCancelDroppedWhenNothingToCancel: a cancel pending for bytes that turn out
// to hold nothing that runs on a server (a Sync pgpool answers itself) is dropped once
// they are handled, before its wait is over, and the client's next query runs to its
// end.
func TestPendingCancelDroppedWhenNothingToCancel(t *testing.T) {
	r := newHoldRig(t, holdAfterRead(wire.Sync))
	ctx, pc, hp, pending := r.ctx, r.pc, r.hp, r.pending
	fe := pc.Frontend()
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	recv(t, hp.entered, "the Sync to be read")
	canceled := cancelAsync(ctx, pc)
	recv(t, pending, "the cancel to be pending")
	hp.let()
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := msg.(*pgproto3.ReadyForQuery); !ok {
		t.Fatalf("Sync answered with %T", msg)
	}
	start := time.Now()
	if err := recv(t, canceled, "the cancel request to be dropped"); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the pending cancel was dropped only after %v (its wait ran out)", d)
	}
	if _, err := pc.Exec(ctx, "select pg_sleep(0.3)").ReadAll(); err != nil {
		t.Fatalf("the next query: %v", err)
	}
}

// TestIgnoredCancelIsSentAgain: a cancel PostgreSQL ignored (here: not sent the first
// time, as when it comes while the backend still reads the query) is sent again while
// the same query is still unanswered, and cancels it.
func TestIgnoredCancelIsSentAgain(t *testing.T) {
	f := newFixture(t)
	pl, addr := startPooler(t, f.config())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	var shots atomic.Int32
	pl.hooks.Store(&cancelHooks{shot: func(c *client, try int) bool {
		shots.Add(1)
		return try > 0
	}})
	pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	su := f.pg.Connect(t)
	mrr := pc.Exec(ctx, "select pg_sleep(10)")
	waitFor(t, "pg_sleep to run", 20*time.Second, func() bool {
		var n int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(10)' and state = 'active'").Scan(&n)
		return n == 1
	})
	if err := pc.CancelRequest(ctx); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	if _, err := mrr.ReadAll(); !isCanceled(err) {
		t.Fatalf("query ended with %v, want 57014", err)
	}
	if n := shots.Load(); n < 2 {
		t.Fatalf("the cancel was tried %d times (the first not sent), want 2 or more", n)
	}
}

// TestCancelForWaitingClientCancelsItsQuery: a client whose query waits in the pool's
// queue for a server connection (the only one is busy) when its cancel arrives has
// its query canceled once it gets the connection, within cancel_wait_timeout, instead
// of running it to its end. (PgBouncer drops such a cancel.)
func TestCancelForWaitingClientCancelsItsQuery(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.CancelWaitTimeout = 30 * time.Second
	pl, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	blocker := connect(t, f.connString(addr))
	pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	key := cancelKey(pc.PID(), binary.BigEndian.Uint32(pc.SecretKey()))
	pl.mu.Lock()
	c := pl.cancels[key]
	pl.mu.Unlock()

	tx, err := blocker.Begin(ctx) // holds the only server connection
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	mrr := pc.Exec(ctx, "select pg_sleep(10)")
	waitFor(t, "the query to wait for a server connection", 10*time.Second, func() bool {
		return c.getState() == clientWaiting
	})
	onPending, pending := pendingSignal()
	pl.hooks.Store(&cancelHooks{pending: onPending})
	canceled := cancelAsync(ctx, pc)
	recv(t, pending, "the cancel to be pending")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := mrr.ReadAll(); !isCanceled(err) {
		t.Fatalf("query ended with %v after %v, want 57014", err, time.Since(start))
	}
	if err := recv(t, canceled, "the cancel request to end"); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
}
