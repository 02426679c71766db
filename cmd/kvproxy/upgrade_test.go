package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// upgradeEnv is a kvproxy binary, a Redis with a password, and a nutcracker.yml for
// one pool on a free port, with the flags every process of a test runs with.
type upgradeEnv struct {
	t                      *testing.T
	bin, dir, conf, listen string
	stats, sock, pidPath   string
}

func newUpgradeEnv(t *testing.T) *upgradeEnv {
	e := &upgradeEnv{t: t, dir: t.TempDir()}
	e.bin = buildKvproxy(t)
	r := testenv.StartRedis(t, testenv.RedisOptions{Args: []string{"--requirepass", "secret"}})
	e.listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.stats = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.conf = filepath.Join(e.dir, "nutcracker.yml")
	e.sock = filepath.Join(e.dir, "kvproxy.upgrade")
	e.pidPath = filepath.Join(e.dir, "kvproxy.pid")
	e.writeConf("alpha:\n  listen: " + e.listen + "\n  redis: true\n  redis_auth: secret\n  servers:\n    - " + r.Addr() + ":1 one\n")
	return e
}

// buildKvproxy builds kvproxy for the upgrade tests, with the race detector when the
// tests run with it: a data race in a process they start then shows in its log and
// in its exit status (66), which the tests check.
func buildKvproxy(t *testing.T) string {
	t.Helper()
	if !raceBuild {
		return testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/kvproxy", t.TempDir())
	}
	bin := filepath.Join(t.TempDir(), "kvproxy")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/poolsuite/poolsuite/cmd/kvproxy").CombinedOutput(); err != nil {
		t.Fatalf("go build -race kvproxy: %v\n%s", err, out)
	}
	return bin
}

