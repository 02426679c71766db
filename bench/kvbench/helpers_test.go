package kvbench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// poolYAML returns nutcracker.yml with one Redis pool named bench listening on
// 127.0.0.1:port over the given servers ("host:port").
func poolYAML(port int, servers []string) string {
	var y strings.Builder
	fmt.Fprintf(&y, "bench:\n  listen: 127.0.0.1:%d\n", port)
	y.WriteString("  hash: fnv1a_64\n  hash_tag: \"{}\"\n  distribution: ketama\n")
	y.WriteString("  timeout: 1000\n  redis: true\n  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&y, "   - %s:1\n", s)
	}
	return y.String()
}

// proxy is a proxy under test and the results of its runs.
type proxy struct {
	name      string
	port      int    // the pool's listen port on 127.0.0.1
	statsAddr string // twemproxy stats JSON
	pid       int    // for CPU time
	results   map[benchCase][]runResult
}

// startKvproxy writes a nutcracker.yml for listen port into dir/name and runs bin on it
// with its stats on a free port of 127.0.0.1. gomaxprocs is the GOMAXPROCS given to the
// process; "" leaves Go's default (every core). The process is stopped in b.Cleanup.
func startKvproxy(b *testing.B, bin, dir, name string, servers []string, gomaxprocs string) *proxy {
	b.Helper()
	pdir := filepath.Join(dir, name)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		b.Fatal(err)
	}
	p := &proxy{name: name, port: testenv.FreePort(b)}
	p.statsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(b)))
	yml := filepath.Join(pdir, "nutcracker.yml")
	if err := os.WriteFile(yml, []byte(poolYAML(p.port, servers)), 0o644); err != nil {
		b.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(pdir, "kvproxy.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	_, statsPort, _ := net.SplitHostPort(p.statsAddr)
	cmd := exec.Command(bin, "-c", yml, "-s", statsPort, "-a", "127.0.0.1", "--log-level", "warn")
	cmd.Env = processEnv(gomaxprocs)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	testenv.WaitTCP(b, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), 30*time.Second)
	testenv.WaitTCP(b, p.statsAddr, 30*time.Second)
	select {
	case <-exited:
		b.Fatalf("%s exited at start:\n%s", name, readTail(logFile.Name()))
	default:
	}
	return p
}

// processEnv returns this process's environment with GOMAXPROCS set to gomaxprocs, or
// removed when gomaxprocs is "".
func processEnv(gomaxprocs string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	if gomaxprocs != "" {
		env = append(env, "GOMAXPROCS="+gomaxprocs)
	}
	return env
}

// readTail returns the last 4 KiB of a log file.
func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// benchCase is one redis-benchmark test at one pipeline depth.
type benchCase struct {
	test     string // "SET" or "GET"
	pipeline int
}

func (c benchCase) String() string { return fmt.Sprintf("%s -P %d", c.test, c.pipeline) }

// runResult is one redis-benchmark run through a proxy.
type runResult struct {
	rps      float64 // requests per second
	avg, p99 float64 // milliseconds
	cores    float64 // proxy CPU time over wall time
}

// runRedisBenchmark runs redis-benchmark's test c with clients, n requests and a keyspace
// of keyspace random keys against 127.0.0.1:p.port, and measures p's CPU time meanwhile.
func runRedisBenchmark(b *testing.B, p *proxy, c benchCase, clients, n, keyspace int) runResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.LookPath(b, "redis-benchmark"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-P", strconv.Itoa(c.pipeline),
		"-r", strconv.Itoa(keyspace), "-t", strings.ToLower(c.test), "--csv")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0 := cpuTime(b, p.pid)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	cpu1 := cpuTime(b, p.pid)
	if err != nil {
		b.Fatalf("redis-benchmark through %s: %v\n%s%s", p.name, err, stdout.Bytes(), stderr.Bytes())
	}
	r, err := parseCSV(stdout.Bytes(), c.test)
	if err != nil {
		b.Fatalf("redis-benchmark through %s: %v\n%s%s", p.name, err, stdout.Bytes(), stderr.Bytes())
	}
	r.cores = float64(cpu1-cpu0) / float64(wall)
	return r
}

