package kv_test

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// Load of TestServerConnections: clients × pipeline requests per round.
const (
	scClients  = 32
	scPipeline = 50
	scRounds   = 10
)

// pipeClient is a raw client connection usable from a goroutine: it reports errors
// instead of failing the test.
type pipeClient struct {
	nc  net.Conn
	buf []byte
}

func dialPipe(addr string) (*pipeClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &pipeClient{nc: nc}, nil
}

// pipeline sends cmds in one write and returns their replies in order, as raw RESP.
func (c *pipeClient) pipeline(cmds [][]string) ([]string, error) {
	var out []byte
	for _, args := range cmds {
		out = redis.AppendCommandStrings(out, args...)
	}
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.nc.Write(out); err != nil {
		return nil, err
	}
	replies := make([]string, 0, len(cmds))
	tmp := make([]byte, 16<<10)
	for len(replies) < len(cmds) {
		n, err := redis.ReplyLen(c.buf, 0)
		if err != nil {
			return replies, err
		}
		if n > 0 {
			replies = append(replies, string(c.buf[:n]))
			c.buf = c.buf[n:]
			continue
		}
		m, err := c.nc.Read(tmp)
		c.buf = append(c.buf, tmp[:m]...)
		if err != nil {
			return replies, err
		}
	}
	return replies, nil
}

// runClients runs f for every client at once and returns the first error.
func runClients(clients []*pipeClient, f func(i int, c *pipeClient) error) error {
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i, c) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// setGetRounds has client i set and read back its own keys with distinct values, in
// pipelines, and checks every reply against its request.
func setGetRounds(i int, c *pipeClient, tag string, rounds int) error {
	for round := 0; round < rounds; round++ {
		sets := make([][]string, scPipeline)
		gets := make([][]string, scPipeline)
		for j := range sets {
			key := fmt.Sprintf("c%d:k%d", i, j)
			sets[j] = []string{"SET", key, fmt.Sprintf("%s:%d:%d:%d", tag, i, j, round)}
			gets[j] = []string{"GET", key}
		}
		replies, err := c.pipeline(append(sets, gets...))
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		for j, r := range replies {
			want := "+OK\r\n"
			if j >= scPipeline {
				v := sets[j-scPipeline][2]
				want = fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)
			}
			if r != want {
				return fmt.Errorf("client %d round %d reply %d = %q, want %q", i, round, j, r, want)
			}
		}
	}
	return nil
}

