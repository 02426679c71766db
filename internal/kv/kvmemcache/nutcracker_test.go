package kvmemcache_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestPlacementMatchesNutcracker writes keys through nutcracker (a memcached pool),
// then reads each back through kvproxy running the same pool settings, and checks
// that each key is on exactly the memcached that kvproxy picks: ketama and modula,
// two hashes, servers with and without names.
func TestPlacementMatchesNutcracker(t *testing.T) {
	ms := startMemcacheds(t, 3)
	for i, tc := range []struct {
		settings string
		named    bool
	}{
		{"  hash: fnv1a_64\n  distribution: ketama\n", true},
		{"  hash: murmur\n  distribution: ketama\n", false},
		{"  hash: fnv1a_64\n  distribution: modula\n", false},
		{"  hash: murmur\n  distribution: modula\n", true},
	} {
		t.Run(strings.ReplaceAll(strings.TrimSpace(tc.settings), "\n  ", ","), func(t *testing.T) {
			settings := tc.settings + "  timeout: 2000\n"
			twAddr, kvAddr := freeAddr(t), freeAddr(t)
			testenv.StartNutcracker(t, poolYAML("mc", twAddr, ms, tc.named, settings), twAddr)
			cfg := parseConfig(t, poolYAML("mc", kvAddr, ms, tc.named, settings))
			startProxy(t, cfg, kv.Options{})
			pick := picker(t, cfg.Pools[0])

			tw, kvc := dialText(t, twAddr), dialText(t, kvAddr)
			const n = 300
			keys := make([]string, n)
			for k := range keys {
				keys[k] = fmt.Sprintf("place%d:key:%d", i, k)
				if r := tw.do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", keys[k], len(keys[k]), keys[k])); r != "STORED\r\n" {
					t.Fatalf("set %s through nutcracker: %q", keys[k], r)
				}
			}
			used := map[int]int{}
			for _, k := range keys {
				want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
				if r := kvc.do("get " + k + "\r\n"); r != want {
					t.Fatalf("get %s through kvproxy: %q, want %q", k, r, want)
				}
				s := pick(k)
				used[s]++
				for _, m := range ms {
					v, ok := direct(t, m, k)
					if ok != (m.Addr() == addrOf(cfg, s)) || (ok && v != k) {
						t.Fatalf("key %s: on %s = %v (%q); kvproxy picks %s", k, m.Addr(), ok, v, addrOf(cfg, s))
					}
				}
			}
			if len(used) < 2 { // fnv1a_64 with modula leaves one of 3 servers almost empty for these keys
				t.Fatalf("keys spread over %d servers only: %v", len(used), used)
			}
		})
	}
}

// Outcomes of a request besides a reply (see exchange).
const (
	closedConn = "<connection closed>"
	noReply    = "<no reply>"
)

// exchange sends each request in turn on one new connection to addr and returns what
// came back for each: the reply, closedConn when the proxy closed the connection
// instead, or noReply when nothing came within 3 s. It stops at the first request not
// answered with a reply.
func exchange(t *testing.T, addr string, reqs ...string) []string {
	t.Helper()
	c := dialText(t, addr)
	var out []string
	for _, req := range reqs {
		if _, err := c.nc.Write([]byte(req)); err != nil {
			return append(out, closedConn)
		}
		r, err := c.replyErr(3 * time.Second)
		switch {
		case err == nil:
			out = append(out, r)
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			out = append(out, noReply)
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			out = append(out, closedConn)
		default:
			t.Fatalf("%q: read: %v", req, err)
		}
		return out
	}
	return out
}

// TestFailedServerRepliesMatchNutcracker sends the same ASCII requests to Debian's
// nutcracker and to kvproxy, each in front of the same three memcached servers: one
// live, one down (connection refused), one frozen (SIGSTOP: it accepts and never
// answers, timeout 400 ms). Single-key requests and multi-key gets touching the failed
// servers get the same replies byte for byte: for a multi-get, one SERVER_ERROR with
// the failed server's text, not a miss nor the live server's hits. The deliberate
// difference: nutcracker then closes the client's connection, kvproxy keeps it and
// answers the requests that follow.
func TestFailedServerRepliesMatchNutcracker(t *testing.T) {
	ms := startMemcacheds(t, 3)
	settings := "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n"
	twAddr, kvAddr := freeAddr(t), freeAddr(t)
	testenv.StartNutcracker(t, poolYAML("mc", twAddr, ms, true, settings), twAddr)
	cfg := parseConfig(t, poolYAML("mc", kvAddr, ms, true, settings))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 3, 2, "fail:")
	up, down, frozen := ks[0], ks[1], ks[2]
	byAddr(t, ms, addrOf(cfg, 1)).Kill()
	byAddr(t, ms, addrOf(cfg, 2)).Freeze()

	const refused, timedOut = "SERVER_ERROR Connection refused\r\n", "SERVER_ERROR Connection timed out\r\n"
	set := func(k string) string { return "set " + k + " 0 0 1\r\nv\r\n" }
	same := []string{set(up[0]), "get " + down[0] + "\r\n", set(down[1]), "delete " + down[0] + "\r\n",
		"get " + up[0] + " " + up[1] + "\r\n", "get " + frozen[0] + "\r\n", set(frozen[1]), "get " + up[0] + "\r\n"}
	a, b := exchange(t, twAddr, same...), exchange(t, kvAddr, same...)
	if strings.Join(a, "|") != strings.Join(b, "|") || len(b) != len(same) || b[1] != refused || b[5] != timedOut {
		t.Errorf("single-key requests on failed servers:\nnutcracker %q\nkvproxy    %q", a, b)
	}
	val := "VALUE " + up[0] + " 0 1\r\nv\r\nEND\r\n"
	for _, tc := range []struct {
		req, want string
	}{
		{"get " + up[0] + " " + down[0] + "\r\n", refused},
		{"get " + down[0] + " " + up[0] + " " + down[1] + "\r\n", refused},
		{"gets " + up[0] + " " + frozen[0] + "\r\n", timedOut},
		{"get " + frozen[0] + " " + up[0] + "\r\n", timedOut},
	} {
		next := "get " + up[0] + "\r\n"
		if a := exchange(t, twAddr, tc.req, next); strings.Join(a, "|") != tc.want+"|"+closedConn {
			t.Errorf("%q through nutcracker: %q, want %q, then the connection closed", tc.req, a, tc.want)
		}
		if b := exchange(t, kvAddr, tc.req, next); strings.Join(b, "|") != tc.want+"|"+val {
			t.Errorf("%q through kvproxy: %q, want %q, then the next get answered", tc.req, b, tc.want)
		}
	}
}
