package kv_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/sharding"
)

// keysByShard returns, for every server of the pool (as named s0, s1, ... in the
// file), keys that the pool places on it.
func keysByShard(t *testing.T, pc *nutyml.Pool, perShard int) map[string][]string {
	t.Helper()
	scfg, err := pc.ShardingConfig()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sharding.NewPool(scfg, pc.Shards())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for i := 0; len(out) < len(pc.Servers) || !enough(out, perShard); i++ {
		if i > 1_000_000 {
			t.Fatal("cannot find keys for every shard")
		}
		k := fmt.Sprint("key:", i)
		name := pc.Servers[sp.Pick([]byte(k))].Name
		if len(out[name]) < perShard {
			out[name] = append(out[name], k)
		}
	}
	return out
}

func enough(m map[string][]string, n int) bool {
	for _, v := range m {
		if len(v) < n {
			return false
		}
	}
	return true
}

func isRedisErr(err error, prefix string) bool {
	var re goredis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), prefix)
}

// TestFrozenShard freezes one shard (SIGSTOP: it accepts connections and never
// answers): its clients get "-ERR Connection timed out" within the timeout plus a margin, while
// clients of the other shards see no error and no slowdown. A healthy request held
// up by the frozen shard would wait the whole timeout; the timeout is long enough
// that half of it tells that apart from a loaded machine's scheduling delays.
func TestFrozenShard(t *testing.T) {
	rs := startRedises(t, 4)
	const timeout = 2 * time.Second
	yml, addr := poolYAML(t, "frozen", rs, "  hash: murmur\n  timeout: 2000\n")
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	keys := keysByShard(t, cfg.Pools[0], 20)
	ctx := context.Background()
	c := newClient(t, addr, func(o *goredis.Options) { o.PoolSize = 32 })
	for _, ks := range keys {
		for _, k := range ks {
			if err := c.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs[0].Freeze()
	t.Cleanup(rs[0].Thaw)

	type result struct {
		err error
	}
	done := make(chan result, 4)
	// Clients of healthy shards: bounded loops, every reply correct and quick.
	for _, name := range []string{"s1", "s2", "s3"} {
		go func() {
			for round := 0; round < 30; round++ {
				for _, k := range keys[name] {
					start := time.Now()
					v, err := c.Get(ctx, k).Result()
					if err != nil || v != k {
						done <- result{fmt.Errorf("healthy shard %s key %s: %q %v", name, k, v, err)}
						return
					}
					if d := time.Since(start); d > timeout/2 {
						done <- result{fmt.Errorf("healthy shard %s slowed to %v", name, d)}
						return
					}
				}
			}
			done <- result{}
		}()
	}
	// Clients of the frozen shard: "-ERR Connection timed out" within timeout + margin.
	go func() {
		for _, k := range keys["s0"][:5] {
			start := time.Now()
			err := c.Get(ctx, k).Err()
			d := time.Since(start)
			if !isRedisErr(err, "ERR Connection timed out") {
				done <- result{fmt.Errorf("frozen shard: err = %v", err)}
				return
			}
			if d > timeout+700*time.Millisecond {
				done <- result{fmt.Errorf("frozen shard answered after %v", d)}
				return
			}
		}
		done <- result{}
	}()
	for i := 0; i < 4; i++ {
		if r := <-done; r.err != nil {
			t.Error(r.err)
		}
	}
	// A split MGET touching the frozen shard: one error for the whole command, as a
	// go-redis redis.Error, no array mixing values and errors.
	mk := []string{keys["s1"][0], keys["s0"][0], keys["s2"][0]}
	if vals, err := c.MGet(ctx, mk...).Result(); !isRedisErr(err, "ERR Connection timed out") || vals != nil {
		t.Errorf("mget over frozen shard: %#v, %v; want the timeout as a redis.Error", vals, err)
	}
	// DEL over the frozen shard: one error for the whole command.
	if err := c.Del(ctx, mk...).Err(); !isRedisErr(err, "ERR Connection timed out") {
		t.Errorf("del over frozen shard: %v", err)
	}
	rs[0].Thaw()
	// Back to normal once thawed (the proxy reconnects on demand).
	waitFor(t, 5*time.Second, func() bool {
		v, err := c.Get(ctx, keys["s0"][1]).Result()
		return err == nil && v == keys["s0"][1]
	})
}

// waitFor polls cond with a short interval until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		<-tick.C
	}
}

