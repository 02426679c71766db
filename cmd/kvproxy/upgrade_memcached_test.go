package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

// newMemcachedUpgradeEnv is newUpgradeEnv for a memcached pool "mc" of n memcached
// servers (ketama, so that multi-key gets are split across them).
func newMemcachedUpgradeEnv(t *testing.T, n int) *upgradeEnv {
	e := &upgradeEnv{t: t, dir: t.TempDir()}
	e.bin = buildKvproxy(t)
	e.listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.stats = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.conf = filepath.Join(e.dir, "nutcracker.yml")
	e.sock = filepath.Join(e.dir, "kvproxy.upgrade")
	e.pidPath = filepath.Join(e.dir, "kvproxy.pid")
	var b strings.Builder
	b.WriteString("mc:\n  listen: " + e.listen + "\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 5000\n  servers:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "    - %s:1 m%d\n", testenv.StartMemcached(t).Addr(), i)
	}
	e.writeConf(b.String())
	return e
}

// mcRequests is the number of requests the memcached servers of pool mc were sent, as
// the stats port reports it.
func mcRequests(doc map[string]any) float64 {
	pool, _ := doc["mc"].(map[string]any)
	total := 0.0
	for _, v := range pool {
		if srv, ok := v.(map[string]any); ok {
			r, _ := srv["requests"].(float64)
			total += r
		}
	}
	return total
}

// mcClients is pool mc's client_connections on the stats port.
func mcClients(doc map[string]any) float64 {
	pool, _ := doc["mc"].(map[string]any)
	cc, _ := pool["client_connections"].(float64)
	return cc
}

