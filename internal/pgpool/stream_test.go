package pgpool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// rawClient is a logged-in client driven at the protocol level, so that a test can
// send and receive messages far larger than it holds.
type rawClient struct {
	conn net.Conn
	rd   *wire.Reader
}

// serverErr is an ErrorResponse a rawClient received.
type serverErr struct{ *pgproto3.ErrorResponse }

func (e serverErr) Error() string { return e.Severity + " " + e.Code + ": " + e.Message }

// dialRaw logs in with pgconn and takes over its socket.
func dialRaw(t *testing.T, dsn string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	hc.Conn.SetDeadline(time.Now().Add(4 * time.Minute))
	return &rawClient{conn: hc.Conn, rd: wire.NewReader(hc.Conn)}
}

func (rc *rawClient) send(typ byte, body []byte) error {
	_, err := rc.conn.Write(wire.AppendMessage(nil, typ, body))
	return err
}

// until reads messages up to one of type typ, which it returns (valid until the next
// read); an ErrorResponse on the way is returned as a serverErr after the
// ReadyForQuery that follows it, unless typ is ErrorResponse.
func (rc *rawClient) until(typ byte) ([]byte, error) {
	var failed error
	for {
		t, msg, err := rc.rd.NextPart()
		if err != nil {
			return nil, err
		}
		if rc.rd.Remaining() > 0 {
			return nil, fmt.Errorf("unexpected long message %q", t)
		}
		switch {
		case t == typ:
			return msg, nil
		case t == wire.ErrorResponse:
			var er pgproto3.ErrorResponse
			if err := er.Decode(wire.Body(msg)); err != nil {
				return nil, err
			}
			failed = serverErr{&er}
		case t == wire.ReadyForQuery && failed != nil:
			return nil, failed
		}
	}
}

// simple runs a simple Query and returns the text of its first column of the first row.
func (rc *rawClient) simple(sql string) (string, error) {
	if err := rc.send(wire.Query, append([]byte(sql), 0)); err != nil {
		return "", err
	}
	var val string
	for {
		t, msg, err := rc.rd.NextPart()
		if err != nil {
			return "", err
		}
		switch t {
		case wire.DataRow:
			var dr pgproto3.DataRow
			if err := dr.Decode(wire.Body(msg)); err != nil {
				return "", err
			}
			if len(dr.Values) > 0 {
				val = string(dr.Values[0])
			}
		case wire.ErrorResponse:
			var er pgproto3.ErrorResponse
			er.Decode(wire.Body(msg))
			rc.until(wire.ReadyForQuery)
			return "", serverErr{&er}
		case wire.ReadyForQuery:
			return val, nil
		}
	}
}

// copyRow is one generated COPY row of id and a value of 'x' bytes, rowLen bytes in
// all with its tab and newline.
func copyRow(id, rowLen int) []byte {
	row := []byte(strconv.Itoa(id) + "\t")
	row = append(row, strings.Repeat("x", rowLen-len(row)-1)...)
	return append(row, '\n')
}

// copyLong sends one CopyData of rows rows, generated as it is written: the client
// holds one buffer of them, never the message. It returns the length of the values.
func (rc *rawClient) copyLong(id, rows, rowLen int) (int, error) {
	if _, err := rc.simple("begin"); err != nil {
		return 0, err
	}
	if err := rc.send(wire.Query, []byte("copy bigcopy (id, v) from stdin\x00")); err != nil {
		return 0, err
	}
	if _, err := rc.until(wire.CopyInResponse); err != nil {
		return 0, err
	}
	hdr := make([]byte, wire.HeaderSize)
	hdr[0] = wire.CopyData
	binary.BigEndian.PutUint32(hdr[1:], uint32(4+rows*rowLen))
	if _, err := rc.conn.Write(hdr); err != nil {
		return 0, err
	}
	row := copyRow(id, rowLen)
	const perBuf = 16
	buf := make([]byte, 0, perBuf*rowLen)
	for range perBuf {
		buf = append(buf, row...)
	}
	for left := rows; left > 0; left -= perBuf {
		if _, err := rc.conn.Write(buf[:min(left, perBuf)*rowLen]); err != nil {
			return 0, err
		}
	}
	if err := rc.send(wire.CopyDone, nil); err != nil {
		return 0, err
	}
	if _, err := rc.until(wire.ReadyForQuery); err != nil {
		return 0, err
	}
	got, err := rc.simple("select current_setting('poolsuite.copied')")
	if err != nil {
		return 0, err
	}
	if _, err := rc.simple("commit"); err != nil {
		return 0, err
	}
	return strconv.Atoi(got)
}

