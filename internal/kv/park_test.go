package kv_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// waitUntil polls cond (yielding the processor in between) until it holds, or fails
// the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

// startParkProxy starts a proxy with one pool, "park", over one Redis, with extra
// lines for the pool in nutcracker.yml, and skips the test where connections cannot
// be parked.
func startParkProxy(t *testing.T, extra string) (*kv.Proxy, string) {
	t.Helper()
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "park", rs, extra)
	p := startProxy(t, parseConfig(t, yml), kv.Options{})
	if kv.ParkedClients(p) < 0 {
		t.Skip("no connection parking on this system")
	}
	return p, addr
}

// parked waits until p's Parker holds n client connections.
func parked(t *testing.T, p *kv.Proxy, n int) {
	t.Helper()
	if kv.ParkedClients(p) < 0 {
		t.Skip("no connection parking on this system")
	}
	waitUntil(t, itoa(n)+" clients parked", func() bool { return kv.ParkedClients(p) == n })
}

// readEOF waits (at most 10 s) for the proxy to close nc.
func readEOF(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(nc)
	if err != nil || len(b) > 0 {
		t.Fatalf("want the proxy's close, got %q, %v", b, err)
	}
}

// TestParkedWokenByData: an idle client is parked (no goroutine), and its next
// request wakes it, again and again.
func TestParkedWokenByData(t *testing.T) {
	p, addr := startParkProxy(t, "")
	kv.SetHotGap(p, 0) // never hot: parked whenever it waits for a request
	kv.PauseSweep(p)
	c := dialRaw(t, addr)
	if r := c.cmd("SET", "parked", "v1"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	for i := 0; i < 5; i++ {
		parked(t, p, 1)
		if r := c.cmd("GET", "parked"); r != "$2\r\nv1\r\n" {
			t.Fatalf("GET after parking: %q", r)
		}
	}
	// A request sent in pieces: the first wakes the client, which then waits in Read
	// for the rest.
	parked(t, p, 1)
	c.send("*2\r\n$3\r\nGE")
	waitUntil(t, "the client woken", func() bool { return kv.ParkedClients(p) == 0 })
	c.send("T\r\n$6\r\nparked\r\n")
	if r := c.reply(); r != "$2\r\nv1\r\n" {
		t.Fatalf("GET sent in pieces: %q", r)
	}
}

// TestParkedWokenByPeerClose: a parked client that closes its connection is woken,
// seen closed and forgotten.
func TestParkedWokenByPeerClose(t *testing.T) {
	p, addr := startParkProxy(t, "")
	conns := make([]*rawConn, 10)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		if r := conns[i].cmd("GET", "k"); r != "$-1\r\n" {
			t.Fatalf("GET: %q", r)
		}
	}
	parked(t, p, len(conns))
	for _, c := range conns {
		c.nc.Close()
	}
	waitUntil(t, "every client forgotten", func() bool { return kv.CurrClients(p) == 0 })
	if n := kv.ParkedClients(p); n != 0 {
		t.Fatalf("%d clients still parked after their close", n)
	}
}

// TestParkedIdleTimeout: client_timeout closes a parked client at its deadline (the
// Parker cannot see the deadline: a timer wakes the client).
func TestParkedIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	p, addr := startParkProxy(t, "  client_timeout: 300\n")
	c := dialRaw(t, addr)
	from := time.Now() // the proxy counts the client idle from later: once it read the GET
	if r := c.cmd("GET", "k"); r != "$-1\r\n" {
		t.Fatalf("GET: %q", r)
	}
	parked(t, p, 1)
	readEOF(t, c.nc)
	if took := time.Since(from); took < idle {
		t.Errorf("parked client closed after %v, before client_timeout %v", took, idle)
	}
	waitUntil(t, "the client forgotten", func() bool { return kv.CurrClients(p) == 0 })
}

