package kvmemcache_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// TestFrozenServerPipeline freezes one of 4 memcached servers (SIGSTOP: it accepts
// connections and answers nothing) while one client pipelines 2000 gets over all of
// them with timeout 1000 ms: every reply arrives within the timeout plus 0.5 s of
// the pipeline being sent (plus what the same pipeline took with every server up),
// the frozen server's keys get "SERVER_ERROR Connection
// timed out" and every other key its value.
func TestFrozenServerPipeline(t *testing.T) {
	ms := startMemcacheds(t, 4)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mc", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n"))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 4, 50, "frz:")
	c := dialText(t, addr)
	var all []string
	for _, keys := range ks {
		for _, k := range keys {
			if r := c.do("set " + k + " 0 0 " + fmt.Sprint(len(k)) + "\r\n" + k + "\r\n"); r != "STORED\r\n" {
				t.Fatalf("set %s: %q", k, r)
			}
			all = append(all, k)
		}
	}
	isFrozen := map[string]bool{}
	for _, k := range ks[0] {
		isFrozen[k] = true
	}

	const n = 2000
	var req strings.Builder
	want := make([]string, n)
	for i := 0; i < n; i++ {
		k := all[i%len(all)]
		req.WriteString("get " + k + "\r\n")
		want[i] = fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
	}
	// The same pipeline with every server answering: how long this machine, loaded
	// or not, takes to carry it, which the bound below allows on top of the timeout.
	// A client loop waiting a timeout per batch it reads would still cost a whole
	// timeout per extra batch.
	start := time.Now()
	c.send(req.String())
	for i := 0; i < n; i++ {
		if r, err := c.replyErr(5 * time.Second); err != nil || r != want[i] {
			t.Fatalf("reply %d with every server up: %q %v, want %q", i, r, err, want[i])
		}
	}
	base := time.Since(start)
	for i := 0; i < n; i++ {
		if isFrozen[all[i%len(all)]] {
			want[i] = "SERVER_ERROR Connection timed out\r\n"
		}
	}
	frozen := byAddr(t, ms, addrOf(cfg, 0))
	frozen.Freeze()
	defer frozen.Thaw()
	type result struct {
		reply string
		at    time.Time
		err   error
	}
	results := make(chan result, n)
	go func() {
		for i := 0; i < n; i++ {
			r, err := c.replyErr(5 * time.Second)
			results <- result{r, time.Now(), err}
			if err != nil {
				return
			}
		}
	}()
	sent := time.Now()
	c.send(req.String())
	limit := sent.Add(1500*time.Millisecond + raceMargin + base)
	var late, wrong int
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("reply %d: %v (have %q)", i, r.err, r.reply)
		}
		if r.at.After(limit) {
			late++
		}
		if r.reply != want[i] {
			if wrong == 0 {
				t.Errorf("reply %d: %q, want %q", i, r.reply, want[i])
			}
			wrong++
		}
	}
	if late > 0 || wrong > 0 {
		t.Fatalf("%d replies later than timeout + 0.5 s (+%v under -race) + %v (the pipeline without a frozen server), %d wrong", late, raceMargin, base, wrong)
	}
}