// longRow asks for one row of one value of n 'y' bytes and reads it in parts,
// checking every byte; it returns the length received.
func (rc *rawClient) longRow(n int) (int, error) {
	if err := rc.send(wire.Query, []byte(fmt.Sprintf("select repeat('y', %d)\x00", n))); err != nil {
		return 0, err
	}
	if _, err := rc.until(wire.RowDescription); err != nil {
		return 0, err
	}
	typ, head, err := rc.rd.NextPart()
	if err != nil {
		return 0, err
	}
	if typ != wire.DataRow || len(head) < wire.HeaderSize+6 {
		return 0, fmt.Errorf("got %q of %d bytes, want a DataRow", typ, len(head))
	}
	body := wire.Body(head)
	if cols, size := binary.BigEndian.Uint16(body), int(int32(binary.BigEndian.Uint32(body[2:]))); cols != 1 || size != n {
		return 0, fmt.Errorf("DataRow of %d columns, value of %d bytes", cols, size)
	}
	got := 0
	check := func(b []byte) error {
		for _, x := range b {
			if x != 'y' {
				return fmt.Errorf("byte %d of the value is %q", got, x)
			}
			got++
		}
		return nil
	}
	if err := check(body[6:]); err != nil {
		return 0, err
	}
	for rc.rd.Remaining() > 0 {
		part, err := rc.rd.More()
		if err != nil {
			return 0, err
		}
		if err := check(part); err != nil {
			return 0, err
		}
	}
	if _, err := rc.until(wire.ReadyForQuery); err != nil {
		return 0, err
	}
	return got, nil
}

// memSampler records the largest HeapInuse seen until stopped.
type memSampler struct {
	stop chan struct{}
	done chan uint64
}

func sampleHeap() *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		var peak uint64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-m.stop:
				m.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memSampler) peak() uint64 {
	close(m.stop)
	return <-m.done
}