// TestDeadShardMultiKeyOneError: with one of three servers down (nothing listens at
// its address), go-redis's MGET, DEL, UNLINK, EXISTS, TOUCH and MSET touching it fail
// as a whole with a redis.Error carrying "ERR Connection refused" (MGET gives no
// array whose elements a caller would assert to string), and the commands pipelined
// after them on the same connection are answered. The live servers' parts of a failed
// command still run, as in twemproxy.
func TestDeadShardMultiKeyOneError(t *testing.T) {
	rs := startRedises(t, 2)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	yml := "dead:\n  listen: " + addr + "\n  redis: true\n  hash: murmur\n  timeout: 500\n  servers:\n    - " +
		rs[0].Addr() + ":1 s0\n    - " + dead + ":1 s1\n    - " + rs[1].Addr() + ":1 s2\n"
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	keys := keysByShard(t, cfg.Pools[0], 1)
	a, d, b := keys["s0"][0], keys["s1"][0], keys["s2"][0]
	ctx := context.Background()
	c := newClient(t, addr, func(o *goredis.Options) { o.PoolSize = 1 })
	if err := c.MSet(ctx, a, "va", b, "vb").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := c.MGet(ctx, a, d, b).Result()
	if !isRedisErr(err, "ERR Connection refused") || vals != nil {
		t.Fatalf("mget with a dead shard: %#v, %v; want one redis.Error", vals, err)
	}
	cmds, _ := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.MGet(ctx, a, b, d)
		p.Get(ctx, a)
		p.Del(ctx, b, d)
		p.Unlink(ctx, d, a)
		p.Exists(ctx, a, d, b)
		p.Touch(ctx, a, d)
		p.MSet(ctx, a, "x", d, "y")
		p.MGet(ctx, b, a)
		return nil
	})
	if len(cmds) != 8 {
		t.Fatalf("pipeline: %d replies", len(cmds))
	}
	for i, cmd := range cmds {
		switch i {
		case 1:
			if v, err := cmd.(*goredis.StringCmd).Result(); err != nil || v != "va" {
				t.Errorf("get after the failed mget: %q, %v", v, err)
			}
		case 7:
			// The live servers' parts of the failed commands ran: b deleted, a set.
			if v, err := cmd.(*goredis.SliceCmd).Result(); err != nil || len(v) != 2 || v[0] != nil || v[1] != "x" {
				t.Errorf("mget of live shards after the failures: %#v, %v", v, err)
			}
		default:
			if !isRedisErr(cmd.Err(), "ERR Connection refused") {
				t.Errorf("%v with a dead shard: %v; want one redis.Error", cmd.Args(), cmd.Err())
			}
		}
	}
}

