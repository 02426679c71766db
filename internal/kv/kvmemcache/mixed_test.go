package kvmemcache_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// mixedPipeline returns n requests of every kind (classic storage commands with and
// without noreply, get, delete, incr/decr, touch, meta mg/ms/md with and without quiet
// mode) over a few keys, ended by mn, from a fixed seed.
func mixedPipeline(n int) string {
	r := rand.New(rand.NewSource(7))
	key := func() string { return fmt.Sprintf("k%d", r.Intn(40)) }
	num := func() string { return fmt.Sprintf("n%d", r.Intn(8)) }
	val := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, 1+r.Intn(30))
		for i := range b {
			b[i] = letters[r.Intn(len(letters))]
		}
		return string(b)
	}
	noreply := func() string {
		if r.Intn(4) == 0 {
			return " noreply"
		}
		return ""
	}
	var b strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&b, "set n%d 0 0 2\r\n%02d\r\n", i, i)
	}
	for i := 0; i < n; i++ {
		switch r.Intn(12) {
		case 0, 1:
			v := val()
			fmt.Fprintf(&b, "set %s 0 0 %d%s\r\n%s\r\n", key(), len(v), noreply(), v)
		case 2:
			v := val()
			cmd := []string{"add", "replace", "append", "prepend"}[r.Intn(4)]
			fmt.Fprintf(&b, "%s %s 0 0 %d%s\r\n%s\r\n", cmd, key(), len(v), noreply(), v)
		case 3, 4:
			fmt.Fprintf(&b, "get %s\r\n", key())
		case 5:
			fmt.Fprintf(&b, "delete %s%s\r\n", key(), noreply())
		case 6:
			fmt.Fprintf(&b, "%s %s %d%s\r\n", []string{"incr", "decr"}[r.Intn(2)], num(), r.Intn(5), noreply())
		case 7:
			fmt.Fprintf(&b, "touch %s 300%s\r\n", key(), noreply())
		case 8:
			q := ""
			if r.Intn(2) == 0 {
				q = " q"
			}
			fmt.Fprintf(&b, "mg %s v k f%s\r\n", key(), q)
		case 9:
			v := val()
			q := ""
			if r.Intn(2) == 0 {
				q = " q"
			}
			fmt.Fprintf(&b, "ms %s %d T0%s\r\n%s\r\n", key(), len(v), q, v)
		case 10:
			q := ""
			if r.Intn(2) == 0 {
				q = " q"
			}
			fmt.Fprintf(&b, "md %s%s\r\n", key(), q)
		case 11:
			fmt.Fprintf(&b, "ma %s q\r\n", num())
		}
	}
	b.WriteString("mn\r\n")
	return b.String()
}

// repliesUntilMN reads replies until the MN that ends the pipeline.
func repliesUntilMN(t *testing.T, c *textConn) []string {
	t.Helper()
	var out []string
	for {
		r, err := c.replyErr(20 * time.Second)
		if err != nil {
			t.Fatalf("after %d replies: %v (have %q)", len(out), err, r)
		}
		out = append(out, r)
		if r == "MN\r\n" {
			return out
		}
	}
}

// TestMixedPipelineMatchesMemcached: one pipeline of 3000 mixed requests, classic and
// meta, quiet and noreply ones among them, written at once, gets through kvproxy over
// three servers exactly the replies one memcached gives it directly (each request's
// reply depends only on its key, and a key lives on one server).
func TestMixedPipelineMatchesMemcached(t *testing.T) {
	pipeline := mixedPipeline(3000)
	one := startMemcacheds(t, 1)
	dc := dialText(t, one[0].Addr())
	dc.send(pipeline)
	want := repliesUntilMN(t, dc)

	ms := startMemcacheds(t, 3)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mix", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 5000\n"))
	startProxy(t, cfg, kv.Options{})
	pc := dialText(t, addr)
	pc.send(pipeline)
	got := repliesUntilMN(t, pc)
	if len(got) != len(want) {
		t.Fatalf("%d replies through kvproxy, %d from memcached", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reply %d: %q through kvproxy, %q from memcached", i, got[i], want[i])
		}
	}
	t.Logf("%d replies to %d requests, identical", len(got), strings.Count(pipeline, "\r\n"))
}