func heapInuse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLongMessagesStream: 8 clients at once each send one 200 MiB CopyData through
// pgpool and receive one 100 MiB DataRow; pgpool streams both (the pooler runs in
// this process, so its heap is sampled meanwhile): the peak stays within 64 MiB of
// the baseline, not 8 x 300 MiB, every byte arrives, and the heap falls back once the
// clients have left.
func TestLongMessagesStream(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 8
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	setup := connect(t, f.connString(addr))
	for _, sql := range []string{
		"create table bigcopy (id int, v text)",
		// Rows are counted, not stored: a BEFORE trigger adds their length to a
		// transaction-local setting and skips them.
		`create function bigcopy_count() returns trigger language plpgsql as $$ begin
			perform set_config('poolsuite.copied', (coalesce(nullif(current_setting('poolsuite.copied', true), ''), '0')::bigint + length(new.v))::text, true);
			return null; end $$`,
		"create trigger bigcopy_count before insert on bigcopy for each row execute function bigcopy_count()",
	} {
		if _, err := setup.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	setup.Close(ctx)

	const clients, rowLen = 8, 64 << 10
	copyBytes, rowBytes := 200<<20, 100<<20
	if raceEnabled {
		// -race slows pgpool's copy loop; the messages stay far larger than its buffers.
		copyBytes, rowBytes = 64<<20, 32<<20
	}
	rows := copyBytes / rowLen
	raw := make([]*rawClient, clients)
	for i := range raw {
		raw[i] = dialRaw(t, f.pgconnString(addr))
	}
	base := heapInuse()
	sampler := sampleHeap()
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i, rc := range raw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := rc.copyLong(i, rows, rowLen)
			if err == nil && got != rows*(rowLen-3) {
				err = fmt.Errorf("server counted %d bytes of values, want %d", got, rows*(rowLen-3))
			}
			if err == nil {
				got, err = rc.longRow(rowBytes)
				if err == nil && got != rowBytes {
					err = fmt.Errorf("row of %d bytes, want %d", got, rowBytes)
				}
			}
			if err == nil {
				err = rc.send(wire.Terminate, nil)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	peak := sampler.peak()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	t.Logf("heap in use: baseline %d MiB, peak %d MiB", base>>20, peak>>20)
	if peak > base+64<<20 {
		t.Errorf("heap peaked at %d MiB, %d MiB above the baseline: messages were buffered", peak>>20, (peak-base)>>20)
	}
	for _, rc := range raw {
		rc.conn.Close()
	}
	// The clients' buffers go back when they leave; wait for pgpool to see them go.
	deadline := time.Now().Add(10 * time.Second)
	var after uint64
	for {
		after = heapInuse()
		if after <= base+8<<20 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	if after > base+8<<20 {
		t.Errorf("heap in use %d MiB after the clients left, baseline %d MiB", after>>20, base>>20)
	}
}

// TestLongQueryPinsUntilChecked: a Query longer than the read buffer is streamed and
// classified from its first part; what pgpool could not see may take session state,
// so the client keeps its connection until pgpool has asked the server. An advisory
// lock taken past the first part keeps the client pinned; a long Query that takes
// nothing leaves the connection shared again once the server has been asked.
func TestLongQueryPinsUntilChecked(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 3 * time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pad := strings.Repeat("z", 2*wire.StreamSize)
	a := connect(t, f.connString(addr))
	var n int
	if err := a.PgConn().Exec(ctx, "select length('"+pad+"'), pg_advisory_lock(99)").Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	b := connect(t, f.connString(addr))
	if err := b.QueryRow(ctx, "select 1").Scan(&n); err == nil {
		t.Fatal("another client got the only connection while the lock past the first part is held")
	}
	if _, err := a.Exec(ctx, "select pg_advisory_unlock(99)"); err != nil {
		t.Fatal(err)
	}
	// A long Query without session state: pinned until the check, then shared.
	res, err := a.PgConn().Exec(ctx, "select length('"+pad+"')").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != strconv.Itoa(len(pad)) {
		t.Fatalf("length %s, want %d", got, len(pad))
	}
	if err := a.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	b = connect(t, f.connString(addr))
	if err := b.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatalf("connection still held after the check: %v", err)
	}
}

// TestMaxPacketSize: a client that declares a message over max_packet_size gets
// FATAL 08P01 naming the limit, before it has sent the message, and is closed; a
// client in a transaction meanwhile is unaffected, and a message under the limit but
// longer than the read buffer goes through.
func TestMaxPacketSize(t *testing.T) {
	if d := Defaults().MaxPacketSize; d != 2147483647 {
		t.Errorf("default max_packet_size %d, want PgBouncer's 2147483647", d)
	}
	f := newFixture(t)
	cfg := f.config()
	const limit = 4 << 20
	cfg.MaxPacketSize = limit
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	other := connect(t, f.connString(addr))
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "create temp table kept (n int) on commit drop"); err != nil {
		t.Fatal(err)
	}

	rc := dialRaw(t, f.pgconnString(addr))
	hdr := []byte{wire.Query, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], 2*limit)
	if _, err := rc.conn.Write(append(hdr, "select "...)); err != nil {
		t.Fatal(err)
	}
	msg, err := rc.until(wire.ErrorResponse)
	if err != nil {
		t.Fatal(err)
	}
	var er pgproto3.ErrorResponse
	if err := er.Decode(wire.Body(msg)); err != nil {
		t.Fatal(err)
	}
	if er.Severity != "FATAL" || er.Code != CodeProtocolViolation ||
		!strings.Contains(er.Message, "max_packet_size") || !strings.Contains(er.Message, strconv.Itoa(limit)) {
		t.Errorf("error: %s %s %q", er.Severity, er.Code, er.Message)
	}
	if _, _, err := rc.rd.NextPart(); !errors.Is(err, io.EOF) {
		t.Errorf("after the error: %v, want the connection closed", err)
	}

	if _, err := tx.Exec(ctx, "insert into kept values (1)"); err != nil {
		t.Fatalf("other client's transaction: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Under the limit, longer than the read buffer: streamed, and answered.
	pad := strings.Repeat("q", limit-1024)
	res, err := other.PgConn().Exec(ctx, "select length('"+pad+"')").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != strconv.Itoa(len(pad)) {
		t.Errorf("length %s, want %d", got, len(pad))
	}
}

// TestLongBindTracked: a Bind longer than the read buffer for a named statement (pgx's
// default mode) is streamed with the statement renamed to its server-side name, the
// length adjusted before its parameters have arrived.
func TestLongBindTracked(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, f.pgconnString(addr))
	for i, n := range []int{3 << 20, wire.StreamSize, 5<<20 + 3} {
		val := strings.Repeat(string(rune('a'+i)), n)
		var got int
		var ok bool
		if err := c.QueryRow(ctx, "select length($1::text), $1::text = repeat($2, $3)", val, string(rune('a'+i)), n).Scan(&got, &ok); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got != n || !ok {
			t.Errorf("%d bytes: length %d, equal %v", n, got, ok)
		}
	}
}
