package kv_test

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

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startRedises starts n redis-servers in parallel.
func startRedises(t testing.TB, n int, args ...string) []*testenv.Redis {
	t.Helper()
	out := make([]*testenv.Redis, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = testenv.StartRedis(t, testenv.RedisOptions{Args: args})
		}()
	}
	wg.Wait()
	for _, r := range out {
		if r == nil {
			t.FailNow() // StartRedis failed (or skipped) in a goroutine
		}
	}
	// Parallel starts can race for one free port: the loser exits while the winner
	// answers its readiness probe. Replace such duplicates, one at a time.
	seen := map[string]bool{}
	for i, r := range out {
		for seen[r.Addr()] || !r.Running() {
			r = testenv.StartRedis(t, testenv.RedisOptions{Args: args})
			out[i] = r
		}
		seen[r.Addr()] = true
	}
	// Stop them in parallel (this cleanup runs before testenv's own, one by one).
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, r := range out {
			wg.Add(1)
			go func() { defer wg.Done(); r.Stop() }()
		}
		wg.Wait()
	})
	return out
}

// poolYAML returns a pool section listening on a free port, with extra settings
// (indented YAML lines) and the servers named s0, s1, ...
func poolYAML(t testing.TB, name string, servers []*testenv.Redis, extra string) (yml, addr string) {
	t.Helper()
	addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: true\n", name, addr)
	b.WriteString(extra)
	b.WriteString("  servers:\n")
	for i, r := range servers {
		fmt.Fprintf(&b, "    - %s:1 s%d\n", r.Addr(), i)
	}
	return b.String(), addr
}

func parseConfig(t testing.TB, yml string) *nutyml.Config {
	t.Helper()
	cfg, err := nutyml.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml)
	}
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("KV_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy runs a proxy on cfg until the test ends.
func startProxy(t testing.TB, cfg *nutyml.Config, opts kv.Options) *kv.Proxy {
	t.Helper()
	opts.NewCodec = kvredis.NewCodecFunc(redis.Limits{})
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	p, err := kv.Start(cfg, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

func newClient(t testing.TB, addr string, opts ...func(*goredis.Options)) *goredis.Client {
	o := &goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, PoolSize: 8}
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func direct(t testing.TB, r *testenv.Redis) *goredis.Client {
	return newClient(t, r.Addr())
}

// rawConn is a plain connection for exact protocol checks.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	rd []byte
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one complete reply.
func (c *rawConn) reply() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		if n, err := redis.ReplyLen(c.rd, 0); err != nil {
			c.t.Fatal(err)
		} else if n > 0 {
			r := string(c.rd[:n])
			c.rd = c.rd[n:]
			return r
		}
		n, err := c.nc.Read(buf)
		c.rd = append(c.rd, buf[:n]...)
		if err != nil {
			c.t.Fatalf("read: %v (have %q)", err, c.rd)
		}
	}
}

func (c *rawConn) cmd(args ...string) string {
	c.t.Helper()
	c.send(string(redis.AppendCommandStrings(nil, args...)))
	return c.reply()
}

type redisOptions = goredis.Options

func itoa(n int) string { return fmt.Sprint(n) }
