package kvmemcache_test

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// valueBlocks splits a retrieval reply into its VALUE blocks (sorted) and the rest.
func valueBlocks(r string) []string {
	var out []string
	for strings.HasPrefix(r, "VALUE ") {
		line, rest, _ := strings.Cut(r, "\r\n")
		f := strings.Fields(line)
		n := 0
		for _, c := range f[3] {
			n = n*10 + int(c-'0')
		}
		out = append(out, line+"\r\n"+rest[:n+2])
		r = rest[n+2:]
	}
	slices.Sort(out)
	return append(out, r)
}

// TestTextRepliesMatchNutcracker sends one sequence of ASCII requests to nutcracker
// and to kvproxy, each in front of two fresh memcached servers with the same placement
// (named servers), and compares the replies one for one: storage, retrieval, multi-get
// with misses and duplicates, cas, incr/decr, touch, delete, noreply, a value holding
// CRLF. The one deliberate difference: a multi-get with misses is answered in request
// order by kvproxy, while nutcracker lets a later hit of the same server move up; those
// replies are compared as sets of VALUE blocks. Last, a request nutcracker does not
// parse (upper-case GET) closes the connection without a reply on both.
func TestTextRepliesMatchNutcracker(t *testing.T) {
	twMs, kvMs := startMemcacheds(t, 2), startMemcacheds(t, 2)
	settings := "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n"
	twAddr, kvAddr := freeAddr(t), freeAddr(t)
	testenv.StartNutcracker(t, poolYAML("mc", twAddr, twMs, true, settings), twAddr)
	cfg := parseConfig(t, poolYAML("mc", kvAddr, kvMs, true, settings))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 2, 3, "cmp:")
	a, b, c, d, e, n := ks[0][0], ks[1][0], ks[0][1], ks[1][1], ks[0][2], ks[1][2]
	big := strings.Repeat("0123456789\r\n", 200)

	type step struct {
		req    string
		sorted bool // a multi-get with misses: compare the VALUE blocks as a set
	}
	steps := []step{
		{req: "set " + a + " 5 0 3\r\nabc\r\n"},
		{req: "set " + b + " 0 0 1\r\nx\r\n"},
		{req: "get " + a + "\r\n"},
		{req: "gets " + a + "\r\n"},
		{req: "get " + a + " " + b + "\r\n"},
		{req: "get " + c + " " + b + " " + a + " " + d + "\r\n", sorted: true},
		{req: "get " + a + " " + b + " " + a + "\r\n"},
		{req: "gets " + b + " " + c + " " + a + "\r\n", sorted: true},
		{req: "get " + c + " " + d + "\r\n"},
		{req: "add " + a + " 0 0 1\r\ny\r\n"},
		{req: "add " + c + " 0 0 1\r\ny\r\n"},
		{req: "replace " + d + " 0 0 1\r\ny\r\n"},
		{req: "replace " + c + " 7 0 2\r\nzz\r\n"},
		{req: "append " + a + " 0 0 2\r\n++\r\n"},
		{req: "prepend " + a + " 0 0 2\r\n--\r\n"},
		{req: "prepend " + d + " 0 0 2\r\n--\r\n"},
		{req: "gets " + a + "\r\n"},
		{req: "cas " + a + " 1 0 1 {cas}\r\nq\r\n"},
		{req: "cas " + a + " 1 0 1 {cas}\r\nr\r\n"},
		{req: "cas " + d + " 1 0 1 1\r\nr\r\n"},
		{req: "get " + a + "\r\n"},
		{req: "incr " + n + " 1\r\n"},
		{req: "set " + n + " 0 0 2\r\n10\r\n"},
		{req: "incr " + n + " 5\r\n"},
		{req: "decr " + n + " 100\r\n"},
		{req: "incr " + n + " 18446744073709551615\r\n"},
		{req: "incr " + a + " 1\r\n"},
		{req: "touch " + a + " 100\r\n"},
		{req: "touch " + d + " 100\r\n"},
		{req: "delete " + b + "\r\n"},
		{req: "delete " + b + "\r\n"},
		{req: "set " + e + " 0 0 1 noreply\r\ny\r\nget " + e + "\r\n"},
		{req: "delete " + e + " noreply\r\nget " + e + "\r\n"},
		{req: "incr " + n + " 3 noreply\r\nget " + n + "\r\n"},
		{req: "touch " + n + " 10 noreply\r\ncas " + n + " 0 0 1 1 noreply\r\nz\r\nadd " + n + " 0 0 1 noreply\r\nz\r\nget " + n + "\r\n"},
		{req: "set " + d + " 3 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"},
		{req: "get " + d + " " + c + "\r\n"},
		{req: "set " + b + " 0 0 0\r\n\r\n"},
		{req: "get " + b + "\r\n"},
		{req: "version\r\n"},
	}
	tw, kc := dialText(t, twAddr), dialText(t, kvAddr)
	cas := map[*textConn]string{}
	for i, s := range steps {
		var got [2]string
		for j, cn := range []*textConn{tw, kc} {
			got[j] = cn.do(strings.ReplaceAll(s.req, "{cas}", cas[cn]))
			if f := strings.Fields(got[j]); len(f) >= 5 && f[0] == "VALUE" {
				cas[cn] = f[4]
			}
		}
		if s.sorted {
			if !slices.Equal(valueBlocks(got[0]), valueBlocks(got[1])) {
				t.Errorf("step %d %q:\nnutcracker %q\nkvproxy    %q", i, s.req, got[0], got[1])
			}
		} else if got[0] != got[1] {
			t.Errorf("step %d %q:\nnutcracker %q\nkvproxy    %q", i, s.req, got[0], got[1])
		}
	}
	// In request order: the request-order merge is kvproxy's own rule.
	want := "VALUE " + b + " 0 1\r\nx\r\nVALUE " + a + " 5 3\r\nabc\r\nEND\r\n"
	kc.do("set " + b + " 0 0 1\r\nx\r\n")
	kc.do("set " + a + " 5 0 3\r\nabc\r\n")
	if got := kc.do("get " + c + "x " + b + " " + a + "\r\n"); got != want {
		t.Errorf("multi-get order: %q, want %q", got, want)
	}
	for j, cn := range []*textConn{tw, kc} {
		cn.send("GET " + a + "\r\n")
		if r, err := cn.replyErr(5 * time.Second); !errors.Is(err, io.EOF) || r != "" {
			t.Errorf("%s: upper-case GET: %q, %v; want the connection closed without a reply", []string{"nutcracker", "kvproxy"}[j], r, err)
		}
	}
}
