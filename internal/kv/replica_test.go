package kv_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// TestReplicaFailover runs two shards, each a primary with a real replica
// (replicaof). With read_policy prefer-primary, killing a primary sends its reads to
// the replica, its writes fail with a clear error, the other shard is unaffected, and
// everything recovers once the primary is back.
func TestReplicaFailover(t *testing.T) {
	prim := startRedises(t, 2, "--repl-diskless-sync-delay", "0")
	reps := startRedises(t, 2)
	ctx := context.Background()
	for i, r := range reps {
		host, port, _ := strings.Cut(prim[i].Addr(), ":")
		if err := direct(t, r).SlaveOf(ctx, host, port).Err(); err != nil {
			t.Fatal(err)
		}
	}
	extra := fmt.Sprintf("  hash: murmur\n  timeout: 300\n  server_failure_limit: 1\n  server_retry_timeout: 500\n  read_policy: prefer-primary\n  replicas:\n    s0:\n      - %s\n    s1:\n      - %s\n", reps[0].Addr(), reps[1].Addr())
	yml, addr := poolYAML(t, "rep", prim, extra)
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	keys := keysByShard(t, cfg.Pools[0], 5)
	c := newClient(t, addr)
	for _, ks := range keys {
		for _, k := range ks {
			if err := c.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait for replication with WAIT on each primary.
	for _, p := range prim {
		waitFor(t, 10*time.Second, func() bool {
			n, err := direct(t, p).Do(ctx, "WAIT", 1, 1000).Int()
			return err == nil && n == 1
		})
	}
	for _, ks := range keys {
		for _, k := range ks {
			waitFor(t, 10*time.Second, func() bool {
				for _, r := range reps {
					if v, _ := direct(t, r).Get(ctx, k).Result(); v == k {
						return true
					}
				}
				return false
			})
		}
	}
	prim[0].Kill()
	// The first read may meet the dead primary (one failure ejects it); then reads
	// come from the replica.
	_ = c.Get(ctx, keys["s0"][0]).Err()
	for _, k := range keys["s0"] {
		if v, err := c.Get(ctx, k).Result(); err != nil || v != k {
			t.Fatalf("read from replica: %q %v", v, err)
		}
	}
	if err := c.Set(ctx, keys["s0"][0], "x", 0).Err(); !isRedisErr(err, "ERR primary down") {
		t.Fatalf("write with primary down: %v", err)
	}
	for _, k := range keys["s1"] {
		if err := c.Set(ctx, k, k+"!", 0).Err(); err != nil {
			t.Fatalf("other shard write: %v", err)
		}
	}
	prim[0].Restart(t)
	waitFor(t, 5*time.Second, func() bool {
		return c.Set(ctx, keys["s0"][0], "recovered", 0).Err() == nil
	})
	if v, err := c.Get(ctx, keys["s0"][0]).Result(); err != nil || v != "recovered" {
		t.Fatalf("after recovery: %q %v", v, err)
	}
}

// TestReadPolicyReplica sends reads to replicas only.
func TestReadPolicyReplica(t *testing.T) {
	prim := startRedises(t, 1)
	reps := startRedises(t, 1)
	ctx := context.Background()
	// Not replicating: a value only on the replica shows where reads go.
	if err := direct(t, reps[0]).Set(ctx, "where", "replica", 0).Err(); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("  read_policy: replica\n  replicas:\n    s0:\n      - %s\n", reps[0].Addr())
	yml, addr := poolYAML(t, "rp", prim, extra)
	startProxy(t, parseConfig(t, yml), kv.Options{})
	c := newClient(t, addr)
	if v, err := c.Get(ctx, "where").Result(); err != nil || v != "replica" {
		t.Fatalf("get = %q %v", v, err)
	}
	if err := c.Set(ctx, "w", "primary", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := direct(t, prim[0]).Get(ctx, "w").Result(); v != "primary" {
		t.Fatalf("write went elsewhere: %q", v)
	}
}

// TestAuthAndDB: redis_auth is required of clients; server_password (and a
// per-server password) is sent to servers; redis_db is selected on them.
func TestAuthAndDB(t *testing.T) {
	rs := startRedises(t, 1, "--requirepass", "srv-secret")
	other := startRedises(t, 1, "--requirepass", "other-secret")
	all := append(rs, other...)
	extra := "  hash: murmur\n  redis_auth: client-secret\n  server_password: srv-secret\n  redis_db: 3\n  server_passwords:\n    s1: other-secret\n"
	yml, addr := poolYAML(t, "auth", all, extra)
	startProxy(t, parseConfig(t, yml), kv.Options{})
	raw := dialRaw(t, addr)
	if got := raw.cmd("GET", "k"); got != "-NOAUTH Authentication required\r\n" {
		t.Fatalf("before auth: %q", got)
	}
	if got := raw.cmd("AUTH", "wrong"); got != "-ERR invalid password\r\n" {
		t.Fatalf("wrong auth: %q", got)
	}
	if got := raw.cmd("AUTH", "client-secret"); got != "+OK\r\n" {
		t.Fatalf("auth: %q", got)
	}
	ctx := context.Background()
	c := newClient(t, addr, func(o *goredis.Options) { o.Password = "client-secret" })
	for i := 0; i < 50; i++ {
		if err := c.Set(ctx, fmt.Sprint("a", i), i, 0).Err(); err != nil {
			t.Fatalf("set through proxy: %v", err)
		}
	}
	total := int64(0)
	for i, r := range all {
		pw := []string{"srv-secret", "other-secret"}[i]
		d := newClient(t, r.Addr(), func(o *goredis.Options) { o.Password = pw; o.DB = 3 })
		n, err := d.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += n
		d0 := newClient(t, r.Addr(), func(o *goredis.Options) { o.Password = pw })
		if n0, _ := d0.DBSize(ctx).Result(); n0 != 0 {
			t.Fatalf("db 0 of server %d has %d keys", i, n0)
		}
	}
	if total != 50 {
		t.Fatalf("db 3 holds %d keys, want 50", total)
	}
}

// TestStatsAndMetrics checks twemproxy's stats document and the Prometheus metrics.
func TestStatsAndMetrics(t *testing.T) {
	rs := startRedises(t, 2)
	yml, addr := poolYAML(t, "st", rs, "  hash: murmur\n")
	p := startProxy(t, parseConfig(t, yml), kv.Options{StatsAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"})
	ctx := context.Background()
	c := newClient(t, addr)
	for i := 0; i < 20; i++ {
		if err := c.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	st := readStats(t, p.StatsAddr().String())
	for _, f := range []string{"service", "source", "version", "uptime", "timestamp", "total_connections", "curr_connections"} {
		if _, ok := st[f]; !ok {
			t.Errorf("stats lack %q", f)
		}
	}
	if st["service"] != "nutcracker" {
		t.Errorf("service = %v", st["service"])
	}
	pool := st["st"].(map[string]any)
	for _, f := range []string{"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"} {
		if _, ok := pool[f]; !ok {
			t.Errorf("pool stats lack %q", f)
		}
	}
	var reqs float64
	for _, name := range []string{"s0", "s1"} {
		s := pool[name].(map[string]any)
		for _, f := range []string{"server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at", "requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"} {
			if _, ok := s[f]; !ok {
				t.Errorf("server stats lack %q", f)
			}
		}
		reqs += s["requests"].(float64)
	}
	if reqs != 20 {
		t.Errorf("requests = %v, want 20", reqs)
	}
	resp, err := http.Get("http://" + p.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"kvproxy_server_requests_total", "kvproxy_server_timeouts_total", "kvproxy_server_errors_total", "kvproxy_server_ejections_total", "kvproxy_request_duration_seconds_bucket", `pool="st",server="s0"`,
		// every counter of twemproxy's stats, and the runtime's and the process's
		"kvproxy_pool_client_eof_total", "kvproxy_pool_client_err_total", "kvproxy_pool_forward_error_total", "kvproxy_pool_fragments_total",
		"kvproxy_server_eof_total", "kvproxy_server_err_total", "kvproxy_server_timedout_total", "kvproxy_server_in_queue_bytes",
		"kvproxy_server_out_queue_bytes", "kvproxy_server_ejected_at_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	// The byte counters moved with the 20 SETs.
	for _, m := range []string{"kvproxy_server_request_bytes_total", "kvproxy_server_response_bytes_total"} {
		var sum float64
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, m+"{") {
				var v float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
				sum += v
			}
		}
		if sum <= 0 {
			t.Errorf("%s = %v after 20 SETs", m, sum)
		}
	}
}