// TestKilledAndRestartedShard kills a shard: its keys fail fast with an error, other
// shards are unaffected; after a restart its keys work again.
func TestKilledAndRestartedShard(t *testing.T) {
	rs := startRedises(t, 3)
	yml, addr := poolYAML(t, "killed", rs, "  hash: murmur\n  timeout: 500\n")
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	keys := keysByShard(t, cfg.Pools[0], 10)
	ctx := context.Background()
	c := newClient(t, addr)
	for _, ks := range keys {
		for _, k := range ks {
			if err := c.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs[1].Kill()
	for _, k := range keys["s1"] {
		start := time.Now()
		err := c.Get(ctx, k).Err()
		// Refused, or the broken connection's "unknown" / "reset" (twemproxy's texts).
		if !isRedisErr(err, "ERR Connection refused") && !isRedisErr(err, "ERR unknown") && !isRedisErr(err, "ERR Connection reset by peer") {
			t.Fatalf("killed shard: err = %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("killed shard answered after %v", d)
		}
	}
	for _, name := range []string{"s0", "s2"} {
		for _, k := range keys[name] {
			if v, err := c.Get(ctx, k).Result(); err != nil || v != k {
				t.Fatalf("healthy shard: %q %v", v, err)
			}
		}
	}
	rs[1].Restart(t)
	for _, k := range keys["s1"] {
		if err := c.Set(ctx, k, "again", 0).Err(); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	if n, _ := direct(t, rs[1]).DBSize(ctx).Result(); n != int64(len(keys["s1"])) {
		t.Fatalf("restarted shard holds %d keys", n)
	}
}

// TestEjectionAndReturn: with auto_eject_hosts a dead shard's keys move to the other
// servers after server_failure_limit failures, and come back after
// server_retry_timeout once it is up again. The stats port counts the ejection.
func TestEjectionAndReturn(t *testing.T) {
	rs := startRedises(t, 3)
	yml, addr := poolYAML(t, "eject", rs, "  hash: murmur\n  timeout: 300\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 3000\n")
	cfg := parseConfig(t, yml)
	p := startProxy(t, cfg, kv.Options{StatsAddr: "127.0.0.1:0"})
	keys := keysByShard(t, cfg.Pools[0], 5)
	ctx := context.Background()
	c := newClient(t, addr)
	k := keys["s2"][0]
	rs[2].Kill()
	// Two failures eject it; then the key lands elsewhere.
	failures := 0
	for i := 0; i < 5; i++ {
		if err := c.Set(ctx, k, "moved", 0).Err(); err != nil {
			failures++
			continue
		}
		break
	}
	if failures != 2 {
		t.Fatalf("failures before ejection = %d, want 2", failures)
	}
	found := false
	for _, r := range rs[:2] {
		if v, _ := direct(t, r).Get(ctx, k).Result(); v == "moved" {
			found = true
		}
	}
	if !found {
		t.Fatal("key not rehashed onto a live server")
	}
	st := readStats(t, p.StatsAddr().String())
	pool := st["eject"].(map[string]any)
	if pool["server_ejects"].(float64) < 1 {
		t.Fatalf("server_ejects = %v", pool["server_ejects"])
	}
	if pool["s2"].(map[string]any)["server_ejected_at"].(float64) == 0 {
		t.Fatal("server_ejected_at not set")
	}
	rs[2].Restart(t)
	waitFor(t, 20*time.Second, func() bool {
		_ = c.Set(ctx, k, "back", 0).Err()
		v, _ := direct(t, rs[2]).Get(ctx, k).Result()
		return v == "back"
	})
}

func readStats(t *testing.T, addr string) map[string]any {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("stats %q: %v", b, err)
	}
	return m
}

// TestAllShardsDownThenRestart: with every server of a Redis pool down, each request
// gets an error at once (no hang) and the client connection stays usable; once the
// servers are restarted the same connection is served again.
func TestAllShardsDownThenRestart(t *testing.T) {
	rs := startRedises(t, 2)
	yml, addr := poolYAML(t, "alldown", rs, "  hash: murmur\n  timeout: 1000\n")
	startProxy(t, parseConfig(t, yml), kv.Options{})
	ctx := context.Background()
	c := newClient(t, addr, func(o *goredis.Options) { o.PoolSize = 1 })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		r.Kill()
	}
	for i := 0; i < 5; i++ {
		start := time.Now()
		if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err == nil {
			t.Fatal("SET with every server down succeeded")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("SET with every server down answered after %v", d)
		}
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the client connection is no longer usable: %v", err)
	}
	for _, r := range rs {
		r.Restart(t)
	}
	waitFor(t, 20*time.Second, func() bool { return c.Set(ctx, "k", "back", 0).Err() == nil })
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "back" {
		t.Fatalf("GET after restart: %q %v", v, err)
	}
}
