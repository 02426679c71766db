package kvmemcache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvmemcache"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
	"github.com/poolsuite/poolsuite/sharding"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startMemcacheds starts n memcached servers in parallel, with distinct ports.
func startMemcacheds(t testing.TB, n int, args ...string) []*testenv.Memcached {
	t.Helper()
	out := make([]*testenv.Memcached, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = testenv.StartMemcached(t, args...)
		}()
	}
	wg.Wait()
	for _, m := range out {
		if m == nil {
			t.FailNow()
		}
	}
	seen := map[string]bool{}
	for i, m := range out {
		for seen[m.Addr()] || !m.Running() {
			m = testenv.StartMemcached(t, args...)
			out[i] = m
		}
		seen[m.Addr()] = true
		t.Cleanup(m.Thaw) // never leave a server stopped
	}
	return out
}

// poolYAML returns a memcached pool section listening on addr with extra settings
// (indented YAML lines) and the servers, named s0, s1, ... when named.
func poolYAML(name, addr string, servers []*testenv.Memcached, named bool, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n", name, addr)
	b.WriteString(extra)
	b.WriteString("  servers:\n")
	for i, m := range servers {
		if named {
			fmt.Fprintf(&b, "    - %s:1 s%d\n", m.Addr(), i)
		} else {
			fmt.Fprintf(&b, "    - %s:1\n", m.Addr())
		}
	}
	return b.String()
}

func freeAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }

func parseConfig(t testing.TB, yml string) *nutyml.Config {
	t.Helper()
	cfg, err := nutyml.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml)
	}
	return cfg
}

func testLogger() *slog.Logger {
	if os.Getenv("KV_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy runs kvproxy's engine with the memcached codec on cfg until the test ends.
func startProxy(t testing.TB, cfg *nutyml.Config, opts kv.Options) *kv.Proxy {
	t.Helper()
	opts.NewCodec = kvmemcache.NewCodecFunc(memcache.Limits{})
	opts.Logger = testLogger()
	p, err := kv.Start(cfg, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// picker returns, for a key, the index of the server the pool places it on.
func picker(t testing.TB, pc *nutyml.Pool) func(string) int {
	t.Helper()
	scfg, err := pc.ShardingConfig()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sharding.NewPool(scfg, pc.Shards())
	if err != nil {
		t.Fatal(err)
	}
	return func(k string) int { return sp.Pick([]byte(k)) }
}

// addrOf returns the address of the pool's shard i (the file's servers are sorted by
// name, as twemproxy sorts them, so shard i is not the i-th line).
func addrOf(cfg *nutyml.Config, i int) string { return cfg.Pools[0].Servers[i].Addr() }

// byAddr returns the memcached listening at addr.
func byAddr(t testing.TB, ms []*testenv.Memcached, addr string) *testenv.Memcached {
	t.Helper()
	for _, m := range ms {
		if m.Addr() == addr {
			return m
		}
	}
	t.Fatalf("no memcached at %s", addr)
	return nil
}

// keysByServer returns perServer keys with prefix for each of the pool's n servers.
func keysByServer(t testing.TB, pick func(string) int, n, perServer int, prefix string) [][]string {
	t.Helper()
	out := make([][]string, n)
	full := 0
	for i := 0; full < n; i++ {
		if i > 1_000_000 {
			t.Fatal("cannot find keys for every server")
		}
		k := fmt.Sprintf("%s%d", prefix, i)
		s := pick(k)
		if len(out[s]) < perServer {
			out[s] = append(out[s], k)
			if len(out[s]) == perServer {
				full++
			}
		}
	}
	return out
}

// textConn is a plain text-protocol connection for exact reply checks.
type textConn struct {
	t  testing.TB
	nc net.Conn
	rd []byte
}

func dialText(t testing.TB, addr string) *textConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &textConn{t: t, nc: nc}
}

func (c *textConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one complete text reply; err is the read error (io.EOF when the peer
// closed the connection) with what was read so far.
func (c *textConn) replyErr(timeout time.Duration) (string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var buf []byte
	for {
		if n, err := memcache.TextReplyLen(c.rd, memcache.Limits{}); err != nil {
			c.t.Fatalf("bad reply %q: %v", c.rd, err)
		} else if n > 0 {
			r := string(c.rd[:n])
			c.rd = c.rd[n:]
			return r, nil
		}
		if buf == nil {
			buf = make([]byte, 64<<10)
		}
		n, err := c.nc.Read(buf)
		c.rd = append(c.rd, buf[:n]...)
		if err != nil {
			return string(c.rd), err
		}
	}
}

func (c *textConn) reply() string {
	c.t.Helper()
	r, err := c.replyErr(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v (have %q)", err, r)
	}
	return r
}

func (c *textConn) do(req string) string {
	c.t.Helper()
	c.send(req)
	return c.reply()
}

// direct asks one memcached for key: its value, and whether it is there.
func direct(t testing.TB, m *testenv.Memcached, key string) (string, bool) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", m.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &textConn{t: t, nc: nc}
	r := c.do("get " + key + "\r\n")
	if r == "END\r\n" {
		return "", false
	}
	lines := strings.Split(r, "\r\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "VALUE "+key+" ") {
		t.Fatalf("direct get %s: %q", key, r)
	}
	return lines[1], true
}