// handoverCounts reads clients_passed and clients_closed from an old process' log.
func handoverCounts(t *testing.T, log string) (passed, closed int) {
	t.Helper()
	m := regexp.MustCompile(`clients_passed=(\d+) clients_closed=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no handover report in the old process' log:\n%s", log)
	}
	passed, _ = strconv.Atoi(m[1])
	closed, _ = strconv.Atoi(m[2])
	return passed, closed
}

// mcText speaks memcached's text protocol (ASCII and meta) on one TCP connection that
// it never reopens.
type mcText struct {
	c *net.TCPConn
	r *bufio.Reader
}

func dialMCText(t *testing.T, addr string) *mcText {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mcText{c: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

// do sends req and reads reply lines until one of them is a line in ends (a data
// block's line included as read), returning them all.
func (m *mcText) do(req string, ends ...string) (string, error) {
	_ = m.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(m.c, req); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		line, err := m.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		for _, e := range ends {
			if line == e || (strings.HasSuffix(e, " ") && strings.HasPrefix(line, e)) {
				return b.String(), nil
			}
		}
		if strings.HasPrefix(line, "SERVER_ERROR") || line == "ERROR\r\n" || strings.HasPrefix(line, "CLIENT_ERROR") {
			return b.String(), errors.New(strings.TrimSpace(line))
		}
	}
}

// mcBinary speaks memcached's binary protocol on one TCP connection that it never
// reopens.
type mcBinary struct {
	c      *net.TCPConn
	r      *bufio.Reader
	opaque uint32
}

func dialMCBinary(t *testing.T, addr string) *mcBinary {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mcBinary{c: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

// binResp is one binary response.
type binResp struct {
	op         byte
	status     uint16
	opaque     uint32
	key, value string
}

func (m *mcBinary) read() (binResp, error) {
	var h [24]byte
	if _, err := io.ReadFull(m.r, h[:]); err != nil {
		return binResp{}, err
	}
	if h[0] != 0x81 {
		return binResp{}, fmt.Errorf("response magic %#x", h[0])
	}
	keyLen, extLen := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
	body := make([]byte, binary.BigEndian.Uint32(h[8:]))
	if _, err := io.ReadFull(m.r, body); err != nil {
		return binResp{}, err
	}
	if extLen+keyLen > len(body) {
		return binResp{}, fmt.Errorf("response lengths %d+%d over %d", extLen, keyLen, len(body))
	}
	return binResp{op: h[1], status: binary.BigEndian.Uint16(h[6:]), opaque: binary.BigEndian.Uint32(h[12:]),
		key: string(body[extLen : extLen+keyLen]), value: string(body[extLen+keyLen:])}, nil
}

// set stores k=v with a quiet set followed by a noop: only the noop's response may
// come back.
func (m *mcBinary) set(k, v string) error {
	m.opaque += 2
	req := memcache.AppendBinaryRequest(nil, memcache.OpSetQ, m.opaque, 0, make([]byte, 8), []byte(k), []byte(v))
	req = memcache.AppendBinaryRequest(req, memcache.OpNoop, m.opaque+1, 0, nil, nil, nil)
	_ = m.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.c.Write(req); err != nil {
		return err
	}
	r, err := m.read()
	if err == nil && (r.op != memcache.OpNoop || r.opaque != m.opaque+1) {
		err = fmt.Errorf("setq+noop answered op %#x status %#x opaque %d %q", r.op, r.status, r.opaque, r.value)
	}
	return err
}

// get reads k and a missing key in one group of getkq ended by a noop, as dalli and
// libmemcached do: the hit comes back with its key and opaque, then the noop.
func (m *mcBinary) get(k string) (string, error) {
	m.opaque += 3
	req := memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, m.opaque, 0, nil, []byte(k), nil)
	req = memcache.AppendBinaryRequest(req, memcache.OpGetKQ, m.opaque+1, 0, nil, []byte(k+":missing"), nil)
	req = memcache.AppendBinaryRequest(req, memcache.OpNoop, m.opaque+2, 0, nil, nil, nil)
	_ = m.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.c.Write(req); err != nil {
		return "", err
	}
	hit, err := m.read()
	if err != nil {
		return "", err
	}
	if hit.op != memcache.OpGetKQ || hit.status != 0 || hit.opaque != m.opaque || hit.key != k {
		return "", fmt.Errorf("getkq hit: op %#x status %#x opaque %d key %q value %q", hit.op, hit.status, hit.opaque, hit.key, hit.value)
	}
	noop, err := m.read()
	if err == nil && (noop.op != memcache.OpNoop || noop.opaque != m.opaque+2) {
		err = fmt.Errorf("group end: op %#x opaque %d", noop.op, noop.opaque)
	}
	return hit.value, err
}

// dalliScript connects Dalli (binary protocol) to KV_ADDR, prints the local port of its
// connection, then loops over set, get_multi with a miss and incr until a line arrives
// on its standard input; it goes on for 50 more rounds and prints "OK port P rounds N"
// with its connection's port then. Any wrong reply raises.
const dalliScript = `
require "dalli"
c = Dalli::Client.new(ENV.fetch("KV_ADDR"), socket_timeout: 5, socket_max_failures: 1, down_retry_delay: 0)
c.set("dalli:probe", "1", 0, raw: true)
port = -> { c.send(:ring).servers[0].sock.local_address.ip_port }
STDOUT.puts "port #{port.call}"
STDOUT.flush
marked = false
Thread.new { STDIN.gets; marked = true }
i = 0
after = 0
loop do
  k = "dalli:#{i % 50}"
  v = "v#{i}"
  raise "set #{i}" unless c.set(k, v, 0, raw: true)
  got = c.get_multi(k, "dalli:missing:#{i}")
  raise "get_multi #{i}: #{got.inspect}" unless got == { k => v }
  n = c.incr("dalli:ctr", 1, 0, 1)
  raise "incr #{i}: #{n.inspect}" unless n == i + 1
  i += 1
  if marked
    after += 1
    break if after >= 50
  end
end
STDOUT.puts "OK port #{port.call} rounds #{i}"
`

// TestUpgradeHandsMemcachedClientsOver upgrades a running kvproxy of a memcached pool
// (two servers) while four clients loop, each on one connection it never reopens: an
// ASCII one (set, then a get of two keys split across the servers), a meta one (quiet
// ms ended by mn, then mg), a binary one in Go (setq + noop, then a getkq group ended
// by a noop) and Dalli (binary: set, get_multi, incr). A fifth client is in the middle
// of an oversized value, answered "object too large" and still sending its bytes. No
// request fails, the old process passes all five (none closed) and exits 0, the new
// one counts them as its clients, each client's connection is the one it had (Dalli's
// local port included: Dalli would silently reconnect), Dalli's counter goes on
// across the takeover, and the oversized value's rest is skipped by the new process,
// which answers the same connection's next get.
func TestUpgradeHandsMemcachedClientsOver(t *testing.T) {
	ruby := testenv.LookPath(t, "ruby")
	if out, err := exec.Command(ruby, "-e", `require "dalli"`).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("dalli is not installed (Debian package ruby-dalli; scripts/setup.sh): %s", out)
		}
		t.Skipf("dalli is not installed (Debian package ruby-dalli): %s", out)
	}
	e := newMemcachedUpgradeEnv(t, 2)
	old := e.startServing()

	ascii, meta, bin, big := dialMCText(t, e.listen), dialMCText(t, e.listen), dialMCBinary(t, e.listen), dialMCText(t, e.listen)
	addrs := map[string]string{"ascii": ascii.c.LocalAddr().String(), "meta": meta.c.LocalAddr().String(),
		"binary": bin.c.LocalAddr().String(), "big": big.c.LocalAddr().String()}

	// The oversized set: refused at once (and the key unlinked, as memcached does),
	// with most of its value still to come.
	if r, err := big.do("set big 0 0 1\r\nx\r\n", "STORED\r\n"); err != nil {
		t.Fatalf("set big: %q %v", r, err)
	}
	const bigLen = 2 << 20
	half := strings.Repeat("v", 1000)
	if r, err := big.do("set big 0 0 " + strconv.Itoa(bigLen) + "\r\n" + half); err == nil || r != memcache.TooLargeReply {
		t.Fatalf("oversized set: %q %v", r, err)
	}

	dalli := exec.Command(ruby, "-e", dalliScript)
	dalli.Env = append(os.Environ(), "KV_ADDR="+e.listen)
	dalliIn, err := dalli.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	dalliOut, err := dalli.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	dalliErr := &testenv.SyncBuffer{}
	dalli.Stderr = dalliErr
	if err := dalli.Start(); err != nil {
		t.Fatal(err)
	}
	dalliDone := make(chan error, 1)
	go func() { dalliDone <- dalli.Wait() }()
	t.Cleanup(func() { dalli.Process.Kill(); <-dalliDone })
	dalliLines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(dalliOut)
		for sc.Scan() {
			dalliLines <- sc.Text()
		}
		close(dalliLines)
	}()
	var dalliPort string
	select {
	case l := <-dalliLines:
		dalliPort = strings.TrimPrefix(l, "port ")
	case <-time.After(30 * time.Second):
		t.Fatalf("dalli did not connect: %s", dalliErr.String())
	}

	const max = 200000
	stop := make(chan struct{})
	var nASCII, nMeta, nBin atomic.Int64
	results := make(chan loopResult, 3)
	go func() {
		results <- runLoop("ascii", &nASCII, stop, max,
			func(k, v string) error {
				_, err := ascii.do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v), "STORED\r\n")
				return err
			},
			func(k string) (string, error) {
				r, err := ascii.do("get "+k+" "+k+":missing\r\n", "END\r\n")
				if err != nil {
					return r, err
				}
				lines := strings.Split(r, "\r\n")
				if len(lines) != 4 || !strings.HasPrefix(lines[0], "VALUE "+k+" 0 ") {
					return r, fmt.Errorf("get: %q", r)
				}
				return lines[1], nil
			})
	}()
	go func() {
		results <- runLoop("meta", &nMeta, stop, max,
			func(k, v string) error {
				r, err := meta.do(fmt.Sprintf("ms %s %d q\r\n%s\r\nmn\r\n", k, len(v), v), "MN\r\n")
				if err == nil && r != "MN\r\n" {
					err = fmt.Errorf("quiet ms + mn: %q", r)
				}
				return err
			},
			func(k string) (string, error) {
				r, err := meta.do("mg "+k+" v k\r\n", "EN\r\n", "VA ")
				if err != nil || !strings.HasPrefix(r, "VA ") {
					return r, err
				}
				if !strings.Contains(r, " k"+k+"\r\n") {
					return r, fmt.Errorf("mg: %q", r)
				}
				v, err := meta.r.ReadString('\n')
				return strings.TrimSuffix(v, "\r\n"), err
			})
	}()
	go func() { results <- runLoop("binary", &nBin, stop, max, bin.set, bin.get) }()
	stopped := false
	stopLoops := func() []loopResult {
		if !stopped {
			close(stop)
			stopped = true
		}
		return []loopResult{<-results, <-results, <-results}
	}
	defer func() {
		if !stopped {
			stopLoops()
		}
	}()
	waitUntil(t, "the clients running", 20*time.Second, func() bool {
		return nASCII.Load() > 50 && nMeta.Load() > 50 && nBin.Load() > 50
	})

	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	if passed, closed := handoverCounts(t, old.log.String()); passed != 5 || closed != 0 {
		t.Errorf("the old process passed %d clients and closed %d; want 5 and 0", passed, closed)
	}
	waitUntil(t, "the new process serving the 5 clients handed over", 10*time.Second, func() bool {
		return mcClients(statsDoc(t, e.stats)) == 5
	})
	atASCII, atMeta, atBin := nASCII.Load(), nMeta.Load(), nBin.Load()
	waitUntil(t, "the clients served by the new process", 20*time.Second, func() bool {
		return nASCII.Load() > atASCII+50 && nMeta.Load() > atMeta+50 && nBin.Load() > atBin+50
	})
	if _, err := io.WriteString(dalliIn, "mark\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-dalliDone:
		dalliDone <- err
		if err != nil {
			t.Errorf("dalli: %v\n%s", err, dalliErr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dalli did not finish")
	}
	if l := <-dalliLines; !strings.HasPrefix(l, "OK port "+dalliPort+" ") {
		t.Errorf("dalli after the takeover: %q, want its connection on port %s kept\n%s", l, dalliPort, dalliErr.String())
	}
	for _, r := range stopLoops() {
		if len(r.errs) > 0 {
			t.Errorf("%s client: %d errors across the upgrade: %v", r.name, len(r.errs), r.errs)
		}
	}
	for name, c := range map[string]*net.TCPConn{"ascii": ascii.c, "meta": meta.c, "binary": bin.c, "big": big.c} {
		if got := c.LocalAddr().String(); got != addrs[name] {
			t.Errorf("%s client's connection changed: %s, was %s", name, got, addrs[name])
		}
	}

	// The rest of the oversized value reaches the new process, which skips it, then
	// answers the get that follows on the same connection.
	rest := strings.Repeat("v", bigLen-len(half)) + "\r\n"
	if r, err := big.do(rest+"get big\r\n", "END\r\n"); err != nil || r != "END\r\n" {
		t.Errorf("get after the oversized value's rest: %q %v", r, err)
	}
	if r, err := bin.get("binary:1"); err != nil || !strings.HasPrefix(r, "v") {
		t.Errorf("binary client after the takeover: %q %v", r, err)
	}
	select {
	case <-nw.exited:
		t.Fatalf("new kvproxy exited: %v", nw.err)
	default:
	}
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	if err := nw.wait(t, 30*time.Second); err != nil {
		t.Errorf("new kvproxy on SIGTERM: %v", err)
	}
}

// TestUpgradeUnderMemcslap takes over while two memcslap loads run through kvproxy, 8
// threads of text-protocol sets and 8 of binary-protocol gets, each thread on its own
// connection: neither reports an error, every connection of theirs is passed to the
// new process (none closed), and the new process served part of the load.
func TestUpgradeUnderMemcslap(t *testing.T) {
	memcslap := testenv.LookPath(t, "memcslap")
	e := newMemcachedUpgradeEnv(t, 2)
	old := e.startServing()
	// The sets run longest: the gets' threads start once their keys are loaded, and
	// the takeover waits for both.
	def := 20000
	if raceBuild {
		def = 6000 // a kvproxy built with the race detector is several times slower
	}
	n := testenv.EnvInt("KV_UPGRADE_MEMCSLAP_N", def)
	type load struct {
		name string
		cmd  *exec.Cmd
		out  *testenv.SyncBuffer
		done chan error
	}
	var loads []*load
	for _, args := range [][]string{
		{"--test=set", "--execute-number=" + strconv.Itoa(2*n)},
		{"--test=get", "--binary", "--execute-number=" + strconv.Itoa(n)},
	} {
		l := &load{name: strings.Join(args[:len(args)-1], " "), out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
		l.cmd = exec.Command(memcslap, append([]string{"--servers=" + e.listen, "--concurrency=8"}, args...)...)
		l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
		if err := l.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { l.done <- l.cmd.Wait() }()
		t.Cleanup(func() { l.cmd.Process.Kill(); <-l.done })
		loads = append(loads, l)
	}
	waitUntil(t, "both loads under way", 60*time.Second, func() bool {
		doc := statsDoc(t, e.stats)
		return mcClients(doc) >= 16 && mcRequests(doc) > 5000
	})
	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	served := mcRequests(statsDoc(t, e.stats))
	for _, l := range loads {
		select {
		case err := <-l.done:
			l.done <- err
			if err != nil {
				t.Fatalf("memcslap %s failed during the takeover (%v):\n%s", l.name, err, l.out.String())
			}
			t.Fatalf("memcslap %s ended before the takeover was complete: raise KV_UPGRADE_MEMCSLAP_N\n%s", l.name, l.out.String())
		default:
		}
	}
	passed, closed := handoverCounts(t, old.log.String())
	if passed < 16 || closed != 0 {
		t.Errorf("the old process passed %d clients and closed %d; want the 16 load threads' at least, none closed", passed, closed)
	}
	for _, l := range loads {
		select {
		case err := <-l.done:
			l.done <- err
			if err != nil {
				t.Errorf("memcslap %s: %v", l.name, err)
			}
		case <-time.After(5 * time.Minute):
			t.Fatalf("memcslap %s did not finish", l.name)
		}
		out := l.out.String()
		if s := strings.ToLower(out); strings.Contains(s, "error") || strings.Contains(s, "fail") {
			t.Errorf("memcslap %s saw errors:\n%s", l.name, out)
		}
		if !strings.Contains(out, "Time total:") {
			t.Errorf("memcslap %s did not finish its run:\n%s", l.name, out)
		}
		t.Logf("memcslap %s across the takeover:\n%s", l.name, out)
	}
	if r := mcRequests(statsDoc(t, e.stats)); r <= served {
		t.Errorf("the new process served %v requests, %v right after the takeover: the loads did not run on it", r, served)
	}
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	_ = nw.wait(t, 30*time.Second)
}

// TestUpgradeMemcachedQuietRuns: a binary client in the middle of a group of quiet
// gets (getkq sent, its noop not yet) is not handed over while the group is open: the
// old process waits, answers the group once the noop arrives (the hit, then the
// noop), and then passes the connection, on which the new process answers the next
// group. A meta client in the middle of a quiet run (mg q of a miss, nothing
// answered) is at a boundary: it is passed at once, and the mn it sends to the new
// process is answered with MN alone (no stray EN).
func TestUpgradeMemcachedQuietRuns(t *testing.T) {
	e := newMemcachedUpgradeEnv(t, 2)
	old := e.startServing()
	bin, meta := dialMCBinary(t, e.listen), dialMCText(t, e.listen)
	if err := bin.set("quiet:k", "hit"); err != nil {
		t.Fatal(err)
	}
	if r, err := meta.do("ms quiet:m 2\r\nmv\r\n", "HD\r\n"); err != nil {
		t.Fatalf("ms: %q %v", r, err)
	}
	_ = bin.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := bin.c.Write(memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, 7, 0, nil, []byte("quiet:k"), nil)); err != nil {
		t.Fatal(err)
	}
	if r, err := meta.do("mg quiet:missing v q\r\nmn\r\n", "MN\r\n"); err != nil || r != "MN\r\n" {
		t.Fatalf("quiet miss then mn: %q %v", r, err)
	}
	if _, err := io.WriteString(meta.c, "mg quiet:missing2 v q\r\n"); err != nil {
		t.Fatal(err)
	}

	nw := e.start("--takeover", e.sock)
	waitUntil(t, "the old process handing its clients over", 30*time.Second, func() bool {
		return strings.Contains(old.log.String(), "handing over the clients")
	})
	select {
	case <-old.exited:
		t.Fatalf("the old process exited with the binary group still open: %v", old.err)
	default:
	}
	req := memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, 8, 0, nil, []byte("quiet:missing"), nil)
	req = memcache.AppendBinaryRequest(req, memcache.OpNoop, 9, 0, nil, nil, nil)
	if _, err := bin.c.Write(req); err != nil {
		t.Fatal(err)
	}
	hit, err := bin.read()
	if err != nil || hit.op != memcache.OpGetKQ || hit.opaque != 7 || hit.key != "quiet:k" || hit.value != "hit" {
		t.Fatalf("group's hit: %+v %v", hit, err)
	}
	if noop, err := bin.read(); err != nil || noop.op != memcache.OpNoop || noop.opaque != 9 {
		t.Fatalf("group's end: %+v %v", noop, err)
	}
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	if passed, closed := handoverCounts(t, old.log.String()); passed != 2 || closed != 0 {
		t.Errorf("the old process passed %d clients and closed %d; want 2 and 0", passed, closed)
	}
	if v, err := bin.get("quiet:k"); err != nil || v != "hit" {
		t.Errorf("binary group on the new process: %q %v", v, err)
	}
	if r, err := meta.do("mn\r\n", "MN\r\n"); err != nil || r != "MN\r\n" {
		t.Errorf("mn on the new process after a quiet miss: %q %v", r, err)
	}
	if r, err := meta.do("mg quiet:m v q\r\nmn\r\n", "MN\r\n"); err != nil || r != "VA 2\r\nmv\r\nMN\r\n" {
		t.Errorf("quiet hit then mn on the new process: %q %v", r, err)
	}
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	if err := nw.wait(t, 30*time.Second); err != nil {
		t.Errorf("new kvproxy on SIGTERM: %v", err)
	}
}
