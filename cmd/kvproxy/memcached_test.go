package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestMemcachedPool: a pool without redis: true is a memcached pool, as in twemproxy:
// check-config accepts it, kvproxy serves it, and SIGHUP
// adds a server to it.
func TestMemcachedPool(t *testing.T) {
	m1, m2 := testenv.StartMemcached(t), testenv.StartMemcached(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dir := t.TempDir()
	file := filepath.Join(dir, "nutcracker.yml")
	base := "beta:\n  listen: " + listen + "\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n  servers:\n    - " + m1.Addr() + ":1 one\n"
	if err := os.WriteFile(file, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := execute(context.Background(), []string{"check-config", file}, &out, &errb, nil); code != 0 || !strings.Contains(out.String(), "configuration OK (1 pools)") {
		t.Fatalf("check-config: %d %q %q", code, out.String(), errb.String())
	}

	sigs := make(chan os.Signal, 1)
	started := make(chan *kv.Proxy, 1)
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- execute(context.Background(), []string{"-c", file, "-s", "0"}, &logs, &logs, func(o *options) {
			o.signals, o.started = sigs, started
		})
	}()
	select {
	case <-started:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, logs.String())
	}
	nc, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rd := bufio.NewReader(nc)
	do := func(req string, lines int) string {
		t.Helper()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := 0; i < lines; i++ {
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: %v (have %q)", req, err, b.String())
			}
			b.WriteString(l)
		}
		return b.String()
	}
	if r := do("set a 0 0 1\r\n1\r\n", 1); r != "STORED\r\n" {
		t.Fatalf("set: %q", r)
	}
	if r := do("get a\r\n", 3); r != "VALUE a 0 1\r\n1\r\nEND\r\n" {
		t.Fatalf("get: %q", r)
	}
	os.WriteFile(file, []byte(base+"    - "+m2.Addr()+":1 two\n"), 0o644)
	sigs <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if r := do(fmt.Sprintf("set k%d 0 0 1\r\nv\r\n", i), 1); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
		if items(t, m2.Addr()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload did not add the server: %s", logs.String())
		}
	}
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, logs.String())
	}
}

// items returns memcached's curr_items.
func items(t *testing.T, addr string) int {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("stats\r\n"))
	sc := bufio.NewScanner(nc)
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "STAT curr_items %d", &n); err == nil {
			return n
		}
		if sc.Text() == "END" {
			break
		}
	}
	t.Fatal("no curr_items")
	return 0
}