func (e *upgradeEnv) writeConf(s string) {
	if err := os.WriteFile(e.conf, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// proc is one kvproxy process of a test.
type proc struct {
	cmd    *exec.Cmd
	log    *testenv.SyncBuffer
	exited chan struct{}
	err    error // the exit status, after exited
}

// start runs kvproxy with the test's flags and extra ones; it is killed at cleanup.
func (e *upgradeEnv) start(extra ...string) *proc {
	e.t.Helper()
	_, port, _ := net.SplitHostPort(e.stats)
	args := append([]string{"-c", e.conf, "-s", port, "-a", "127.0.0.1", "-p", e.pidPath,
		"--upgrade-socket", e.sock, "--shutdown-timeout", "5s", "-v", "6"}, extra...)
	p := &proc{cmd: exec.Command(e.bin, args...), log: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
			e.t.Errorf("kvproxy pid %d: data race", p.cmd.Process.Pid)
		}
		if e.t.Failed() || os.Getenv("KV_UPGRADE_LOGS") != "" {
			e.t.Logf("kvproxy pid %d log:\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// startServing starts the first kvproxy and waits for its pool and upgrade socket.
func (e *upgradeEnv) startServing() *proc {
	e.t.Helper()
	p := e.start()
	testenv.WaitTCP(e.t, e.listen, 20*time.Second)
	waitUntil(e.t, "the upgrade socket", 20*time.Second, func() bool { _, err := os.Stat(e.sock); return err == nil })
	return p
}

// wait waits for p to exit and returns its exit status.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("kvproxy pid %d did not exit within %v", p.cmd.Process.Pid, timeout)
		return nil
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// statsDoc reads the stats port once.
func statsDoc(t *testing.T, addr string) map[string]any {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("stats port: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stats port: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("stats %q: %v", b, err)
	}
	return doc
}

func pidFileHolds(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// rawClient speaks RESP on one TCP connection that it never reopens.
type rawClient struct {
	c *net.TCPConn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

// do sends one command and returns its reply line (and a bulk's payload).
func (rc *rawClient) do(args ...string) (string, error) { return rc.doOn(rc.c, args...) }

// doOn is do on a connection of any kind.
func (rc *rawClient) doOn(c net.Conn, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// loopResult is what a client loop saw.
type loopResult struct {
	name string
	errs []string
}

// runLoop runs SET then GET of a key of its own until stop is closed or max
// iterations, counting iterations in n; each failure or wrong reply is recorded.
func runLoop(name string, n *atomic.Int64, stop <-chan struct{}, max int, set func(k, v string) error, get func(k string) (string, error)) loopResult {
	res := loopResult{name: name}
	for i := 0; i < max; i++ {
		select {
		case <-stop:
			return res
		default:
		}
		k, v := fmt.Sprintf("%s:%d", name, i%100), fmt.Sprintf("v%d", i)
		if err := set(k, v); err != nil {
			res.errs = append(res.errs, fmt.Sprintf("SET #%d: %v", i, err))
		} else if got, err := get(k); err != nil || got != v {
			res.errs = append(res.errs, fmt.Sprintf("GET #%d: %q %v", i, got, err))
		}
		if len(res.errs) > 10 {
			return res
		}
		n.Add(1)
	}
	return res
}

// TestUpgradeHandsClientsOver upgrades a running kvproxy while a go-redis client
// (retries off, one connection) and a raw RESP client loop over SET/GET, both
// authenticated with redis_auth: no request fails, the raw client's TCP connection
// is the same throughout, go-redis dials once, the old process exits 0, and the new
// one serves the same connections (it counts them as its clients, AUTH kept) and the
// stats port.
func TestUpgradeHandsClientsOver(t *testing.T) {
	e := newUpgradeEnv(t)
	old := e.startServing()

	raw := dialRaw(t, e.listen)
	if got, err := raw.do("AUTH", "secret"); err != nil || got != "+OK" {
		t.Fatalf("AUTH: %q %v", got, err)
	}
	localAddr := raw.c.LocalAddr().String()
	var dials atomic.Int64
	rdb := goredis.NewClient(&goredis.Options{Addr: e.listen, Password: "secret", Protocol: 2, DisableIdentity: true,
		PoolSize: 1, MaxRetries: -1, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		OnConnect: func(context.Context, *goredis.Conn) error { dials.Add(1); return nil }})
	defer rdb.Close()

	const max = 200000
	stop := make(chan struct{})
	var nRaw, nGo atomic.Int64
	results := make(chan loopResult, 2)
	go func() {
		results <- runLoop("raw", &nRaw, stop, max,
			func(k, v string) error {
				got, err := raw.do("SET", k, v)
				if err == nil && got != "+OK" {
					err = errors.New(got)
				}
				return err
			},
			func(k string) (string, error) { return raw.do("GET", k) })
	}()
	go func() {
		ctx := context.Background()
		results <- runLoop("goredis", &nGo, stop, max,
			func(k, v string) error { return rdb.Set(ctx, k, v, 0).Err() },
			func(k string) (string, error) { return rdb.Get(ctx, k).Result() })
	}()
	stopped := false
	stopLoops := func() []loopResult {
		if !stopped {
			close(stop)
			stopped = true
		}
		return []loopResult{<-results, <-results}
	}
	defer func() {
		if !stopped {
			stopLoops()
		}
	}()
	waitUntil(t, "both clients running", 20*time.Second, func() bool { return nRaw.Load() > 50 && nGo.Load() > 50 })

	started := time.Now()
	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	atRaw, atGo := nRaw.Load(), nGo.Load()
	waitUntil(t, "both clients served by the new process", 20*time.Second, func() bool {
		return nRaw.Load() > atRaw+50 && nGo.Load() > atGo+50
	})
	for _, r := range stopLoops() {
		if len(r.errs) > 0 {
			t.Errorf("%s client: %d errors across the upgrade: %v", r.name, len(r.errs), r.errs)
		}
	}
	if got := raw.c.LocalAddr().String(); got != localAddr {
		t.Errorf("raw client's connection changed: %s, was %s", got, localAddr)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("go-redis dialed %d times; want 1 (its connection kept)", n)
	}
	select {
	case <-nw.exited:
		t.Fatalf("new kvproxy exited: %v", nw.err)
	default:
	}
	if pid := pidFileHolds(t, e.pidPath); pid != nw.pid() {
		t.Errorf("pid file holds %d, want the new process %d", pid, nw.pid())
	}
	if !strings.Contains(old.log.String(), "clients_passed=2") {
		t.Errorf("the old process did not report passing both clients:\n%s", old.log.String())
	}
	// The old process is gone: the stats port is the new one's, which serves both
	// handed-over connections.
	doc := statsDoc(t, e.stats)
	if up, _ := doc["uptime"].(float64); time.Duration(up)*time.Second > time.Since(started)+time.Second {
		t.Errorf("stats uptime %vs: not the new process (started %v ago)", up, time.Since(started))
	}
	alpha, _ := doc["alpha"].(map[string]any)
	if cc, _ := alpha["client_connections"].(float64); cc != 2 {
		t.Errorf("new process' client_connections = %v, want the 2 handed over", alpha["client_connections"])
	}
	// A new client is served too, and the raw client still speaks with its connection.
	fresh := dialRaw(t, e.listen)
	if got, err := fresh.do("PING"); err != nil || got != "-NOAUTH Authentication required" {
		t.Errorf("new client PING: %q %v", got, err)
	}
	if got, err := raw.do("PING"); err != nil || got != "+PONG" {
		t.Errorf("raw client after the upgrade: %q %v", got, err)
	}

	// The new process can itself be upgraded, once it has its own upgrade socket.
	waitUntil(t, "the new process' upgrade socket", 20*time.Second, func() bool {
		return strings.Contains(nw.log.String(), "takeover complete")
	})
	third := e.start("--takeover", e.sock)
	if err := nw.wait(t, 30*time.Second); err != nil {
		t.Fatalf("second kvproxy: %v (want exit 0)", err)
	}
	if got, err := raw.do("GET", "raw:1"); err != nil || !strings.HasPrefix(got, "v") {
		t.Errorf("raw client after the second upgrade: %q %v", got, err)
	}
	syscall.Kill(third.pid(), syscall.SIGTERM)
	if err := third.wait(t, 30*time.Second); err != nil {
		t.Errorf("third kvproxy on SIGTERM: %v", err)
	}
}

// TestUpgradeUnderRedisBenchmark takes over while redis-benchmark (20 keepalive
// clients, SET and GET) runs through kvproxy: the benchmark sees no error (it exits 1
// on an error reply, a NOAUTH of a session that lost its AUTH included, and on a
// closed connection), all 20 connections are passed and none closed, and the new
// process served part of it on the connections it was handed.
func TestUpgradeUnderRedisBenchmark(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark not installed")
	}
	e := newUpgradeEnv(t)
	old := e.startServing()
	host, port, _ := net.SplitHostPort(e.listen)
	n := testenv.EnvInt("KV_UPGRADE_BENCH_N", 200000)
	cmd := exec.Command(bench, "-h", host, "-p", port, "-a", "secret", "-c", "20", "-k", "1",
		"-n", strconv.Itoa(n), "-t", "set,get", "-q")
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	benchDone := make(chan error, 1)
	go func() { benchDone <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-benchDone })

	requests := func(doc map[string]any) float64 {
		alpha, _ := doc["alpha"].(map[string]any)
		one, _ := alpha["one"].(map[string]any)
		r, _ := one["requests"].(float64)
		return r
	}
	waitUntil(t, "the benchmark under way", 30*time.Second, func() bool {
		doc := statsDoc(t, e.stats)
		alpha, _ := doc["alpha"].(map[string]any)
		cc, _ := alpha["client_connections"].(float64)
		return cc >= 20 && requests(doc) > 1000
	})
	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	served := requests(statsDoc(t, e.stats))
	select {
	case err := <-benchDone:
		benchDone <- err
		if err != nil {
			t.Fatalf("redis-benchmark failed during the takeover (%v):\n%s", err, out.String())
		}
		t.Fatal("redis-benchmark ended before the takeover was complete: raise KV_UPGRADE_BENCH_N")
	default:
	}
	select {
	case err := <-benchDone:
		benchDone <- err
		if err != nil {
			t.Errorf("redis-benchmark: %v", err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("redis-benchmark did not finish")
	}
	if s := strings.ToLower(out.String()); strings.Contains(s, "error") || strings.Contains(s, "closed") || strings.Contains(s, "reset") {
		t.Errorf("redis-benchmark saw errors:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "GET:") || !strings.Contains(out.String(), "SET:") {
		t.Errorf("redis-benchmark did not report both tests:\n%s", out.String())
	}
	doc := statsDoc(t, e.stats)
	if r := requests(doc); r <= served {
		t.Errorf("the new process served %v requests, %v right after the takeover: the benchmark did not run on it", r, served)
	}
	if passed, closed := handoverCounts(t, old.log.String()); passed != 20 || closed != 0 {
		t.Errorf("the old process passed %d clients and closed %d; want the 20 benchmark clients passed, none closed", passed, closed)
	}
	t.Logf("redis-benchmark across the takeover:\n%s", out.String())
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	_ = nw.wait(t, 30*time.Second)
}

// TestUpgradeRefusedKeepsOldServing: a new kvproxy whose file is broken, or which
// cannot start on it (a listen address taken), takes nothing over: the old process
// keeps its clients, its listener and its pid file, and a later good upgrade works.
func TestUpgradeRefusedKeepsOldServing(t *testing.T) {
	e := newUpgradeEnv(t)
	old := e.startServing()
	raw := dialRaw(t, e.listen)
	if got, err := raw.do("AUTH", "secret"); err != nil || got != "+OK" {
		t.Fatalf("AUTH: %q %v", got, err)
	}
	good, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	checkOld := func(when string) {
		t.Helper()
		select {
		case <-old.exited:
			t.Fatalf("%s: the old kvproxy exited: %v", when, old.err)
		default:
		}
		if got, err := raw.do("SET", "k", when); err != nil || got != "+OK" {
			t.Errorf("%s: client of the old process: %q %v", when, got, err)
		}
		fresh := dialRaw(t, e.listen)
		if got, err := fresh.do("PING"); err != nil || got != "-NOAUTH Authentication required" {
			t.Errorf("%s: new client: %q %v", when, got, err)
		}
		if pid := pidFileHolds(t, e.pidPath); pid != old.pid() {
			t.Errorf("%s: pid file holds %d, want the old process %d", when, pid, old.pid())
		}
	}

	e.writeConf("alpha:\n  listen: [oops\n")
	bad := e.start("--takeover", e.sock)
	if err := bad.wait(t, 30*time.Second); err == nil {
		t.Fatal("kvproxy --takeover with a broken file exited 0")
	}
	checkOld("after a broken file")

	// A file that loads but cannot start: a second pool on a port in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e.writeConf(string(good) + "beta:\n  listen: " + busy.Addr().String() + "\n  redis: true\n  servers:\n    - 127.0.0.1:1:1 x\n")
	bad = e.start("--takeover", e.sock)
	if err := bad.wait(t, 30*time.Second); err == nil {
		t.Fatal("kvproxy --takeover that cannot listen exited 0")
	}
	waitUntil(t, "the old process to give the upgrade up", 10*time.Second, func() bool {
		return strings.Contains(old.log.String(), "upgrade abandoned; this process goes on serving")
	})
	checkOld("after a failed start")

	e.writeConf(string(good))
	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	if got, err := raw.do("GET", "k"); err != nil || got != "after a failed start" {
		t.Errorf("client after the good upgrade: %q %v", got, err)
	}
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	_ = nw.wait(t, 30*time.Second)
}

// TestUpgradeUnixPoolAndHalfSentRequest: a pool on a unix socket keeps its socket file
// across the takeover (the new process accepts on it and removes it at exit) and its
// client is handed over; a client that sent half a request is never handed over (the
// rest of its request would reach the wrong process): it is closed once the old
// process' shutdown-timeout has passed.
func TestUpgradeUnixPoolAndHalfSentRequest(t *testing.T) {
	e := newUpgradeEnv(t)
	good, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	unixPath := filepath.Join(e.dir, "beta.sock")
	server := strings.SplitN(string(good), "    - ", 2)[1] // the Redis, as newUpgradeEnv wrote it
	e.writeConf(string(good) + "beta:\n  listen: " + unixPath + "\n  redis: true\n  server_password: secret\n  servers:\n    - " + server)
	old := e.start("--shutdown-timeout", "1s")
	testenv.WaitTCP(t, e.listen, 20*time.Second)
	waitUntil(t, "the upgrade socket", 20*time.Second, func() bool { _, err := os.Stat(e.sock); return err == nil })

	uc, err := net.Dial("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	unixClient := &rawClient{r: bufio.NewReader(uc)}
	unixDo := func(args ...string) (string, error) { return unixClient.doOn(uc, args...) }
	if got, err := unixDo("SET", "u", "1"); err != nil || got != "+OK" {
		t.Fatalf("unix client SET: %q %v", got, err)
	}
	half := dialRaw(t, e.listen)
	if _, err := io.WriteString(half.c, "*2\r\n$3\r\nGET\r\n$1"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	nw := e.start("--takeover", e.sock)
	if err := old.wait(t, 30*time.Second); err != nil {
		t.Fatalf("old kvproxy: %v (want exit 0)", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("the old process exited after %v, before its 1s wait for the busy client", waited)
	}
	_ = half.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := half.c.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Errorf("half-sent client: read %d bytes, %v; want EOF (closed by the old process)", n, err)
	}
	if !strings.Contains(old.log.String(), "clients_passed=1 clients_closed=1") {
		t.Errorf("want one client passed and one closed:\n%s", old.log.String())
	}
	if got, err := unixDo("GET", "u"); err != nil || got != "1" {
		t.Errorf("unix client after the upgrade: %q %v", got, err)
	}
	if _, err := os.Stat(unixPath); err != nil {
		t.Fatalf("the unix socket file is gone after the takeover: %v", err)
	}
	uc2, err := net.Dial("unix", unixPath)
	if err != nil {
		t.Fatalf("new unix client: %v", err)
	}
	defer uc2.Close()
	c2 := &rawClient{r: bufio.NewReader(uc2)}
	if got, err := c2.doOn(uc2, "GET", "u"); err != nil || got != "1" {
		t.Errorf("new unix client: %q %v", got, err)
	}
	syscall.Kill(nw.pid(), syscall.SIGTERM)
	if err := nw.wait(t, 30*time.Second); err != nil {
		t.Errorf("new kvproxy on SIGTERM: %v", err)
	}
	if _, err := os.Stat(unixPath); !os.IsNotExist(err) {
		t.Errorf("the new process left the unix socket file at exit: %v", err)
	}
}