// TestEjectFrozenServer: with auto_eject_hosts and server_failure_limit 2, a frozen
// memcached is ejected after two timeouts, its keys are then served by the other
// servers, and the ejection shows in the stats JSON and the Prometheus metrics.
func TestEjectFrozenServer(t *testing.T) {
	ms := startMemcacheds(t, 3)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mc", addr, ms, true,
		"  hash: fnv1a_64\n  distribution: ketama\n  timeout: 300\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 60000\n"))
	p := startProxy(t, cfg, kv.Options{StatsAddr: "127.0.0.1:0"})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 3, 5, "ej:")
	c := dialText(t, addr)
	for _, keys := range ks {
		for _, k := range keys {
			if r := c.do("set " + k + " 0 0 1\r\nv\r\n"); r != "STORED\r\n" {
				t.Fatalf("set %s: %q", k, r)
			}
		}
	}
	frozen := byAddr(t, ms, addrOf(cfg, 0))
	frozen.Freeze()
	defer frozen.Thaw()
	k := ks[0][0]
	errs := 0
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("still not ejected after %d timeouts", errs)
		}
		r := c.do("get " + k + "\r\n")
		if r == "SERVER_ERROR Connection timed out\r\n" {
			errs++
			continue
		}
		if r != "END\r\n" {
			t.Fatalf("get %s after ejection: %q, want a miss from another server", k, r)
		}
		break
	}
	if errs != 2 {
		t.Fatalf("%d timeouts before ejection, want server_failure_limit = 2", errs)
	}
	for _, k := range ks[0] {
		if r := c.do("set " + k + " 0 0 2\r\nv2\r\n"); r != "STORED\r\n" {
			t.Fatalf("set %s after ejection: %q", k, r)
		}
		if r := c.do("get " + k + "\r\n"); r != "VALUE "+k+" 0 2\r\nv2\r\nEND\r\n" {
			t.Fatalf("get %s after ejection: %q", k, r)
		}
		found := 0
		for _, m := range ms {
			if m != frozen {
				if v, ok := direct(t, m, k); ok && v == "v2" {
					found++
				}
			}
		}
		if found != 1 {
			t.Fatalf("key %s on %d live servers, want 1", k, found)
		}
	}
	// Keys of the live servers were never affected.
	for _, k := range ks[1] {
		if r := c.do("get " + k + "\r\n"); r != "VALUE "+k+" 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("get %s: %q", k, r)
		}
	}

	nc, err := net.Dial("tcp", p.StatsAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(nc)
	nc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("stats: %v: %s", err, b)
	}
	pool, _ := doc["mc"].(map[string]any)
	s0, _ := pool["s0"].(map[string]any)
	if pool["server_ejects"] != float64(1) || s0 == nil || s0["server_ejected_at"] == float64(0) || s0["server_timedout"] != float64(2) {
		t.Fatalf("stats: %s", b)
	}
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	ejections := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "kvproxy_server_ejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && l.GetValue() == "s0" {
					ejections = m.GetCounter().GetValue()
				}
			}
		}
	}
	if ejections != 1 {
		t.Fatalf("kvproxy_server_ejections_total{server=s0} = %v, want 1", ejections)
	}
}

