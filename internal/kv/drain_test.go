package kv_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// busyScript keeps its server busy for ARGV[1] microseconds (by the server's clock),
// then sets KEYS[1] to ARGV[2] and returns ARGV[2]: a request that is slow on the
// server only.
const busyScript = `
local t0 = redis.call('TIME')
local start = tonumber(t0[1]) * 1000000 + tonumber(t0[2])
while true do
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000000 + tonumber(t[2]) - start >= tonumber(ARGV[1]) then break end
end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
`

// redisClient is one row of CLIENT LIST.
type redisClient struct {
	ID    string
	Addr  string
	Flags string
}

// clientsOf lists the connections of r other than the one asking (CLIENT LIST minus
// its own row), over admin, a direct connection to r.
func clientsOf(t *testing.T, admin *rawConn) []redisClient {
	t.Helper()
	self := strings.TrimSpace(strings.TrimPrefix(admin.cmd("CLIENT", "ID"), ":"))
	var out []redisClient
	for _, line := range strings.Split(bulkString(t, admin.cmd("CLIENT", "LIST")), "\n") {
		var c redisClient
		for _, field := range strings.Fields(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				c.ID = v
			case "addr":
				c.Addr = v
			case "flags":
				c.Flags = v
			}
		}
		if c.ID != "" && c.ID != self {
			out = append(out, c)
		}
	}
	return out
}

// bulkString returns the text of a RESP bulk string reply.
func bulkString(t *testing.T, reply string) string {
	t.Helper()
	head, body, ok := strings.Cut(reply, "\r\n")
	if !ok || !strings.HasPrefix(head, "$") {
		t.Fatalf("not a bulk string: %q", reply)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n > len(body) {
		t.Fatalf("bad bulk string: %q", reply)
	}
	return body[:n]
}

// TestReloadDrainsRemovedServer: a server removed by a reload while a slow request is
// in flight on it gets no new requests (its keys go to the remaining server at once,
// without waiting for the slow one), the slow request completes with its real reply,
// and the proxy's connection to the removed server closes as soon as that reply is in,
// long before the grace period.
func TestReloadDrainsRemovedServer(t *testing.T) {
	rs := startRedises(t, 2)
	yml, addr := poolYAML(t, "dr", rs, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 5000\n")
	cfg := parseConfig(t, yml)
	p := startProxy(t, cfg, kv.Options{StatsAddr: "127.0.0.1:0", ReloadGrace: time.Minute})
	ctx := context.Background()
	slowKey := keysByShard(t, cfg.Pools[0], 1)["s0"][0]

	c := newClient(t, addr)
	if err := c.Set(ctx, slowKey, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	admin := dialRaw(t, rs[0].Addr())
	if n := len(clientsOf(t, admin)); n != 1 {
		t.Fatalf("proxy connections to s0 = %d, want 1", n)
	}

	slow := startSlowEval(ctx, c, slowKey, "slow-done")
	waitFor(t, 10*time.Second, func() bool { return serverStat(t, p, "dr", "s0", "out_queue") == 1 })

	yml2 := strings.Replace(yml, "    - "+rs[0].Addr()+":1 s0\n", "", 1)
	if err := p.Reload(parseConfig(t, yml2)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// The removed server's keys now live on s1, and do not wait for s0.
	if err := c.Set(ctx, slowKey, "after", 0).Err(); err != nil {
		t.Fatalf("set after reload: %v", err)
	}
	select {
	case r := <-slow:
		t.Fatalf("a request for s0's key waited for s0's slow request (%v, %v)", r.val, r.err)
	default:
	}
	if v, err := direct(t, rs[1]).Get(ctx, slowKey).Result(); err != nil || v != "after" {
		t.Fatalf("s1 %s = %q, %v; want \"after\"", slowKey, v, err)
	}

	r := awaitSlow(t, slow)
	if r.err != nil || r.val != "slow-done" {
		t.Fatalf("slow request = %v, %v; want its reply \"slow-done\"", r.val, r.err)
	}
	waitFor(t, 3*time.Second, func() bool { return len(clientsOf(t, admin)) == 0 })
	if v := bulkString(t, admin.cmd("GET", slowKey)); v != "slow-done" {
		t.Fatalf("s0 %s = %q", slowKey, v)
	}
	if v, err := c.Get(ctx, slowKey).Result(); err != nil || v != "after" {
		t.Fatalf("get through the proxy = %q, %v", v, err)
	}
}

// TestReloadDrainsRemovedPool: a pool removed by a reload while a slow request is in
// flight stops accepting at once, the request completes with its real reply, and the
// pool's server connection closes right after it; the other pool is untouched.
func TestReloadDrainsRemovedPool(t *testing.T) {
	rs := startRedises(t, 2)
	ya, addrA := poolYAML(t, "a", rs[:1], "  timeout: 5000\n")
	yb, addrB := poolYAML(t, "b", rs[1:], "  timeout: 5000\n")
	p := startProxy(t, parseConfig(t, ya+yb), kv.Options{StatsAddr: "127.0.0.1:0", ReloadGrace: time.Minute})
	ctx := context.Background()
	ca, cb := newClient(t, addrA), newClient(t, addrB)
	if err := ca.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	admin := dialRaw(t, rs[0].Addr())
	if n := len(clientsOf(t, admin)); n != 1 {
		t.Fatalf("proxy connections to a's server = %d, want 1", n)
	}

	slow := startSlowEval(ctx, ca, "k", "slow-done")
	waitFor(t, 10*time.Second, func() bool { return serverStat(t, p, "a", "s0", "out_queue") == 1 })
	if err := p.Reload(parseConfig(t, yb)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if nc, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
		nc.Close()
		t.Fatal("the removed pool still accepts clients")
	}
	if err := cb.Set(ctx, "k", "b", 0).Err(); err != nil {
		t.Fatalf("other pool: %v", err)
	}
	r := awaitSlow(t, slow)
	if r.err != nil || r.val != "slow-done" {
		t.Fatalf("slow request = %v, %v; want its reply \"slow-done\"", r.val, r.err)
	}
	waitFor(t, 3*time.Second, func() bool { return len(clientsOf(t, admin)) == 0 })
}

type evalResult struct {
	val any
	err error
}

// startSlowEval runs busyScript (one second) on key through c in the background.
func startSlowEval(ctx context.Context, c *goredis.Client, key, val string) <-chan evalResult {
	out := make(chan evalResult, 1)
	go func() {
		v, err := c.Eval(ctx, busyScript, []string{key}, 1_000_000, val).Result()
		out <- evalResult{v, err}
	}()
	return out
}

func awaitSlow(t *testing.T, slow <-chan evalResult) evalResult {
	t.Helper()
	select {
	case r := <-slow:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not complete")
		return evalResult{}
	}
}

// serverStat reads one server field of the proxy's twemproxy stats.
func serverStat(t *testing.T, p *kv.Proxy, pool, server, field string) float64 {
	t.Helper()
	st := readStats(t, p.StatsAddr().String())
	pl, _ := st[pool].(map[string]any)
	sv, _ := pl[server].(map[string]any)
	v, _ := sv[field].(float64)
	return v
}
