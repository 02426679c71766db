package kvmemcache_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

// replicatedYAML returns a pool of the primaries (s0, s1, ...), each with the
// replica of the same index, and the extra settings.
func replicatedYAML(addr string, prims, reps []*testenv.Memcached, extra string) string {
	var b strings.Builder
	b.WriteString(extra)
	b.WriteString("  replicas:\n")
	for i, r := range reps {
		fmt.Fprintf(&b, "    s%d:\n      - %s\n", i, r.Addr())
	}
	return poolYAML("mc", addr, prims, true, b.String())
}

// binaryDo sends one binary request on nc and returns the status and value of its
// response.
func binaryDo(t *testing.T, nc net.Conn, req []byte) (uint16, string) {
	t.Helper()
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		if n, err := memcache.BinaryReplyLen(buf, memcache.Limits{}); err != nil {
			t.Fatalf("bad binary reply %x: %v", buf, err)
		} else if n > 0 {
			extras, key := int(buf[4]), int(binary.BigEndian.Uint16(buf[2:]))
			return binary.BigEndian.Uint16(buf[6:]), string(buf[24+extras+key : n])
		}
		n, err := nc.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			t.Fatalf("binary read: %v (have %x)", err, buf)
		}
	}
}

// setDirect stores key=value on one memcached, bypassing the proxy.
func setDirect(t *testing.T, m *testenv.Memcached, key, value string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", m.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &textConn{t: t, nc: nc}
	if r := c.do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(value), value)); r != "STORED\r\n" {
		t.Fatalf("direct set %s: %q", key, r)
	}
}

// waitDirect waits until key holds want on m ("": until it is absent), for at most
// 10 s: a replica's copy of a write is not waited for by the client.
func waitDirect(t *testing.T, m *testenv.Memcached, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		v, ok := direct(t, m, key)
		if want == "" && !ok || want != "" && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: %q %v, want %q", key, m.Addr(), v, ok, want)
		}
		<-tick.C
	}
}

// TestReplicatedWrites: two shards, each a primary with a replica. Every kind of
// write through the proxy (text, meta, binary; set, add, append, incr, touch, cas,
// delete) lands on the key's primary and its replica, checked on each memcached
// directly, and on no server of the other shard; the client gets one reply.
func TestReplicatedWrites(t *testing.T) {
	ms := startMemcacheds(t, 4)
	prims, reps := ms[:2], ms[2:]
	addr := freeAddr(t)
	cfg := parseConfig(t, replicatedYAML(addr, prims, reps, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n"))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 2, 3, "rw:")
	shardOf := func(i int) (prim, rep, other1, other2 *testenv.Memcached) {
		p := byAddr(t, prims, addrOf(cfg, i))
		for j := range prims {
			if prims[j] == p {
				return p, reps[j], prims[1-j], reps[1-j]
			}
		}
		t.Fatal("no primary")
		return
	}
	c := dialText(t, addr)
	check := func(k, want string, shard int) {
		t.Helper()
		p, r, o1, o2 := shardOf(shard)
		// The primary answered, so it has the write; the replica's copy may still be
		// on its way (the client does not wait for it).
		if v, ok := direct(t, p, k); want == "" && ok || want != "" && v != want {
			t.Fatalf("%s on primary %s: %q %v, want %q", k, p.Addr(), v, ok, want)
		}
		waitDirect(t, r, k, want)
		for _, m := range []*testenv.Memcached{o1, o2} {
			if _, ok := direct(t, m, k); ok {
				t.Fatalf("%s also on %s, a server of the other shard", k, m.Addr())
			}
		}
	}
	for shard, keys := range ks {
		k0, k1, k2 := keys[0], keys[1], keys[2]
		steps := []struct{ req, reply string }{
			{"set " + k0 + " 0 0 1\r\na\r\n", "STORED\r\n"},
			{"append " + k0 + " 0 0 1\r\nb\r\n", "STORED\r\n"},
			{"add " + k1 + " 0 0 2 noreply\r\n10\r\n", ""},
			{"incr " + k1 + " 5\r\n", "15\r\n"},
			{"touch " + k1 + " 1000\r\n", "TOUCHED\r\n"},
			{"ms " + k2 + " 1 T0\r\nm\r\n", "HD\r\n"},
		}
		for _, s := range steps {
			if s.reply == "" {
				c.send(s.req)
				continue
			}
			if r := c.do(s.req); r != s.reply {
				t.Fatalf("%q: %q, want %q", s.req, r, s.reply)
			}
		}
		check(k0, "ab", shard)
		check(k1, "15", shard)
		check(k2, "m", shard)
		// cas with the primary's cas value. Both servers of the shard saw the same
		// writes from empty, so their cas values agree and both store it.
		r := c.do("gets " + k0 + "\r\n")
		var cas uint64
		if _, err := fmt.Sscanf(r, "VALUE "+k0+" 0 2 %d", &cas); err != nil {
			t.Fatalf("gets %s: %q", k0, r)
		}
		if r := c.do(fmt.Sprintf("cas %s 0 0 1 %d\r\nc\r\n", k0, cas)); r != "STORED\r\n" {
			t.Fatalf("cas: %q", r)
		}
		check(k0, "c", shard)
		if r := c.do("md " + k2 + "\r\n"); r != "HD\r\n" {
			t.Fatalf("md: %q", r)
		}
		check(k2, "", shard)
		if r := c.do("delete " + k0 + "\r\n"); r != "DELETED\r\n" {
			t.Fatalf("delete: %q", r)
		}
		check(k0, "", shard)
	}
	// Binary set and delete.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	k := ks[1][0]
	if st, _ := binaryDo(t, nc, memcache.AppendBinaryRequest(nil, memcache.OpSet, 1, 0, make([]byte, 8), []byte(k), []byte("bin"))); st != 0 {
		t.Fatalf("binary set: status %#x", st)
	}
	check(k, "bin", 1)
	if st, _ := binaryDo(t, nc, memcache.AppendBinaryRequest(nil, memcache.OpDelete, 2, 0, nil, []byte(k), nil)); st != 0 {
		t.Fatalf("binary delete: status %#x", st)
	}
	check(k, "", 1)
}

// TestReplicatedReadPolicy: primary and replica hold different values under one key
// (written directly); each read_policy reads from the server it names, for get, gets,
// mg, gat and binary get; with "replica" a write still answers with the primary's
// reply and lands on both.
func TestReplicatedReadPolicy(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{"primary", "P"}, {"prefer-primary", "P"}, {"replica", "R"}, {"prefer-replica", "R"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			ms := startMemcacheds(t, 2)
			addr := freeAddr(t)
			startProxy(t, parseConfig(t, replicatedYAML(addr, ms[:1], ms[1:], "  timeout: 2000\n  read_policy: "+tc.policy+"\n")), kv.Options{})
			setDirect(t, ms[0], "where", "P")
			setDirect(t, ms[1], "where", "R")
			c := dialText(t, addr)
			want := "VALUE where 0 1\r\n" + tc.want + "\r\nEND\r\n"
			if r := c.do("get where\r\n"); r != want {
				t.Fatalf("get: %q, want %q", r, want)
			}
			if r := c.do("gets where\r\n"); !strings.HasPrefix(r, "VALUE where 0 1 ") || !strings.Contains(r, "\r\n"+tc.want+"\r\n") {
				t.Fatalf("gets: %q", r)
			}
			if r := c.do("mg where v\r\n"); r != "VA 1\r\n"+tc.want+"\r\n" {
				t.Fatalf("mg: %q", r)
			}
			if r := c.do("gat 1000 where\r\n"); r != want {
				t.Fatalf("gat: %q, want %q", r, want)
			}
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if st, v := binaryDo(t, nc, memcache.AppendBinaryRequest(nil, memcache.OpGet, 3, 0, nil, []byte("where"), nil)); st != 0 || v != tc.want {
				t.Fatalf("binary get: %#x %q", st, v)
			}
			// A write goes to both, whatever the read policy.
			if r := c.do("set w2 0 0 1\r\nx\r\n"); r != "STORED\r\n" {
				t.Fatalf("set: %q", r)
			}
			if v, _ := direct(t, ms[0], "w2"); v != "x" {
				t.Fatalf("w2 on the primary: %q", v)
			}
			waitDirect(t, ms[1], "w2", "x")
		})
	}
}