// TestFailedMultiGetKeepsConnection: with one server down (connection refused), a
// single-key get of its key is answered "SERVER_ERROR Connection refused", as in
// twemproxy; a multi-key get with a part on it gets that one SERVER_ERROR (not a miss,
// not the live server's hits), as in twemproxy, and the connection stays open (twemproxy
// closes it): requests pipelined after it are answered. A meta client's mg of the down
// key gets the error and the next mg its value. A binary client's get of that key gets
// status 0x84 with the same text, its opaque kept; in a group of quiet gets ended by a
// noop the down key gets that error response, the live key its hit, then the noop.
func TestFailedMultiGetKeepsConnection(t *testing.T) {
	ms := startMemcacheds(t, 2)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mc", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n"))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 2, 1, "down:")
	byAddr(t, ms, addrOf(cfg, 0)).Kill()
	down, up := ks[0][0], ks[1][0]

	c := dialText(t, addr)
	if r := c.do("get " + down + "\r\n"); r != "SERVER_ERROR Connection refused\r\n" {
		t.Fatalf("get of a down server's key: %q", r)
	}
	if r := c.do("set " + up + " 0 0 1\r\nv\r\n"); r != "STORED\r\n" {
		t.Fatalf("set after a single-key error: %q", r)
	}
	c.send("get " + up + " " + down + "\r\ngets " + down + " " + up + "\r\nget " + up + "\r\nmg " + down + " v\r\nmg " + up + " v\r\nmn\r\n")
	for i, want := range []string{"SERVER_ERROR Connection refused\r\n", "SERVER_ERROR Connection refused\r\n",
		"VALUE " + up + " 0 1\r\nv\r\nEND\r\n", "SERVER_ERROR Connection refused\r\n", "VA 1\r\nv\r\n", "MN\r\n"} {
		if r, err := c.replyErr(5 * time.Second); err != nil || r != want {
			t.Fatalf("reply %d after a failed multi-get: %q, %v; want %q on the same connection", i, r, err, want)
		}
	}

	bc := dialText(t, addr)
	bget := func(key string, opaque byte) []byte {
		h := make([]byte, 24)
		h[0], h[1], h[3], h[11], h[15] = 0x80, 0x00, byte(len(key)), byte(len(key)), opaque
		return append(h, key...)
	}
	bc.send(string(bget(down, 7)) + string(bget(up, 8)))
	for _, want := range []struct {
		opaque byte
		status uint16
		body   string
	}{{7, 0x84, "Connection refused"}, {8, 0, "\x00\x00\x00\x00v"}} {
		h := make([]byte, 24)
		if _, err := io.ReadFull(bc.nc, h); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, int(h[8])<<24|int(h[9])<<16|int(h[10])<<8|int(h[11]))
		if _, err := io.ReadFull(bc.nc, body); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || h[15] != want.opaque || uint16(h[6])<<8|uint16(h[7]) != want.status || !strings.Contains(string(body), want.body) {
			t.Fatalf("binary reply: header % x body %q; want opaque %d status %#x body %q", h, body, want.opaque, want.status, want.body)
		}
	}
	// Quiet gets (getkq) of both keys and a noop: one response per key, then the noop.
	getkq := func(key string, opaque byte) string {
		b := bget(key, opaque)
		b[1] = 0x0d
		return string(b)
	}
	noop := string([]byte{0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})
	bc.send(getkq(down, 1) + getkq(up, 2) + noop)
	for _, want := range []struct {
		opcode, opaque byte
		status         uint16
		body           string
	}{{0x0d, 1, 0x84, "Connection refused"}, {0x0d, 2, 0, up + "v"}, {0x0a, 9, 0, ""}} {
		h := make([]byte, 24)
		if _, err := io.ReadFull(bc.nc, h); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, int(h[8])<<24|int(h[9])<<16|int(h[10])<<8|int(h[11]))
		if _, err := io.ReadFull(bc.nc, body); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || h[1] != want.opcode || h[15] != want.opaque || uint16(h[6])<<8|uint16(h[7]) != want.status || !strings.Contains(string(body), want.body) {
			t.Fatalf("binary quiet group reply: header % x body %q; want opcode %#x opaque %d status %#x body %q", h, body, want.opcode, want.opaque, want.status, want.body)
		}
	}
}

// TestAllServersDownThenRestart: with every server of the pool down, each request is
// answered at once with SERVER_ERROR (no hang, the client connection stays usable for
// single-key requests); once the servers are restarted the same connection is served.
func TestAllServersDownThenRestart(t *testing.T) {
	ms := startMemcacheds(t, 2)
	addr := freeAddr(t)
	cfg := parseConfig(t, poolYAML("mc", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 1000\n  server_retry_timeout: 200\n"))
	startProxy(t, cfg, kv.Options{})
	ks := keysByServer(t, picker(t, cfg.Pools[0]), 2, 1, "all:")
	c := dialText(t, addr)
	for _, m := range ms {
		m.Kill()
	}
	for i := 0; i < 3; i++ {
		for _, k := range []string{ks[0][0], ks[1][0]} {
			start := time.Now()
			r := c.do("set " + k + " 0 0 1\r\nv\r\n")
			if !strings.HasPrefix(r, "SERVER_ERROR ") {
				t.Fatalf("set with every server down: %q", r)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("set with every server down answered after %v", d)
			}
		}
	}
	for _, m := range ms {
		m.Restart(t)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, k := range []string{ks[0][0], ks[1][0]} {
		for {
			r := c.do("set " + k + " 0 0 1\r\nv\r\n")
			if r == "STORED\r\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("set after the servers came back: %q", r)
			}
			time.Sleep(50 * time.Millisecond) // the retry of a failed server is timed by server_retry_timeout
		}
		if r := c.do("get " + k + "\r\n"); r != "VALUE "+k+" 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("get after restart: %q", r)
		}
	}
}
