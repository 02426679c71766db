package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestVersionAndCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := execute(context.Background(), []string{"version"}, &out, &errb, nil); code != 0 || !strings.HasPrefix(out.String(), "kvproxy ") {
		t.Fatalf("version: %d %q %q", code, out.String(), errb.String())
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("alpha:\n  listen: 127.0.0.1:22121\n  hash: nosuch\n  redis: true\n  timeout: x\n  servers:\n    - 127.0.0.1:6379:1\n"), 0o644)
	for _, args := range [][]string{{"check-config", bad}, {"-t", "-c", bad}} {
		out.Reset()
		errb.Reset()
		code := execute(context.Background(), args, &out, &errb, nil)
		got := out.String() + errb.String() // -t writes to standard error, as nutcracker
		if code != 1 || !strings.Contains(got, "line 3") || !strings.Contains(got, "line 5") {
			t.Fatalf("%q: %d\n%s", args, code, got)
		}
	}
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n    - 127.0.0.1:6379:1\n"), 0o644)
	out.Reset()
	if code := execute(context.Background(), []string{"check-config", good}, &out, &errb, nil); code != 0 {
		t.Fatalf("good: %d %s", code, out.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"-c", filepath.Join(dir, "missing.yml"), "-s", "0"}, &out, &errb, nil); code != 1 || !strings.Contains(errb.String(), "missing.yml") {
		t.Fatalf("missing config: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"-t", "-c", good}, &out, &errb, nil); code != 0 || !strings.Contains(errb.String(), "configuration file '"+good+"' syntax is ok") {
		t.Fatalf("-t good: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"-t", "-c", bad}, &out, &errb, nil); code != 1 || !strings.Contains(errb.String(), "syntax is invalid") {
		t.Fatalf("-t bad: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"-V"}, &out, &errb, nil); code != 0 || !strings.HasPrefix(errb.String(), "This is kvproxy-"+Version) {
		t.Fatalf("-V: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := execute(context.Background(), []string{"-D"}, &out, &errb, nil); code != 0 || !strings.Contains(errb.String(), "server stats:") || !strings.Contains(errb.String(), "  server_timedout") {
		t.Fatalf("-D: %d %q", code, errb.String())
	}
	for _, args := range [][]string{{"-c", good, "-m", "100"}, {"-c", good, "-s", "70000"}, {"-c", good, "-v", "12"}} {
		errb.Reset()
		if code := execute(context.Background(), args, &out, &errb, nil); code != 1 {
			t.Fatalf("%q: %d %q", args, code, errb.String())
		}
	}
}

// TestRunReloadShutdown runs kvproxy on a file, adds a server with SIGHUP, refuses a
// broken file on the next SIGHUP, and shuts down on SIGTERM.
func TestRunReloadShutdown(t *testing.T) {
	r1 := testenv.StartRedis(t, testenv.RedisOptions{})
	r2 := testenv.StartRedis(t, testenv.RedisOptions{})
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dir := t.TempDir()
	file := filepath.Join(dir, "nutcracker.yml")
	base := "alpha:\n  listen: " + listen + "\n  redis: true\n  hash: murmur\n  servers:\n    - " + r1.Addr() + ":1 one\n"
	if err := os.WriteFile(file, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	started := make(chan *kv.Proxy, 1)
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- execute(context.Background(), []string{"-c", file, "-s", "0", "--log-format", "json"}, &logs, &logs, func(o *options) {
			o.signals, o.started = sigs, started
		})
	}()
	var p *kv.Proxy
	select {
	case p = <-started:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, logs.String())
	}
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: listen, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	defer c.Close()
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte(base+"    - "+r2.Addr()+":1 two\n"), 0o644)
	sigs <- syscall.SIGHUP
	direct2 := goredis.NewClient(&goredis.Options{Addr: r2.Addr(), Protocol: 2, DisableIdentity: true})
	defer direct2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, _ := direct2.DBSize(ctx).Result(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload did not add the server: %s", logs.String())
		}
	}
	os.WriteFile(file, []byte("alpha:\n  listen: nope\n"), 0o644)
	sigs <- syscall.SIGHUP
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "reload refused") {
		t.Fatalf("bad file not reported: %s", logs.String())
	}
	_ = p
}