// TestParkedShutdown: Shutdown finds the parked clients, closes them at once and
// returns without waiting for its deadline.
func TestParkedShutdown(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "park", rs, "")
	p, err := kv.Start(parseConfig(t, yml), kv.Options{NewCodec: kvredis.NewCodecFunc(redis.Limits{}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*rawConn, 20)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		if i%2 == 0 { // half made a request, half only connected
			if r := conns[i].cmd("GET", "k"); r != "$-1\r\n" {
				t.Fatalf("GET: %q", r)
			}
		}
	}
	kv.SweepIdle(p) // the clients that only connected wait in Read until swept
	kv.SweepIdle(p)
	parked(t, p, len(conns))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with parked clients: %v (they were not closed at once)", err)
	}
	for _, c := range conns {
		readEOF(t, c.nc)
	}
}

// TestParkedReloadRemovesPool: a reload that removes a pool closes its parked
// clients at once.
func TestParkedReloadRemovesPool(t *testing.T) {
	rs := startRedises(t, 1)
	ymlA, addrA := poolYAML(t, "a", rs, "")
	ymlB, addrB := poolYAML(t, "b", rs, "")
	for addrB == addrA { // FreePort gives a port again once it ran out of others
		ymlB, addrB = poolYAML(t, "b", rs, "")
	}
	p := startProxy(t, parseConfig(t, ymlA+ymlB), kv.Options{ReloadGrace: time.Minute})
	a, b := dialRaw(t, addrA), dialRaw(t, addrB)
	for _, c := range []*rawConn{a, b} {
		if r := c.cmd("GET", "k"); r != "$-1\r\n" {
			t.Fatalf("GET: %q", r)
		}
	}
	parked(t, p, 2)
	if err := p.Reload(parseConfig(t, ymlA)); err != nil {
		t.Fatal(err)
	}
	readEOF(t, b.nc)
	parked(t, p, 1)
	if r := a.cmd("GET", "k"); r != "$-1\r\n" {
		t.Fatalf("GET on the pool kept: %q", r)
	}
}

// TestParkedHandedOver: an online upgrade hands parked clients over to the new
// process at once (the old one wakes them), where they are parked again and served.
func TestParkedHandedOver(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "park", rs, "")
	cfg := parseConfig(t, yml)
	old, err := kv.Start(cfg, kv.Options{NewCodec: kvredis.NewCodecFunc(redis.Limits{}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Shutdown(context.Background())
	sock := filepath.Join(t.TempDir(), "upgrade.sock")
	// A long client wait: a client not woken would hold the handover that long.
	const clientWait = time.Minute
	if err := old.ServeUpgrades(sock, clientWait); err != nil {
		t.Fatal(err)
	}
	conns := make([]*rawConn, 20)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		if r := conns[i].cmd("GET", "k"); r != "$-1\r\n" {
			t.Fatalf("GET: %q", r)
		}
	}
	parked(t, old, len(conns))
	tk, err := kv.DialTakeover(sock)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := startProxy(t, cfg, kv.Options{Takeover: tk})
	if err := tk.Ready(p, 2*clientWait); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tk.Done():
	case <-time.After(clientWait / 2):
		t.Fatal("parked clients not handed over")
	}
	if err := tk.Err(); err != nil {
		t.Fatal(err)
	}
	if n := tk.Adopted(); n != len(conns) {
		t.Fatalf("%d of %d parked clients handed over", n, len(conns))
	}
	t.Logf("handover of %d parked clients took %v", len(conns), time.Since(start))
	parked(t, p, len(conns))
	for _, c := range conns {
		if r := c.cmd("GET", "k"); r != "$-1\r\n" {
			t.Fatalf("GET after the handover: %q", r)
		}
	}
	select {
	case <-old.TakenOver():
	case <-time.After(10 * time.Second):
		t.Fatal("the old proxy did not finish the handover")
	}
}