// TestServerConnections: with server_connections: 4 the proxy opens exactly four
// connections to the server and spreads every client's requests over them; under many
// concurrent pipelining clients each reply stays matched to its request; and when one
// of the four connections is killed on the server, exactly the requests in flight on
// it fail, while the other three connections and their requests go on.
func TestServerConnections(t *testing.T) {
	rs := startRedises(t, 1)
	// No request here should time out, those held by CLIENT PAUSE (up to 20 s) included:
	// the timeout is above the pause, not near what a loaded machine takes.
	yml, addr := poolYAML(t, "sc", rs, "  server_connections: 4\n  timeout: 30000\n")
	p := startProxy(t, parseConfig(t, yml), kv.Options{StatsAddr: "127.0.0.1:0"})
	admin := dialRaw(t, rs[0].Addr())

	clients := make([]*pipeClient, scClients)
	for i := range clients {
		c, err := dialPipe(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.nc.Close() })
		clients[i] = c
	}

	// Many clients pipelining at once: replies matched, four connections.
	if err := runClients(clients, func(i int, c *pipeClient) error { return setGetRounds(i, c, "a", scRounds) }); err != nil {
		t.Fatal(err)
	}
	conns := clientsOf(t, admin)
	if len(conns) != 4 {
		t.Fatalf("proxy connections to the server = %d, want 4: %v", len(conns), conns)
	}
	if n := serverStat(t, p, "sc", "s0", "server_connections"); n != 4 {
		t.Fatalf("stats server_connections = %v, want 4", n)
	}

	// Hold every write on the server (CLIENT PAUSE WRITE) while each client sends a
	// pipeline of SETs, so that all of them are in flight: each client's on its own
	// connection, a quarter of the clients on each (they are given one in turn).
	if r := admin.cmd("CLIENT", "PAUSE", "20000", "WRITE"); r != "+OK\r\n" {
		t.Fatalf("CLIENT PAUSE: %q", r)
	}
	paused := true
	defer func() {
		if paused {
			admin.cmd("CLIENT", "UNPAUSE")
		}
	}()
	const total = scClients * scPipeline
	type outcome struct {
		key, val, reply string
	}
	results := make([][]outcome, scClients)
	done := make(chan error, 1)
	go func() {
		done <- runClients(clients, func(i int, c *pipeClient) error {
			cmds := make([][]string, scPipeline)
			for j := range cmds {
				cmds[j] = []string{"SET", fmt.Sprintf("c%d:p%d", i, j), fmt.Sprintf("p:%d:%d", i, j)}
			}
			replies, err := c.pipeline(cmds)
			if err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			for j, r := range replies {
				results[i] = append(results[i], outcome{cmds[j][1], cmds[j][2], r})
			}
			return nil
		})
	}()
	waitFor(t, 10*time.Second, func() bool { return serverStat(t, p, "sc", "s0", "out_queue") == total })
	eofBefore := serverStat(t, p, "sc", "s0", "server_eof")
	fwdBefore := poolStat(t, p, "sc", "forward_error")
	victim := conns[0]
	if r := admin.cmd("CLIENT", "KILL", "ID", victim.ID); r != ":1\r\n" {
		t.Fatalf("CLIENT KILL: %q", r)
	}
	// The proxy sees the break at once, while the others are still held.
	waitFor(t, 5*time.Second, func() bool { return serverStat(t, p, "sc", "s0", "server_eof") == eofBefore+1 })
	if r := admin.cmd("CLIENT", "UNPAUSE"); r != "+OK\r\n" {
		t.Fatalf("CLIENT UNPAUSE: %q", r)
	}
	paused = false
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("clients did not get their replies")
	}

	failed := 0
	for i, rs := range results {
		clientFailed := 0
		for _, o := range rs {
			stored := admin.cmd("GET", o.key)
			switch o.reply {
			case "+OK\r\n":
				if want := fmt.Sprintf("$%d\r\n%s\r\n", len(o.val), o.val); stored != want {
					t.Fatalf("%s answered OK but holds %q", o.key, stored)
				}
			case "-ERR unknown\r\n": // twemproxy's text for a connection the server closed
				clientFailed++
				if stored != "$-1\r\n" {
					t.Fatalf("%s failed but holds %q", o.key, stored)
				}
			default:
				t.Fatalf("%s: unexpected reply %q", o.key, o.reply)
			}
		}
		// A client's requests share one connection: all of them fail or none.
		if clientFailed != 0 && clientFailed != len(rs) {
			t.Fatalf("client %d: %d of its %d requests failed", i, clientFailed, len(rs))
		}
		failed += clientFailed
	}
	if failed != total/4 {
		t.Fatalf("%d requests failed, want the %d in flight on the killed connection", failed, total/4)
	}
	if n := poolStat(t, p, "sc", "forward_error"); n != fwdBefore+float64(failed) {
		t.Fatalf("forward_error = %v, want %v", n, fwdBefore+float64(failed))
	}

	// The clients go on; the other three connections were kept and a fourth replaces
	// the killed one.
	if err := runClients(clients, func(i int, c *pipeClient) error { return setGetRounds(i, c, "b", 2) }); err != nil {
		t.Fatal(err)
	}
	after := clientsOf(t, admin)
	if len(after) != 4 {
		t.Fatalf("proxy connections after the kill = %d, want 4: %v", len(after), after)
	}
	var kept []string
	for _, c := range after {
		kept = append(kept, c.ID)
	}
	for _, c := range conns[1:] {
		if !slices.Contains(kept, c.ID) {
			t.Fatalf("connection %s (%s) was not kept: now %v", c.ID, c.Addr, after)
		}
	}
	if slices.Contains(kept, victim.ID) {
		t.Fatalf("the killed connection %s is still listed", victim.ID)
	}
	if s := strings.TrimSpace(admin.cmd("DBSIZE")); s == ":0" {
		t.Fatal("no keys stored")
	}
}

// poolStat reads one pool field of the proxy's twemproxy stats.
func poolStat(t *testing.T, p *kv.Proxy, pool, field string) float64 {
	t.Helper()
	st := readStats(t, p.StatsAddr().String())
	pl, _ := st[pool].(map[string]any)
	v, _ := pl[field].(float64)
	return v
}
