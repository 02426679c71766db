package pgbench

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// BenchmarkPgBouncerCompare: pgbench -S, 100 clients, pool of 20, transaction
// mode, through pgpool and PgBouncer in alternating rounds, both with the simple
// protocol. b.N is ignored: run with -benchtime 1x.
func BenchmarkPgBouncerCompare(b *testing.B) {
	compareProxies(b, []benchTarget{
		{name: "pgpool", proxy: "pgpool", mode: "simple"},
		{name: "pgbouncer", proxy: "pgbouncer", mode: "simple"},
	})
}

// BenchmarkPreparedCompare: pgbench -S -M prepared through pgpool (protocol-level
// prepared statements in transaction mode) against -M simple and -M extended
// through PgBouncer, the best PgBouncer 1.18 can do in transaction mode.
func BenchmarkPreparedCompare(b *testing.B) {
	compareProxies(b, []benchTarget{
		{name: "pgpool-prepared", proxy: "pgpool", mode: "prepared"},
		{name: "pgbouncer-simple", proxy: "pgbouncer", mode: "simple"},
		{name: "pgbouncer-extended", proxy: "pgbouncer", mode: "extended"},
	})
}

// benchTarget is one pgbench configuration in a comparison.
type benchTarget struct {
	name, proxy, mode string
	results           []roundResult
}

