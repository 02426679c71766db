package kv_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/redis"
	"github.com/poolsuite/poolsuite/sharding"
)

// script is every command the proxy supports, with arguments. Keys used together by
// one command share a hash tag. Commands marked typeOnly give replies that vary from
// run to run (random picks, clocks): only the reply type is compared.
var script = []struct {
	args      []string
	typeOnly  bool
	unordered bool // set replies: same elements in any order (compared by length)
}{
	{args: []string{"SET", "str", "hello"}},
	{args: []string{"GET", "str"}},
	{args: []string{"APPEND", "str", " world"}},
	{args: []string{"STRLEN", "str"}},
	{args: []string{"GETRANGE", "str", "0", "4"}},
	{args: []string{"SETRANGE", "str", "0", "J"}},
	{args: []string{"GETSET", "str", "v2"}},
	{args: []string{"GETEX", "str", "EX", "1000"}},
	{args: []string{"GETDEL", "str"}},
	{args: []string{"SETNX", "cnt", "10"}},
	{args: []string{"INCR", "cnt"}},
	{args: []string{"INCRBY", "cnt", "5"}},
	{args: []string{"DECR", "cnt"}},
	{args: []string{"DECRBY", "cnt", "2"}},
	{args: []string{"INCRBYFLOAT", "cnt", "1.5"}},
	{args: []string{"SETEX", "ex1", "1000", "v"}},
	{args: []string{"PSETEX", "ex2", "1000000", "v"}},
	{args: []string{"TTL", "ex1"}},
	{args: []string{"PTTL", "ex2"}, typeOnly: true},
	{args: []string{"EXPIRE", "cnt", "1000"}},
	{args: []string{"EXPIREAT", "ex1", "4000000000"}},
	{args: []string{"PEXPIRE", "ex2", "1000000"}},
	{args: []string{"PEXPIREAT", "ex2", "4000000000000"}},
	{args: []string{"PERSIST", "cnt"}},
	{args: []string{"TYPE", "cnt"}},
	{args: []string{"SETBIT", "bits", "7", "1"}},
	{args: []string{"GETBIT", "bits", "7"}},
	{args: []string{"BITCOUNT", "bits"}},
	{args: []string{"BITPOS", "bits", "1"}},
	{args: []string{"BITFIELD", "bits", "GET", "u8", "0"}},
	{args: []string{"DUMP", "bits"}},
	{args: []string{"SET", "{t}src", "x"}},
	{args: []string{"COPY", "{t}src", "{t}dst"}},
	{args: []string{"MOVE", "{t}dst", "1"}},
	{args: []string{"RESTORE", "restored", "0", "\x00\x01x\n\x00\xcb\x8c\xb0\x1f\x94\x87\xa0\x0f"}, typeOnly: true},
	{args: []string{"MSET", "m1", "1", "m2", "2", "m3", "3", "m4", "4", "m5", "5", "m6", "6", "m7", "7", "m8", "8"}},
	{args: []string{"MGET", "m1", "m2", "nosuch", "m3", "m4", "m5", "m6", "m7", "m8"}},
	{args: []string{"EXISTS", "m1", "m2", "nosuch", "m3", "m1"}},
	{args: []string{"TOUCH", "m1", "m2", "nosuch", "m3"}},
	{args: []string{"DEL", "m1", "m2", "nosuch"}},
	{args: []string{"UNLINK", "m3", "m4", "nosuch"}},
	{args: []string{"HSET", "h", "f1", "v1", "f2", "v2"}},
	{args: []string{"HMSET", "h", "f3", "3"}},
	{args: []string{"HGET", "h", "f1"}},
	{args: []string{"HMGET", "h", "f1", "nosuch", "f2"}},
	{args: []string{"HGETALL", "h"}},
	{args: []string{"HKEYS", "h"}},
	{args: []string{"HVALS", "h"}},
	{args: []string{"HLEN", "h"}},
	{args: []string{"HEXISTS", "h", "f1"}},
	{args: []string{"HINCRBY", "h", "f3", "2"}},
	{args: []string{"HINCRBYFLOAT", "h", "f3", "0.5"}},
	{args: []string{"HSETNX", "h", "f4", "x"}},
	{args: []string{"HSTRLEN", "h", "f1"}},
	{args: []string{"HRANDFIELD", "h"}, typeOnly: true},
	{args: []string{"HSCAN", "h", "0"}},
	{args: []string{"HDEL", "h", "f4"}},
	{args: []string{"RPUSH", "{l}a", "a", "b", "c"}},
	{args: []string{"LPUSH", "{l}a", "z"}},
	{args: []string{"LPUSHX", "{l}a", "y"}},
	{args: []string{"RPUSHX", "{l}a", "d"}},
	{args: []string{"LRANGE", "{l}a", "0", "-1"}},
	{args: []string{"LINDEX", "{l}a", "1"}},
	{args: []string{"LLEN", "{l}a"}},
	{args: []string{"LINSERT", "{l}a", "BEFORE", "b", "bb"}},
	{args: []string{"LSET", "{l}a", "0", "Y"}},
	{args: []string{"LREM", "{l}a", "1", "bb"}},
	{args: []string{"LPOS", "{l}a", "c"}},
	{args: []string{"LTRIM", "{l}a", "0", "4"}},
	{args: []string{"LPOP", "{l}a"}},
	{args: []string{"RPOP", "{l}a"}},
	{args: []string{"RPOPLPUSH", "{l}a", "{l}b"}},
	{args: []string{"LMOVE", "{l}a", "{l}b", "LEFT", "RIGHT"}},
	{args: []string{"SADD", "{s}a", "a", "b", "c"}},
	{args: []string{"SADD", "{s}b", "b", "c", "d"}},
	{args: []string{"SCARD", "{s}a"}},
	{args: []string{"SISMEMBER", "{s}a", "a"}},
	{args: []string{"SMISMEMBER", "{s}a", "a", "x"}},
	{args: []string{"SMEMBERS", "{s}a"}, unordered: true},
	{args: []string{"SRANDMEMBER", "{s}a"}, typeOnly: true},
	{args: []string{"SDIFF", "{s}a", "{s}b"}, unordered: true},
	{args: []string{"SDIFFSTORE", "{s}c", "{s}a", "{s}b"}},
	{args: []string{"SINTER", "{s}a", "{s}b"}, unordered: true},
	{args: []string{"SINTERSTORE", "{s}c", "{s}a", "{s}b"}},
	{args: []string{"SUNION", "{s}a", "{s}b"}, unordered: true},
	{args: []string{"SUNIONSTORE", "{s}c", "{s}a", "{s}b"}},
	{args: []string{"SMOVE", "{s}a", "{s}b", "a"}},
	{args: []string{"SSCAN", "{s}b", "0"}, unordered: true},
	{args: []string{"SREM", "{s}b", "d"}},
	{args: []string{"SADD", "one", "x"}},
	{args: []string{"SPOP", "one"}},
	{args: []string{"ZADD", "{z}a", "1", "a", "2", "b", "3", "c"}},
	{args: []string{"ZADD", "{z}b", "1", "b", "5", "d"}},
	{args: []string{"ZCARD", "{z}a"}},
	{args: []string{"ZCOUNT", "{z}a", "1", "2"}},
	{args: []string{"ZINCRBY", "{z}a", "2", "a"}},
	{args: []string{"ZLEXCOUNT", "{z}a", "-", "+"}},
	{args: []string{"ZMSCORE", "{z}a", "a", "x"}},
	{args: []string{"ZRANGE", "{z}a", "0", "-1", "WITHSCORES"}},
	{args: []string{"ZRANGEBYLEX", "{z}a", "-", "+"}},
	{args: []string{"ZRANGEBYSCORE", "{z}a", "1", "3"}},
	{args: []string{"ZRANK", "{z}a", "b"}},
	{args: []string{"ZREVRANK", "{z}a", "b"}},
	{args: []string{"ZREVRANGE", "{z}a", "0", "-1"}},
	{args: []string{"ZREVRANGEBYLEX", "{z}a", "+", "-"}},
	{args: []string{"ZREVRANGEBYSCORE", "{z}a", "3", "1"}},
	{args: []string{"ZSCORE", "{z}a", "a"}},
	{args: []string{"ZSCAN", "{z}a", "0"}},
	{args: []string{"ZDIFF", "2", "{z}a", "{z}b"}},
	{args: []string{"ZDIFFSTORE", "{z}c", "2", "{z}a", "{z}b"}},
	{args: []string{"ZINTER", "2", "{z}a", "{z}b"}},
	{args: []string{"ZINTERSTORE", "{z}c", "2", "{z}a", "{z}b"}},
	{args: []string{"ZUNION", "2", "{z}a", "{z}b"}},
	{args: []string{"ZUNIONSTORE", "{z}c", "2", "{z}a", "{z}b"}},
	{args: []string{"ZRANGESTORE", "{z}d", "{z}a", "0", "1"}},
	{args: []string{"ZRANDMEMBER", "{z}d"}, typeOnly: true},
	{args: []string{"ZREM", "{z}c", "d"}},
	{args: []string{"ZREMRANGEBYRANK", "{z}c", "0", "0"}},
	{args: []string{"ZREMRANGEBYLEX", "{z}b", "[a", "[b"}},
	{args: []string{"ZREMRANGEBYSCORE", "{z}b", "0", "1"}},
	{args: []string{"ZPOPMIN", "{z}a"}},
	{args: []string{"ZPOPMAX", "{z}a"}},
	{args: []string{"PFADD", "{p}a", "x", "y"}},
	{args: []string{"PFADD", "{p}b", "z"}},
	{args: []string{"PFCOUNT", "{p}a"}},
	{args: []string{"PFMERGE", "{p}a", "{p}b"}},
	{args: []string{"GEOADD", "{g}a", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"}},
	{args: []string{"GEODIST", "{g}a", "Palermo", "Catania", "km"}},
	{args: []string{"GEOHASH", "{g}a", "Palermo"}},
	{args: []string{"GEOPOS", "{g}a", "Palermo"}},
	{args: []string{"GEORADIUS", "{g}a", "15", "37", "200", "km"}},
	{args: []string{"GEORADIUSBYMEMBER", "{g}a", "Palermo", "200", "km"}},
	{args: []string{"GEOSEARCH", "{g}a", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "ASC"}},
	{args: []string{"GEOSEARCHSTORE", "{g}b", "{g}a", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km"}},
	{args: []string{"RPUSH", "nums", "3", "1", "2"}},
	{args: []string{"SORT", "nums"}},
	{args: []string{"EVAL", "return redis.call('get', KEYS[1])", "1", "cnt"}},
	{args: []string{"EVALSHA", sha1hex("return redis.call('get', KEYS[1])"), "1", "cnt"}},
	{args: []string{"EVAL", "return {KEYS[1], KEYS[2]}", "2", "{e}a", "{e}b"}},
	{args: []string{"COMMAND", "COUNT"}},
	{args: []string{"LOLWUT", "VERSION", "5"}, typeOnly: true},
	{args: []string{"PING"}},
	{args: []string{"PING", "hi"}},
	{args: []string{"ECHO", "hi"}},
	{args: []string{"SELECT", "0"}},
	{args: []string{"GET"}},
}

func sha1hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestEveryCommand runs every supported command through the proxy over 16 shards and
// directly against one reference redis-server, and compares the replies byte for byte;
// then checks every key is on the shard that owns it and nowhere else.
func TestEveryCommand(t *testing.T) {
	rs := startRedises(t, 17)
	ref, shards := rs[16], rs[:16]
	yml, addr := poolYAML(t, "every", shards, "  hash: murmur\n  hash_tag: \"{}\"\n")
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})

	px, rf := dialRaw(t, addr), dialRaw(t, ref.Addr())
	for _, c := range script {
		got, want := px.cmd(c.args...), rf.cmd(c.args...)
		if c.typeOnly {
			got, want = got[:1], want[:1]
		}
		if c.unordered && len(got) == len(want) {
			got = want
		}
		if got != want {
			t.Errorf("%q: proxy %q, redis %q", c.args, got, want)
		}
	}

	// Placement: every key of the reference is on its owner only.
	scfg, err := cfg.Pools[0].ShardingConfig()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sharding.NewPool(scfg, cfg.Pools[0].Shards())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys, err := direct(t, ref).Keys(ctx, "*").Result()
	if err != nil || len(keys) < 20 {
		t.Fatalf("reference keys: %d %v", len(keys), err)
	}
	clients := make([]*goredis.Client, len(shards))
	for i, s := range shards {
		clients[i] = direct(t, s)
	}
	// Servers are in twemproxy's order in cfg; map names back to our processes.
	byName := map[string]int{}
	for i := range shards {
		byName[fmt.Sprintf("s%d", i)] = i
	}
	for _, k := range keys {
		owner := byName[cfg.Pools[0].Servers[sp.Pick([]byte(k))].Name]
		for i, c := range clients {
			n, err := c.Exists(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if (i == owner) != (n == 1) {
				t.Errorf("key %q: on shard %d = %v, owner %d", k, i, n == 1, owner)
			}
		}
	}

	// Errors and the connection staying usable.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"KEYS", "*"}, "-ERR unsupported command 'KEYS'\r\n"},
		{[]string{"subscribe", "x"}, "-ERR unsupported command 'subscribe'\r\n"},
		{[]string{"SELECT", "1"}, "-ERR"},
		{[]string{"EVAL", "return 1", "2", "a", "b"}, "-ERR EVAL keys live on different servers"},
		{[]string{"EVAL", "return 1", "0"}, "-ERR EVAL without keys"},
		{[]string{"AUTH", "x"}, "-ERR Client sent AUTH, but no password is set\r\n"},
		{[]string{"MSET", "a", "1", "b"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"PING"}, "+PONG\r\n"},
	} {
		if got := px.cmd(c.args...); !strings.HasPrefix(got, c.want) {
			t.Errorf("%q = %q, want prefix %q", c.args, got, c.want)
		}
	}
	// Inline commands.
	px.send("SET inl 42\r\nGET inl\r\n")
	if a, b := px.reply(), px.reply(); a != "+OK\r\n" || b != "$2\r\n42\r\n" {
		t.Errorf("inline: %q %q", a, b)
	}
	if got := px.cmd("QUIT"); got != "+OK\r\n" {
		t.Errorf("quit = %q", got)
	}

	// redis-cli as a client.
	cli := testenv.LookPath(t, "redis-cli")
	host, port, _ := strings.Cut(addr, ":")
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "cli", "v"); got != "OK" {
		t.Errorf("redis-cli set = %q", got)
	}
	if got := run("MGET", "cli", "nosuch", "m5"); got != "v\n\n5" {
		t.Errorf("redis-cli mget = %q", got)
	}
	if got := run("FLUSHDB"); !strings.Contains(got, "unsupported command 'FLUSHDB'") {
		t.Errorf("redis-cli flushdb = %q", got)
	}
}

// TestPipelines sends pipelines of thousands of mixed commands with go-redis, split
// commands included, and checks every reply.
func TestPipelines(t *testing.T) {
	rs := startRedises(t, 16)
	// Deep pipelines, not timeouts, are under test: the default 1 s can pass while a
	// loaded machine works through the pipeline.
	yml, addr := poolYAML(t, "pipe", rs, "  hash: fnv1a_64\n  distribution: modula\n  timeout: 10000\n")
	startProxy(t, parseConfig(t, yml), kv.Options{})
	ctx := context.Background()
	c := newClient(t, addr)
	const n = 5000
	pipe := c.Pipeline()
	for i := 0; i < n; i++ {
		pipe.Set(ctx, fmt.Sprint("p", i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	pipe = c.Pipeline()
	gets := make([]*goredis.StringCmd, n)
	mgets := make([]*goredis.SliceCmd, n/10)
	incrs := make([]*goredis.IntCmd, n)
	for i := 0; i < n; i++ {
		gets[i] = pipe.Get(ctx, fmt.Sprint("p", i))
		incrs[i] = pipe.Incr(ctx, fmt.Sprint("p", i))
		if i%10 == 0 {
			keys := make([]string, 10)
			for j := range keys {
				keys[j] = fmt.Sprint("p", i+j)
			}
			mgets[i/10] = pipe.MGet(ctx, keys...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if v, err := gets[i].Int(); err != nil || v != i {
			t.Fatalf("get %d = %d %v", i, v, err)
		}
		if v, err := incrs[i].Result(); err != nil || v != int64(i+1) {
			t.Fatalf("incr %d = %d %v", i, v, err)
		}
	}
	for i, m := range mgets {
		vals, err := m.Result()
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range vals {
			// The MGET of i*10 comes after GET/INCR of i*10 but before those of later keys.
			want := fmt.Sprint(i*10 + j)
			if j == 0 {
				want = fmt.Sprint(i*10 + 1)
			}
			if v != want {
				t.Fatalf("mget %d[%d] = %v, want %s", i, j, v, want)
			}
		}
	}
	// Concurrent clients with pipelines.
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			p := c.Pipeline()
			for i := 0; i < 1000; i++ {
				p.Set(ctx, fmt.Sprint("w", w, ":", i), i, 0)
				p.Get(ctx, fmt.Sprint("w", w, ":", i))
			}
			cmds, err := p.Exec(ctx)
			if err == nil {
				for i := 1; i < len(cmds); i += 2 {
					if v, _ := cmds[i].(*goredis.StringCmd).Int(); v != i/2 {
						err = fmt.Errorf("worker %d: get %d = %d", w, i/2, v)
						break
					}
				}
			}
			errs <- err
		}()
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	_ = redis.Limits{}
}