// parseCSV reads the row of test from redis-benchmark --csv output, whose header is
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
// "p99_latency_ms","max_latency_ms" (redis-benchmark 7).
func parseCSV(out []byte, test string) (runResult, error) {
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return runResult{}, fmt.Errorf("kvbench: csv: %w", err)
	}
	if len(rows) < 2 {
		return runResult{}, fmt.Errorf("kvbench: csv: no rows")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, want := range []string{"test", "rps", "avg_latency_ms", "p99_latency_ms"} {
		if _, ok := col[want]; !ok {
			return runResult{}, fmt.Errorf("kvbench: csv: no column %q in %q", want, rows[0])
		}
	}
	for _, row := range rows[1:] {
		if len(row) != len(rows[0]) || row[col["test"]] != test {
			continue
		}
		var r runResult
		var errs [3]error
		r.rps, errs[0] = strconv.ParseFloat(row[col["rps"]], 64)
		r.avg, errs[1] = strconv.ParseFloat(row[col["avg_latency_ms"]], 64)
		r.p99, errs[2] = strconv.ParseFloat(row[col["p99_latency_ms"]], 64)
		for _, err := range errs {
			if err != nil {
				return runResult{}, fmt.Errorf("kvbench: csv: %w", err)
			}
		}
		if r.rps <= 0 {
			return runResult{}, fmt.Errorf("kvbench: csv: %s: rps %v", test, r.rps)
		}
		return r, nil
	}
	return runResult{}, fmt.Errorf("kvbench: csv: no row for %s", test)
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime returns the user plus system CPU time pid has used, all threads together.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// pid (comm) state ppid ... utime stime: fields 14 and 15; comm may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		b.Fatalf("kvbench: /proc/%d/stat: unexpected %q", pid, stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		b.Fatalf("kvbench: /proc/%d/stat: unexpected %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("kvbench: /proc/%d/stat: unexpected %q", pid, stat)
	}
	return time.Duration(utime+stime) * clockTick
}

// poolStats is what twemproxy's stats JSON says about the pool bench.
type poolStats struct {
	requests     map[string]int64 // per server "host:port"
	total        int64            // requests over all servers
	serverErrors int64            // server_err + server_eof + server_timedout + forward_error
}

// readStats reads the stats JSON at addr (nutcracker's or kvproxy's) and sums the
// pool bench's server counters.
func readStats(addr string) (poolStats, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return poolStats{}, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return poolStats{}, err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return poolStats{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return poolStats{}, fmt.Errorf("kvbench: stats %s: %w", addr, err)
	}
	pool, ok := doc["bench"].(map[string]any)
	if !ok {
		return poolStats{}, fmt.Errorf("kvbench: stats %s: no pool bench in %s", addr, body)
	}
	s := poolStats{requests: map[string]int64{}}
	s.serverErrors = num(pool["forward_error"])
	for name, v := range pool {
		srv, ok := v.(map[string]any)
		if !ok {
			continue
		}
		s.requests[name] = num(srv["requests"])
		s.total += num(srv["requests"])
		s.serverErrors += num(srv["server_err"]) + num(srv["server_eof"]) + num(srv["server_timedout"])
	}
	return s, nil
}

// num returns a JSON number as an int64 (0 if v is not a number).
func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// waitStats polls addr's stats until at least want requests are counted (nutcracker
// aggregates its counters once a second) or 10 s have passed, and returns the last read.
func waitStats(addr string, want int64) (poolStats, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := readStats(addr)
		if err == nil && s.total >= want || time.Now().After(deadline) {
			return s, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// perServer formats requests per server, in server order.
func (s poolStats) perServer() string {
	names := make([]string, 0, len(s.requests))
	for n := range s.requests {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, s.requests[n])
	}
	return strings.Join(parts, ", ")
}