// compareProxies runs pgbench -S, 100 clients, against a pool of 20 in transaction
// mode through each target in rotating rounds of the same number of transactions, and prints the mean of rounds with
// every target's ratio to the first.
func compareProxies(b *testing.B, targets []benchTarget) {
	const clients, poolSize = 100, 20
	rounds := testenv.EnvInt("PGBENCH_ROUNDS", 3)
	// Every run is bounded by transactions per client, not by time: pgbench counts
	// its clients' logins (100 SCRAM exchanges) in -T, which on a loaded machine can
	// take the whole of a short run, and tps excludes them with -t.
	xacts := testenv.EnvInt("PGBENCH_TRANSACTIONS", 500)
	const warmXacts = 20
	dir := b.TempDir()
	pg := testenv.StartPostgres(b, testenv.PostgresOptions{MaxConnections: 200})
	init := osexec.Command(testenv.LookPath(b, "pgbench"), "-i", "-q", "-s", "10",
		"-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.SuperUser, "postgres")
	init.Env = append(os.Environ(), "PGPASSWORD="+pg.SuperPassword)
	if out, err := init.CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	userlist := fmt.Sprintf("%q %q\n", pg.SuperUser, pg.SuperPassword)
	settings := map[string]string{
		"pool_mode":         "transaction",
		"default_pool_size": strconv.Itoa(poolSize),
		"max_client_conn":   "500",
		"auth_type":         "scram-sha-256",
	}
	bouncer := testenv.StartPgBouncer(b, testenv.PgBouncerOptions{
		Databases: map[string]string{"bench": pg.PgBouncerDB("postgres")},
		Settings:  settings,
		Userlist:  userlist,
	})
	pool := startPgpool(b, testenv.GoBuild(b, "github.com/poolsuite/poolsuite/cmd/pgpool", dir), dir, "bench = "+pg.PgBouncerDB("postgres"), userlist, settings)
	port := func(t *benchTarget) int {
		if t.proxy == "pgpool" {
			return pool.port
		}
		return bouncer.Port
	}
	// A short warm-up of each, not counted: pools filled, caches hot.
	for i := range targets {
		t := &targets[i]
		runPgbench(b, dir, t.name, t.mode, port(t), clients, warmXacts, pg.SuperUser, pg.SuperPassword, "bench")
	}
	for r := range rounds {
		for i := range targets {
			t := &targets[(i+r)%len(targets)] // rotate which goes first
			res := runPgbench(b, dir, t.name, t.mode, port(t), clients, xacts, pg.SuperUser, pg.SuperPassword, "bench")
			t.results = append(t.results, res)
			b.Logf("round %d %-18s tps %8.0f  avg %7.3f ms  p99 %7.3f ms  failed %d",
				r+1, t.name, res.tps, ms(res.avg), ms(res.p99), res.failed)
		}
	}
	mean := func(rs []roundResult) (tps float64, avg, p99 time.Duration) {
		for _, r := range rs {
			tps += r.tps
			avg += r.avg
			p99 += r.p99
		}
		n := len(rs)
		return tps / float64(n), avg / time.Duration(n), p99 / time.Duration(n)
	}
	fmt.Printf("\npgbench -S, %d clients, pool_size %d, transaction mode, %d rounds x %d transactions per client (mean of rounds)\n",
		clients, poolSize, rounds, xacts)
	ftps, favg, fp99 := mean(targets[0].results)
	for i := range targets {
		t := &targets[i]
		tps, avg, p99 := mean(t.results)
		fmt.Printf("  %-18s (-M %-8s) tps %8.0f  avg %7.3f ms  p99 %7.3f ms\n", t.name, t.mode, tps, ms(avg), ms(p99))
		b.ReportMetric(tps, t.name+"-tps")
		if i > 0 {
			fmt.Printf("    %s/%s: tps x%.2f, avg latency x%.2f, p99 latency x%.2f\n", targets[0].name, t.name,
				ftps/tps, float64(favg)/float64(avg), float64(fp99)/float64(p99))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkIdleClientMemory: pgpool's memory per idle, logged-in client
// connection. b.N is ignored: run with -benchtime 1x.
func BenchmarkIdleClientMemory(b *testing.B) {
	n := testenv.EnvInt("IDLE_CLIENTS", 10000)
	raiseNoFile(b, uint64(n)+1000)
	dir := b.TempDir()
	pg := testenv.StartPostgres(b, testenv.PostgresOptions{})
	const user, password = "idle", "idle-pw"
	pg.CreateRole(b, user, password)
	pool := startPgpool(b, testenv.GoBuild(b, "github.com/poolsuite/poolsuite/cmd/pgpool", dir), dir, "idle = "+pg.PgBouncerDB("postgres"),
		fmt.Sprintf("%q %q\n", user, password), map[string]string{
			"pool_mode":         "transaction",
			"default_pool_size": "5",
			"max_client_conn":   strconv.Itoa(n + 100),
			"auth_type":         "md5",
		})
	addr := fmt.Sprintf("127.0.0.1:%d", pool.port)
	pid := pool.cmd.Process.Pid

	// One login first, so the pool and its first server connection exist in the baseline.
	first, err := login(addr, user, password, "idle")
	if err != nil {
		b.Fatal(err)
	}
	defer first.Close()
	before := readMem(b, pid, pool.debugAddr)

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := login(addr, user, password, "idle")
				if err != nil {
					select {
					case errs <- fmt.Errorf("client %d: %w", i, err):
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	loginTime := time.Since(start)
	after := readMem(b, pid, pool.debugAddr)
	per := func(delta int64) float64 { return float64(delta) / float64(n) / 1024 }
	fmt.Printf("\npgpool memory with %d idle logged-in clients (logins took %v)\n", n, loginTime.Round(time.Millisecond))
	fmt.Printf("  RSS:    %7d KiB before, %7d KiB after: %.2f KiB per idle client\n",
		before.rssKiB, after.rssKiB, float64(after.rssKiB-before.rssKiB)/float64(n))
	fmt.Printf("  heap:   %7d KiB before, %7d KiB after: %.2f KiB per idle client (live Go heap after GC)\n",
		before.heapAlloc/1024, after.heapAlloc/1024, per(after.heapAlloc-before.heapAlloc))
	fmt.Printf("  stacks: %7d KiB before, %7d KiB after: %.2f KiB per idle client (goroutine stacks)\n",
		before.stackUse/1024, after.stackUse/1024, per(after.stackUse-before.stackUse))
	b.ReportMetric(float64(after.rssKiB-before.rssKiB)/float64(n), "RSS-KiB/client")
	b.ReportMetric(per(after.heapAlloc-before.heapAlloc), "heap-KiB/client")
}

// raiseNoFile raises this process's open-file limit to at least n (pgpool,
// started afterwards, inherits it; Go raises the soft limit to the hard one
// anyway).
func raiseNoFile(b *testing.B, n uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	if rl.Max < n {
		rl.Max = n
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatalf("RLIMIT_NOFILE %d: %v (raise the hard limit: ulimit -Hn)", n, err)
	}
}

var errLogin = errors.New("pgbench: login failed")

// login opens a connection to addr and logs in with md5, returning the
// connection idle after ReadyForQuery.
func login(addr, user, password, db string) (net.Conn, error) {
	c, err := dialRetry(addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": db}})
	if err := fe.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			c.Close()
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationMD5Password:
			inner := md5hex(password + user)
			fe.Send(&pgproto3.PasswordMessage{Password: "md5" + md5hex(inner+string(m.Salt[:]))})
			if err := fe.Flush(); err != nil {
				c.Close()
				return nil, err
			}
		case *pgproto3.ErrorResponse:
			c.Close()
			return nil, fmt.Errorf("%w: %s %s", errLogin, m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			c.SetDeadline(time.Time{})
			return c, nil
		}
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
