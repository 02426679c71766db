package kv_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
)

func TestBasicCommands(t *testing.T) {
	rs := startRedises(t, 4)
	yml, addr := poolYAML(t, "alpha", rs, "  hash: murmur\n  distribution: ketama\n")
	startProxy(t, parseConfig(t, yml), kv.Options{})
	ctx := context.Background()
	c := newClient(t, addr)
	for i := 0; i < 200; i++ {
		if err := c.Set(ctx, fmt.Sprint("key", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ {
		v, err := c.Get(ctx, fmt.Sprint("key", i)).Int()
		if err != nil || v != i {
			t.Fatalf("get %d = %d, %v", i, v, err)
		}
	}
	// Keys spread over every server.
	for i, r := range rs {
		n, err := direct(t, r).DBSize(ctx).Result()
		if err != nil || n == 0 {
			t.Errorf("server %d has %d keys (%v)", i, n, err)
		}
	}
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
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
	if n, err := c.Del(ctx, keys[:100]...).Result(); err != nil || n != 100 {
		t.Fatalf("del = %d %v", n, err)
	}
	raw := dialRaw(t, addr)
	if got := raw.cmd("FLUSHALL"); got != "-ERR unsupported command 'FLUSHALL'\r\n" {
		t.Fatalf("flushall = %q", got)
	}
	if got := raw.cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("ping = %q", got)
	}
}
