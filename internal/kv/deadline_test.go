package kv_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// TestFrozenShardDeepPipeline: one client pipelines 2000 GETs spread over 4 servers,
// one of them frozen (SIGSTOP). A request's deadline starts when the proxy reads it,
// so every reply, those of the healthy servers included, arrives within the timeout
// (plus a margin) of the pipeline's first write: the frozen server's keys get
// "-ERR Connection timed out", the others their values. The client loop does not wait one timeout
// per batch it reads.
func TestFrozenShardDeepPipeline(t *testing.T) {
	const (
		timeout  = time.Second
		margin   = 500*time.Millisecond + raceMargin
		requests = 2000
	)
	rs := startRedises(t, 4)
	yml, addr := poolYAML(t, "deep", rs, "  hash: murmur\n  timeout: 1000\n")
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	keys := keysByShard(t, cfg.Pools[0], requests/4)
	setup := newClient(t, addr)
	ctx := context.Background()
	for _, ks := range keys {
		for _, k := range ks {
			if err := setup.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	frozen := map[string]bool{}
	for _, k := range keys["s0"] {
		frozen[k] = true
	}
	// Interleave the shards: every batch the proxy reads holds keys of the frozen one.
	var order []string
	var pipeline []byte
	for i := 0; i < requests/4; i++ {
		for s := 0; s < 4; s++ {
			k := keys["s"+itoa(s)][i]
			order = append(order, k)
			pipeline = redis.AppendCommandStrings(pipeline, "GET", k)
		}
	}
	rs[0].Freeze()
	t.Cleanup(rs[0].Thaw)

	c := dialRaw(t, addr)
	start := time.Now()
	wrote := make(chan error, 1)
	go func() {
		_, err := c.nc.Write(pipeline)
		wrote <- err
	}()
	var last time.Duration
	timeouts := 0
	for i, k := range order {
		r := c.reply()
		d := time.Since(start)
		last = max(last, d)
		if d > timeout+margin {
			t.Fatalf("reply %d (key %s, frozen %v) after %v, want within %v", i, k, frozen[k], d, timeout+margin)
		}
		switch {
		case frozen[k] && r != "-ERR Connection timed out\r\n":
			t.Fatalf("reply %d, frozen shard's key %s: %q, want -ERR Connection timed out", i, k, r)
		case frozen[k]:
			timeouts++
		case r != "$"+itoa(len(k))+"\r\n"+k+"\r\n":
			t.Fatalf("reply %d, healthy key %s: %q", i, k, r)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if timeouts != requests/4 {
		t.Fatalf("%d timeouts, want %d", timeouts, requests/4)
	}
	t.Logf("%d replies, the last after %v", requests, last)
	// The connection is in step: the next request gets its own reply.
	if r := c.cmd("GET", keys["s1"][0]); r != "$"+itoa(len(keys["s1"][0]))+"\r\n"+keys["s1"][0]+"\r\n" {
		t.Fatalf("after the pipeline: %q", r)
	}
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer = testenv.SyncBuffer

// counterValue returns the value of the counter name with label pool=pool in the
// proxy's registry, or -1 if it has none.
func counterValue(t *testing.T, p *kv.Proxy, name, pool string) float64 {
	t.Helper()
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "pool" && l.GetValue() == pool {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestFrozenShardEjected: with auto_eject_hosts a frozen server (it accepts
// connections, so every dial succeeds, and answers nothing) is ejected after
// server_failure_limit timeouts: a new connection does not clear its failures. Its
// keys then go to the other servers.
func TestFrozenShardEjected(t *testing.T) {
	rs := startRedises(t, 3)
	logs := &syncBuffer{}
	yml, addr := poolYAML(t, "ejectfrozen", rs, "  hash: murmur\n  timeout: 300\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 60000\n")
	cfg := parseConfig(t, yml)
	p := startProxy(t, cfg, kv.Options{StatsAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	keys := keysByShard(t, cfg.Pools[0], 1)
	k := keys["s0"][0]
	ctx := context.Background()
	c := newClient(t, addr)
	rs[0].Freeze()
	t.Cleanup(rs[0].Thaw)
	failures := 0
	for i := 0; i < 5; i++ {
		err := c.Get(ctx, k).Err()
		if isRedisErr(err, "ERR Connection timed out") {
			failures++
			continue
		}
		break
	}
	if failures != 2 {
		t.Fatalf("timeouts before ejection = %d, want server_failure_limit (2)", failures)
	}
	// The key now lives on another server.
	if err := c.Set(ctx, k, "moved", 0).Err(); err != nil {
		t.Fatalf("set after ejection: %v", err)
	}
	if v, err := c.Get(ctx, k).Result(); err != nil || v != "moved" {
		t.Fatalf("get after ejection: %q %v", v, err)
	}
	found := false
	for _, r := range rs[1:] {
		if v, _ := direct(t, r).Get(ctx, k).Result(); v == "moved" {
			found = true
		}
	}
	if !found {
		t.Fatal("key not served by a live server")
	}
	st := readStats(t, p.StatsAddr().String())["ejectfrozen"].(map[string]any)
	if st["server_ejects"].(float64) != 1 {
		t.Fatalf("server_ejects = %v, want 1", st["server_ejects"])
	}
	if counterValue(t, p, "kvproxy_pool_server_ejects_total", "ejectfrozen") != 1 {
		t.Fatal("kvproxy_pool_server_ejects_total is not 1")
	}
	if !strings.Contains(logs.String(), "server ejected") {
		t.Fatalf("no ejection logged:\n%s", logs.String())
	}
}

// TestNoAutoEjectNoEjection: without auto_eject_hosts a failing server is never
// ejected, so no ejection is counted (stats, metrics) or logged, however often it
// fails; its keys keep failing with "-ERR Connection timed out".
func TestNoAutoEjectNoEjection(t *testing.T) {
	rs := startRedises(t, 2)
	logs := &syncBuffer{}
	yml, addr := poolYAML(t, "noeject", rs, "  hash: murmur\n  timeout: 200\n  auto_eject_hosts: false\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n")
	cfg := parseConfig(t, yml)
	p := startProxy(t, cfg, kv.Options{StatsAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	keys := keysByShard(t, cfg.Pools[0], 1)
	ctx := context.Background()
	c := newClient(t, addr)
	rs[0].Freeze()
	t.Cleanup(rs[0].Thaw)
	for i := 0; i < 3; i++ {
		if err := c.Get(ctx, keys["s0"][0]).Err(); !isRedisErr(err, "ERR Connection timed out") {
			t.Fatalf("get %d on the frozen server: %v, want -ERR Connection timed out", i, err)
		}
	}
	st := readStats(t, p.StatsAddr().String())["noeject"].(map[string]any)
	if st["server_ejects"].(float64) != 0 {
		t.Errorf("server_ejects = %v without auto_eject_hosts", st["server_ejects"])
	}
	s0 := st["s0"].(map[string]any)
	if s0["server_ejected_at"].(float64) != 0 {
		t.Errorf("server_ejected_at = %v without auto_eject_hosts", s0["server_ejected_at"])
	}
	if s0["server_timedout"].(float64) < 3 {
		t.Errorf("server_timedout = %v, want at least 3 (the failures happened)", s0["server_timedout"])
	}
	if v := counterValue(t, p, "kvproxy_pool_server_ejects_total", "noeject"); v != 0 {
		t.Errorf("kvproxy_pool_server_ejects_total = %v without auto_eject_hosts", v)
	}
	if strings.Contains(logs.String(), "server ejected") {
		t.Errorf("ejection logged without auto_eject_hosts:\n%s", logs.String())
	}
}
