package kv_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestReloadUnderLoad runs redis-benchmark through the proxy across a reload that
// adds a server: no request fails, the new server takes keys, and a client connection
// opened before the reload keeps working.
func TestReloadUnderLoad(t *testing.T) {
	bench := testenv.LookPath(t, "redis-benchmark")
	rs := startRedises(t, 3)
	yml, addr := poolYAML(t, "rl", rs[:2], "  hash: murmur\n")
	p := startProxy(t, parseConfig(t, yml), kv.Options{StatsAddr: "127.0.0.1:0", ReloadGrace: time.Second})
	ctx := context.Background()
	c := newClient(t, addr, func(o *redisOptions) { o.PoolSize = 1 })
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(bench, "-h", host, "-p", port, "-n", "20000", "-c", "16", "-P", "4", "-r", "100000", "-t", "set,get", "-e", "-q")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Reload once the benchmark is under way.
	waitFor(t, 20*time.Second, func() bool {
		st := readStats(t, p.StatsAddr().String())
		pool := st["rl"].(map[string]any)
		return pool["s0"].(map[string]any)["requests"].(float64) > 2000
	})
	yml2 := strings.Replace(yml, "  servers:\n", "  servers:\n    - "+rs[2].Addr()+":1 s2\n", 1)
	if err := p.Reload(parseConfig(t, yml2)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "ERR") {
		t.Fatalf("redis-benchmark saw errors:\n%s", out.String())
	}
	if n, _ := direct(t, rs[2]).DBSize(ctx).Result(); n == 0 {
		t.Fatal("the added server took no keys")
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("connection from before the reload: %v", err)
	}
	st := readStats(t, p.StatsAddr().String())
	if fe := st["rl"].(map[string]any)["forward_error"].(float64); fe != 0 {
		t.Fatalf("forward_error = %v", fe)
	}

	// A configuration that cannot be applied is refused and the running one stays.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := strings.Replace(yml2, "listen: "+addr, "listen: "+busy.Addr().String(), 1)
	err = p.Reload(parseConfig(t, bad))
	var ce *kv.ConfigError
	if !errors.As(err, &ce) || ce.Pool != "rl" {
		t.Fatalf("bad reload: %v", err)
	}
	if err := c.Set(ctx, "after", "1", 0).Err(); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}

	// Removing a server and changing the listen address keeps old clients working.
	newAddr := "127.0.0.1:" + itoa(testenv.FreePort(t))
	yml3 := strings.Replace(yml, "listen: "+addr, "listen: "+newAddr, 1)
	if err := p.Reload(parseConfig(t, yml3)); err != nil {
		t.Fatalf("reload 3: %v", err)
	}
	if err := c.Set(ctx, "old-conn", "1", 0).Err(); err != nil {
		t.Fatalf("old connection after listen change: %v", err)
	}
	c2 := newClient(t, newAddr)
	if v, err := c2.Get(ctx, "old-conn").Result(); err != nil || v != "1" {
		t.Fatalf("new listener: %q %v", v, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("old listen address still accepts")
	}
}