// TestReplicatedPrimaryDown: with the primary killed (server_failure_limit 1, no
// auto_eject_hosts, so placement does not change), reads under prefer-primary are
// served by the replica, writes are answered by the replica and land there; a frozen
// primary (SIGSTOP) is ejected after its timeout in the same way.
func TestReplicatedPrimaryDown(t *testing.T) {
	for _, mode := range []string{"killed", "frozen"} {
		t.Run(mode, func(t *testing.T) {
			ms := startMemcacheds(t, 2)
			addr := freeAddr(t)
			startProxy(t, parseConfig(t, replicatedYAML(addr, ms[:1], ms[1:],
				"  timeout: 300\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n  read_policy: prefer-primary\n")), kv.Options{})
			c := dialText(t, addr)
			if r := c.do("set k 0 0 1\r\nv\r\n"); r != "STORED\r\n" {
				t.Fatalf("set: %q", r)
			}
			setDirect(t, ms[1], "only", "R")
			if mode == "killed" {
				ms[0].Kill()
			} else {
				ms[0].Freeze()
				defer ms[0].Thaw()
			}
			// The first request may meet the dead primary and eject it (limit 1); a
			// killed one is usually ejected already, its connection having closed.
			if r := c.do("get k\r\n"); r != "VALUE k 0 1\r\nv\r\nEND\r\n" && !strings.HasPrefix(r, "SERVER_ERROR ") {
				t.Fatalf("first get: %q", r)
			}
			if r := c.do("get only\r\n"); r != "VALUE only 0 1\r\nR\r\nEND\r\n" {
				t.Fatalf("get from replica: %q", r)
			}
			if r := c.do("set k2 0 0 2\r\nv2\r\n"); r != "STORED\r\n" {
				t.Fatalf("set with primary down: %q", r)
			}
			if v, _ := direct(t, ms[1], "k2"); v != "v2" {
				t.Fatalf("k2 on replica: %q", v)
			}
			if r := c.do("get k2\r\n"); r != "VALUE k2 0 2\r\nv2\r\nEND\r\n" {
				t.Fatalf("get k2: %q", r)
			}
		})
	}
}

// TestReplicaDownWritesSucceed: a dead replica fails no write: every set is answered
// by the primary, from the first one on, and the reads (read_policy primary) see it.
func TestReplicaDownWritesSucceed(t *testing.T) {
	ms := startMemcacheds(t, 2)
	addr := freeAddr(t)
	startProxy(t, parseConfig(t, replicatedYAML(addr, ms[:1], ms[1:],
		"  timeout: 300\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n")), kv.Options{})
	ms[1].Kill()
	c := dialText(t, addr)
	for i := range 5 {
		k := fmt.Sprintf("d%d", i)
		if r := c.do("set " + k + " 0 0 1\r\nv\r\n"); r != "STORED\r\n" {
			t.Fatalf("set %s with the replica down: %q", k, r)
		}
		if r := c.do("get " + k + "\r\n"); r != "VALUE "+k+" 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("get %s: %q", k, r)
		}
		if v, _ := direct(t, ms[0], k); v != "v" {
			t.Fatalf("%s on primary: %q", k, v)
		}
	}
}