// TestIdleClientsHoldNoGoroutine: 500 clients that sent requests back to back (so
// that their readers wait in Read) and then went idle are parked by the idle sweep:
// they hold no goroutine.
func TestIdleClientsHoldNoGoroutine(t *testing.T) {
	p, addr := startParkProxy(t, "")
	kv.SetHotGap(p, time.Hour) // every reader reading twice is hot: only the sweep parks it
	kv.PauseSweep(p)           // and this test runs the sweep
	dialRaw(t, addr).cmd("GET", "warm")
	parked(t, p, 1)
	runtime.GC()
	g0 := runtime.NumGoroutine()
	const n = 500
	for i := 0; i < n; i++ {
		c := dialRaw(t, addr)
		c.cmd("GET", "a")
		c.cmd("GET", "b") // read soon after the first: hot, waits in Read
	}
	if got := kv.ParkedClients(p); got != 1 {
		t.Fatalf("%d clients parked before the sweep, want 1 (the hot ones wait in Read)", got)
	}
	if g := runtime.NumGoroutine() - g0; g < n {
		t.Fatalf("%d goroutines for %d hot clients, want at least one each", g, n)
	}
	kv.SweepIdle(p) // marks them idle
	kv.SweepIdle(p) // wakes them to park
	parked(t, p, n+1)
	waitUntil(t, "the swept readers' goroutines ended", func() bool { return runtime.NumGoroutine()-g0 < n/20 })
	t.Logf("%d goroutines for %d idle clients", runtime.NumGoroutine()-g0, n)
	// Still served.
	c := dialRaw(t, addr)
	if r := c.cmd("GET", "k"); r != "$-1\r\n" {
		t.Fatalf("GET: %q", r)
	}
}

// TestParkedCloseAfterWake: a close whose Wake comes just after the Parker woke the
// client (its request arrived) still ends the client: the woken reader, which reads
// that request, waits for the next in Read instead of parking again on a descriptor
// the close is about to close (where nothing would ever wake it).
func TestParkedCloseAfterWake(t *testing.T) {
	p, addr := startParkProxy(t, "")
	kv.SetHotGap(p, 0)
	kv.PauseSweep(p)
	c := dialRaw(t, addr)
	if r := c.cmd("GET", "k"); r != "$-1\r\n" {
		t.Fatalf("GET: %q", r)
	}
	parked(t, p, 1)
	var reply string
	if !kv.CloseWhileWoken(p, func() { c.send("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") }, func() { reply = c.reply() }) {
		t.Fatal("the parked client was not woken by its request")
	}
	if reply != "$-1\r\n" {
		t.Fatalf("GET: %q", reply)
	}
	readEOF(t, c.nc)
	waitUntil(t, "the closed client forgotten", func() bool { return kv.CurrClients(p) == 0 })
	if n := kv.ParkedClients(p); n != 0 {
		t.Fatalf("%d clients parked after the close", n)
	}
}

// TestPacedClientStaysHot: a client whose requests come tens of milliseconds apart,
// as each client's do in a busy pool of hundreds of connections, is parked only
// after its first request (it had read nothing before): its reader then waits in
// Read between requests instead of paying a park and a wake-up on each.
func TestPacedClientStaysHot(t *testing.T) {
	p, addr := startParkProxy(t, "")
	kv.PauseSweep(p)
	c := dialRaw(t, addr)
	const requests = 6
	for i := 0; i < requests; i++ {
		if i > 0 {
			time.Sleep(30 * time.Millisecond) // the client's pace: the gap under test
		}
		if r := c.cmd("GET", "k"); r != "$-1\r\n" {
			t.Fatalf("GET %d: %q", i, r)
		}
	}
	// A park between two requests comes before the second is read, so before its
	// reply: every park there was is counted by now.
	if n := kv.Parks(p); n > 1 {
		t.Fatalf("the client was parked %d times in %d requests 30 ms apart, want once (after the first)", n, requests)
	}
}
