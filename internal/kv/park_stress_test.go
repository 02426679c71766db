package kv_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// stressConns is how many clients TestParkStress runs (fewer under -short: the race
// detector limits a process to 8128 goroutines).
func stressConns() int {
	if testing.Short() {
		return 300
	}
	return 2000
}

// stressClient is one client of TestParkStress, driven by the test's goroutine
// through do (nothing in it calls t.Fatal).
type stressClient struct {
	id  int
	nc  net.Conn
	rd  *bufio.Reader
	n   int // requests answered
	err error
}

// round sends one pipelined SET and GET of the client's key, or a GET sent in two
// pieces with the second sent after the first has woken the client, and checks the
// replies.
func (c *stressClient) round(rnd *rand.Rand) error {
	c.n++
	key := fmt.Sprintf("stress:%d", c.id)
	val := fmt.Sprintf("v%d", c.n)
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	set := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(val), val)
	get := fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
	if rnd.IntN(3) == 0 {
		// In pieces: the first piece wakes a parked client, which then waits
		// for the rest with a partial request buffered.
		cut := 1 + rnd.IntN(len(set)-1)
		if _, err := io.WriteString(c.nc, set[:cut]); err != nil {
			return err
		}
		if _, err := io.WriteString(c.nc, set[cut:]+get); err != nil {
			return err
		}
	} else if _, err := io.WriteString(c.nc, set+get); err != nil {
		return err
	}
	want := fmt.Sprintf("+OK\r\n$%d\r\n%s\r\n", len(val), val)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.rd, got); err != nil {
		return fmt.Errorf("client %d round %d: %w (read %q)", c.id, c.n, err, got)
	}
	if string(got) != want {
		return fmt.Errorf("client %d round %d: got %q, want %q", c.id, c.n, got, want)
	}
	return nil
}

// sweptParked runs idle sweeps until n clients are parked (a client's reader may
// not wait in Read yet when a sweep looks at it).
func sweptParked(t *testing.T, p *kv.Proxy, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprint(n, " clients parked"), func() bool {
		if kv.ParkedClients(p) == n {
			return true
		}
		kv.SweepIdle(p)
		return false
	})
}

// TestParkStress: thousands of clients (over TCP and a unix socket) that alternate between idle (parked) and
// busy in random order, some sending requests in pieces, some closing while parked,
// with idle sweeps in between; each round waits until every idle client is parked.
// Every reply arrives whole and in order, a client closed while parked is
// forgotten, and Shutdown with every remaining client parked closes them all at
// once.
func TestParkStress(t *testing.T) {
	n := stressConns()
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "stress", rs, "  client_timeout: 600000\n  timeout: 60000\n")
	// Most clients come over a unix socket: thousands of TCP connections a run, run
	// again and again, would leave too few free ports for the tests' listeners.
	sock := filepath.Join(t.TempDir(), "kv.sock")
	yml += "stressunix:\n  listen: " + sock + "\n  redis: true\n  backlog: 4096\n  client_timeout: 600000\n  timeout: 60000\n  servers:\n    - " + rs[0].Addr() + ":1 s0\n"
	g0 := runtime.NumGoroutine()
	p, err := kv.Start(parseConfig(t, yml), kv.Options{NewCodec: kvredis.NewCodecFunc(redis.Limits{}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	shut := false
	t.Cleanup(func() {
		if !shut {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = p.Shutdown(ctx)
		}
	})
	if kv.ParkedClients(p) < 0 {
		t.Skip("no connection parking on this system")
	}
	kv.SetHotGap(p, 0) // never hot: an idle client parks at once
	kv.PauseSweep(p)   // the test runs the sweeps

	rnd := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	clients := make([]*stressClient, n)
	for i := range clients {
		network, to := "unix", sock
		if i%8 == 0 {
			network, to = "tcp", addr
		}
		nc, err := net.DialTimeout(network, to, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		clients[i] = &stressClient{id: i, nc: nc, rd: bufio.NewReader(nc)}
	}
	// A client that only connected waits in Read until a sweep finds it idle.
	sweptParked(t, p, n)

	live := n
	const rounds = 6
	for round := 0; round < rounds; round++ {
		// A random half is busy this round; each busy client runs in its own
		// goroutine, started in random order, while a sweep runs too.
		var wg sync.WaitGroup
		var busy []*stressClient
		for _, c := range clients {
			if c != nil && rnd.IntN(2) == 0 {
				busy = append(busy, c)
			}
		}
		rnd.Shuffle(len(busy), func(i, j int) { busy[i], busy[j] = busy[j], busy[i] })
		start := make(chan struct{})
		for _, c := range busy {
			seed := rnd.Uint64()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := rand.New(rand.NewPCG(seed, 2))
				for k := 1 + r.IntN(3); k > 0 && c.err == nil; k-- {
					c.err = c.round(r)
				}
			}()
		}
		close(start)
		kv.SweepIdle(p)
		wg.Wait()
		for _, c := range busy {
			if c.err != nil {
				t.Fatal(c.err)
			}
		}
		// Every client is idle again: each parks (after a sweep for those whose
		// reads went on in Read).
		sweptParked(t, p, live)
		// Some close while parked: they are woken and forgotten.
		for i, c := range clients {
			if c != nil && rnd.IntN(20) == 0 {
				c.nc.Close()
				clients[i] = nil
				live--
			}
		}
		waitUntil(t, "closed clients forgotten", func() bool { return kv.CurrClients(p) == int64(live) })
		parked(t, p, live)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := time.Now()
	shut = true
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with %d parked clients: %v", live, err)
	}
	if took := time.Since(from); took > 20*time.Second {
		t.Errorf("shutdown with %d parked clients took %v", live, took)
	}
	for _, c := range clients {
		if c == nil {
			continue
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c.rd); err != nil || len(b) > 0 {
			t.Fatalf("client %d: want the proxy's close, got %q, %v", c.id, b, err)
		}
	}
	if got := kv.ParkedClients(p); got != 0 {
		t.Errorf("%d clients parked after shutdown", got)
	}
	// Nothing of the proxy's runs on: not a client's goroutine, not the Parker's
	// watcher, not the idle sweep.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > g0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after shutdown, %d before start:\n%s", n, g0, buf[:runtime.Stack(buf, true)])
	}
}
