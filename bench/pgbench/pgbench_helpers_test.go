package pgbench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// pgpoolProc is a running pgpool.
type pgpoolProc struct {
	cmd       *exec.Cmd
	port      int
	debugAddr string
	log       string
}

// startPgpool writes a pgbouncer.ini with settings into dir and runs pgpool on
// a free port, with its debug server on another.
func startPgpool(b *testing.B, bin, dir, databases, userlist string, settings map[string]string) *pgpoolProc {
	b.Helper()
	p := &pgpoolProc{port: testenv.FreePort(b), log: filepath.Join(dir, "pgpool.log")}
	p.debugAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist), 0o600); err != nil {
		b.Fatal(err)
	}
	var ini strings.Builder
	fmt.Fprintf(&ini, "[databases]\n%s\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n", databases, p.port)
	fmt.Fprintf(&ini, "auth_file = %s\nlogfile = %s\n", filepath.Join(dir, "userlist.txt"), p.log)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&ini, "%s = %s\n", k, settings[k])
	}
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-q", "--debug-addr", p.debugAddr, path)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// pgpool refuses root, as PgBouncer does; the benchmark's files are root's.
	p.cmd.Env = append(os.Environ(), "PGPOOL_ALLOW_ROOT=1")
	var out bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &out, &out
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGINT)
		p.cmd.Process.Signal(syscall.SIGINT)
		p.cmd.Wait()
	})
	testenv.WaitTCP(b, fmt.Sprintf("127.0.0.1:%d", p.port), 30*time.Second)
	testenv.WaitTCP(b, p.debugAddr, 30*time.Second)
	return p
}

// roundResult is one pgbench run.
type roundResult struct {
	tps      float64
	avg, p99 time.Duration
	failed   int
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench runs pgbench -S with protocol mode (simple, extended, prepared) against
// 127.0.0.1:port, xacts transactions per client, and reads its per-transaction logs.
// Its tps leaves out the clients' logins.
func runPgbench(b *testing.B, dir, label, mode string, port, clients, xacts int, user, password, db string) roundResult {
	b.Helper()
	logDir, err := os.MkdirTemp(dir, label+"-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.LookPath(b, "pgbench"), "-n", "-S", "-M", mode,
		"-c", strconv.Itoa(clients), "-j", "2", "-t", strconv.Itoa(xacts),
		"-l", "--log-prefix", filepath.Join(logDir, "tx"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", user, db)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench through %s: %v\n%s", label, err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench output without tps:\n%s", out)
	}
	var r roundResult
	r.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	if fm := regexp.MustCompile(`number of failed transactions: (\d+)`).FindSubmatch(out); fm != nil {
		r.failed, _ = strconv.Atoi(string(fm[1]))
	}
	lat := readLatencies(b, logDir)
	if len(lat) == 0 {
		b.Fatalf("no pgbench transaction logs in %s", logDir)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum int64
	for _, l := range lat {
		sum += l
	}
	r.avg = time.Duration(sum/int64(len(lat))) * time.Microsecond
	r.p99 = time.Duration(lat[(len(lat)*99)/100]) * time.Microsecond
	return r
}

// readLatencies reads the latency column (microseconds, third field) of every
// pgbench -l log in dir.
func readLatencies(b *testing.B, dir string) []int64 {
	files, _ := filepath.Glob(filepath.Join(dir, "tx.*"))
	var lat []int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			if v, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
				lat = append(lat, v)
			}
		}
		f.Close()
	}
	return lat
}

// memStats is what the process reports about its memory.
type memStats struct {
	rssKiB    int64 // VmRSS
	heapAlloc int64 // bytes of live heap objects after a GC
	stackUse  int64 // bytes of goroutine stacks in use
}

// readMem reads VmRSS of pid and, through the debug server, the Go heap after
// a forced GC.
func readMem(b *testing.B, pid int, debugAddr string) memStats {
	b.Helper()
	var m memStats
	resp, err := http.Get("http://" + debugAddr + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			m.heapAlloc, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			m.stackUse, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	resp.Body.Close()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			m.rssKiB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return m
}

// dialRetry dials addr, retrying briefly when the accept queue is full.
func dialRetry(addr string) (net.Conn, error) {
	var err error
	for range 50 {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}
