package kv_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/sharding"
)

// Test256Shards routes keys over 256 redis-servers in one pool and checks every key
// is on the server twemproxy's placement gives it.
func Test256Shards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 256 redis-servers")
	}
	rs := startRedises(t, 256)
	yml, addr := poolYAML(t, "big", rs, "  hash: fnv1a_64\n  distribution: ketama\n")
	cfg := parseConfig(t, yml)
	startProxy(t, cfg, kv.Options{})
	ctx := context.Background()
	c := newClient(t, addr)
	const n = 4096
	pipe := c.Pipeline()
	for i := 0; i < n; i++ {
		pipe.Set(ctx, fmt.Sprint("k", i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	scfg, _ := cfg.Pools[0].ShardingConfig()
	sp, err := sharding.NewPool(scfg, cfg.Pools[0].Shards())
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for i := range rs {
		idx[fmt.Sprint("s", i)] = i
	}
	want := make([]int64, len(rs))
	byServer := make([][]string, len(rs))
	for i := 0; i < n; i++ {
		k := fmt.Sprint("k", i)
		s := idx[cfg.Pools[0].Servers[sp.Pick([]byte(k))].Name]
		want[s]++
		byServer[s] = append(byServer[s], k)
	}
	used := 0
	for i, r := range rs {
		d := goredis.NewClient(&goredis.Options{Addr: r.Addr(), PoolSize: 1, DisableIdentity: true, Protocol: 2})
		got, err := d.DBSize(ctx).Result()
		if err == nil && len(byServer[i]) > 0 {
			var e int64
			e, err = d.Exists(ctx, byServer[i]...).Result()
			if e != want[i] {
				err = fmt.Errorf("exists %d of %d", e, want[i])
			}
		}
		d.Close()
		if err != nil || got != want[i] {
			t.Fatalf("server %d: %d keys, want %d (%v)", i, got, want[i], err)
		}
		if got > 0 {
			used++
		}
	}
	if used < 150 { // fnv1a_64's 32-bit quirk leaves some servers few keys
		t.Fatalf("only %d of 256 servers hold keys", used)
	}
	// Split commands over many servers.
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != fmt.Sprint(i) {
			t.Fatalf("mget[%d] = %v", i, v)
		}
	}
	if got, err := c.Del(ctx, keys...).Result(); err != nil || got != 1000 {
		t.Fatalf("del = %d %v", got, err)
	}
}

// raiseNoFile raises the open files limit as far as allowed and returns it.
func raiseNoFile(t *testing.T, want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	old := lim
	if lim.Max < want {
		lim.Max = want // allowed with CAP_SYS_RESOURCE (root)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		lim = old
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	return lim.Cur
}

// Test10kIdleClients holds 10,000 idle client connections open on one pool and checks
// they all stay usable and counted. The connections are opened by a child process (this
// test binary re-run as TestHelperHoldConns), so the proxy's end alone counts against
// this process's open files limit, which the test raises as far as it may.
func Test10kIdleClients(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const n = 10000
	if lim := raiseNoFile(t, n+2000); lim < n+1000 {
		t.Fatalf("open files limit %d is too low for %d connections", lim, n)
	}
	rs := startRedises(t, 2)
	yml, addr := poolYAML(t, "many", rs, "  hash: murmur\n  backlog: 4096\n")
	p := startProxy(t, parseConfig(t, yml), kv.Options{StatsAddr: "127.0.0.1:0"})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperHoldConns$")
	cmd.Env = append(os.Environ(), "KV_HOLD_ADDR="+addr, fmt.Sprint("KV_HOLD_N=", n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		stdin.Close()
		_ = cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	waitFor(t, 20*time.Second, func() bool {
		return readStats(t, p.StatsAddr().String())["curr_connections"].(float64) == n
	})
	// The proxy still serves new clients while holding them.
	c := newClient(t, addr)
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stdin.Close() // the helper checks every hundredth connection, then exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	waitFor(t, 20*time.Second, func() bool {
		return readStats(t, p.StatsAddr().String())["curr_connections"].(float64) <= 1
	})
}

// TestHelperHoldConns is the child process of Test10kIdleClients: it opens
// KV_HOLD_N connections to KV_HOLD_ADDR, prints "ready", waits for its stdin to
// close, checks every hundredth connection still answers, and exits.
func TestHelperHoldConns(t *testing.T) {
	addr := os.Getenv("KV_HOLD_ADDR")
	if addr == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("KV_HOLD_N"))
	raiseNoFile(t, uint64(n)+1000)
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const workers = 32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("dial: %v", err)
	default:
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	buf := make([]byte, 64)
	for i := 0; i < n; i += 99 {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(buf)
		if err != nil || string(buf[:m]) != "+PONG\r\n" {
			t.Fatalf("conn %d: %q %v", i, buf[:m], err)
		}
	}
}
