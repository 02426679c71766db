package kvmemcache_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// clientPool starts 3 memcached servers behind kvproxy and returns its address.
func clientPool(t *testing.T) (addr string, ms []*testenv.Memcached) {
	ms = startMemcacheds(t, 3)
	addr = freeAddr(t)
	startProxy(t, parseConfig(t, poolYAML("mc", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n")), kv.Options{})
	return addr, ms
}

// TestDalli runs Debian's ruby-dalli 3.0.6, which speaks only the binary protocol,
// through kvproxy: get_multi over every server with misses (getkq + noop split per
// server), cas, incr/decr with an initial value, touch, a 500 KB value, quiet sets in
// a multi block, delete, add, replace, version.
func TestDalli(t *testing.T) {
	ruby := testenv.LookPath(t, "ruby")
	if out, err := exec.Command(ruby, "-e", `require "dalli"`).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("dalli is not installed (Debian package ruby-dalli; scripts/setup.sh): %s", out)
		}
		t.Skipf("dalli is not installed (Debian package ruby-dalli): %s", out)
	}
	addr, ms := clientPool(t)
	// The script's expectations are memcached's own: it passes on one memcached
	// directly, then through kvproxy.
	for _, a := range []string{startMemcacheds(t, 1)[0].Addr(), addr} {
		cmd := exec.Command(ruby, "testdata/dalli.rb")
		cmd.Env = append(os.Environ(), "KV_ADDR="+a)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "OK\n") {
			t.Fatalf("dalli at %s (kvproxy %s): %v\n%s", a, addr, err, out)
		}
	}
	// The keys really are spread: every server holds some.
	for _, m := range ms {
		if r := dialText(t, m.Addr()).do("stats\r\n"); !strings.Contains(r, "STAT curr_items ") || strings.Contains(r, "STAT curr_items 0\r\n") {
			t.Fatalf("server %s holds no item", m.Addr())
		}
	}
}

// TestLibmemcachedTools copies files through kvproxy with memccp and reads them back
// with memccat, in text and binary protocol, and runs memcslap's set and get loads
// in both.
func TestLibmemcachedTools(t *testing.T) {
	memccp, memccat, memcslap := testenv.LookPath(t, "memccp"), testenv.LookPath(t, "memccat"), testenv.LookPath(t, "memcslap")
	addr, _ := clientPool(t)
	dir := t.TempDir()
	var files []string
	for i, size := range []int{0, 10, 100 << 10, 900 << 10} {
		name := filepath.Join(dir, "file"+string(rune('a'+i)))
		data := bytes.Repeat([]byte{byte('a' + i), '\r', '\n', 0}, size/4)
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	for _, proto := range [][]string{nil, {"--binary"}} {
		args := append([]string{"--servers=" + addr}, proto...)
		if out, err := exec.Command(memccp, append(args, files...)...).CombinedOutput(); err != nil {
			t.Fatalf("memccp %v: %v\n%s", proto, err, out)
		}
		for _, f := range files {
			want, _ := os.ReadFile(f)
			want = append(want, '\n') // memccat ends each value with a newline
			got, err := exec.Command(memccat, append(args, filepath.Base(f))...).Output()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("memccat %v %s: %v, %d bytes, want %d", proto, filepath.Base(f), err, len(got), len(want))
			}
		}
		for _, test := range []string{"set", "get", "mget"} {
			out, err := exec.Command(memcslap, append(args, "--test="+test, "--concurrency=4", "--execute-number=500")...).CombinedOutput()
			if err != nil || bytes.Contains(bytes.ToLower(out), []byte("fail")) {
				t.Fatalf("memcslap %v --test=%s: %v\n%s", proto, test, err, out)
			}
		}
	}
}

// TestMetaQuietPipeline sends a meta-protocol pipeline in quiet mode over keys of
// every server, ended by mn: only the non-nominal replies come back (hits of mg q,
// NS/NF of ms/md q), in request order, and MN after all of them.
func TestMetaQuietPipeline(t *testing.T) {
	ms := startMemcacheds(t, 3)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mc", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n"))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 3, 2, "meta:")
	c := dialText(t, addr)
	var req, want strings.Builder
	for s := 0; s < 3; s++ {
		k := ks[s][0]
		req.WriteString("ms " + k + " 2 q T0 F" + string(rune('1'+s)) + "\r\nv" + string(rune('0'+s)) + "\r\n")
	}
	for s := 0; s < 3; s++ {
		k, miss := ks[s][0], ks[s][1]
		req.WriteString("mg " + miss + " v q\r\n")
		req.WriteString("mg " + k + " v q k f\r\n")
		want.WriteString("VA 2 k" + k + " f" + string(rune('1'+s)) + "\r\nv" + string(rune('0'+s)) + "\r\n")
		req.WriteString("md " + miss + " q\r\n")
		want.WriteString("NF\r\n")
		req.WriteString("ms " + miss + " 1 q ME\r\nx\r\n") // add: stored, HD hidden
		req.WriteString("ms " + k + " 1 q ME\r\nx\r\n")    // add on an existing key: NS
		want.WriteString("NS\r\n")
	}
	req.WriteString("mn\r\n")
	want.WriteString("MN\r\n")
	c.send(req.String())
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "MN\r\n") {
		got.WriteString(c.reply())
	}
	if got.String() != want.String() {
		t.Fatalf("meta pipeline:\n got %q\nwant %q", got.String(), want.String())
	}
	// The quiet adds did store.
	for s := 0; s < 3; s++ {
		if r := c.do("mg " + ks[s][1] + " v\r\n"); r != "VA 1\r\nx\r\n" {
			t.Fatalf("mg %s: %q", ks[s][1], r)
		}
	}
}
