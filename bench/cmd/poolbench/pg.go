package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pgRun is one pgbench invocation.
type pgRun struct {
	script   string // "select" (-S), "tpcb" (the default script), "select1" (SELECT 1)
	mode     string // -M: simple, extended, prepared
	clients  int
	seconds  int
	connect  bool // -C: a new connection per transaction
	poolSize int
	db       string // the database to connect to, if not the target's
}

var (
	tpsRE    = regexp.MustCompile(`tps = ([0-9.]+) \(`)
	connRE   = regexp.MustCompile(`initial connection time = ([0-9.]+) ms`)
	failedRE = regexp.MustCompile(`number of failed transactions: (\d+)`)
	txRE     = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
)

// Bounds of the time pgbench's -T gives its clients to log in before the run proper:
// pgbench counts their logins in -T (its tps leaves them out), and thousands of logins
// on a loaded machine can take longer than the run.
const (
	defaultLoginSeconds = 0.0002 // per client (trust), until a run of the target tells
	maxLoginAllowance   = 300    // seconds
	loginRetries        = 4      // runs again when every client was still logging in (-T 1, 3, 7, 15, 31 for a one-second run)
	loginSlackSeconds   = 0.25   // logins this short shorten the run instead
)

// loginAllowance returns the whole seconds to add to -T for clients to log in, from
// perClient (seconds per client last seen for the target, 0 if none): half as much
// again as they are expected to take, less loginSlackSeconds, so that clients that log
// in at once cost the run no second more.
func loginAllowance(perClient float64, clients int) int {
	if perClient <= 0 {
		perClient = defaultLoginSeconds
	}
	return min(max(int(math.Ceil(perClient*float64(clients)*1.5-loginSlackSeconds)), 0), maxLoginAllowance)
}

// runPgbench runs r against t and returns the round's figures; latencies come from
// pgbench's per-transaction logs (-l), in microseconds. Unless every transaction logs
// in (-C), -T is r.seconds plus the time the clients are expected to take to log in
// (learnt from the target's previous runs); a run in which no transaction was
// processed because they were all still logging in is run again with more.
func runPgbench(ctx context.Context, e *pgEnv, b *bins, t *target, r pgRun, work string) (Sample, error) {
	allowance := 0
	if !r.connect {
		allowance = loginAllowance(e.loginPerClient[t.name], r.clients)
	}
	for try := 0; ; try++ {
		s, login, err := runPgbenchOnce(ctx, e, b, t, r, work, r.seconds+allowance)
		if err != nil || r.connect {
			return s, err
		}
		if login.connSec > 0 {
			if e.loginPerClient == nil {
				e.loginPerClient = map[string]float64{}
			}
			e.loginPerClient[t.name] = login.connSec / float64(r.clients)
		}
		// pgbench reports no connection time when its clients were still logging in
		// as -T ran out: no transaction was processed.
		if !login.noneProcessed || try == loginRetries || allowance == maxLoginAllowance {
			return s, nil
		}
		allowance = min(2*allowance+r.seconds+1, maxLoginAllowance)
	}
}

// pgbenchLogins is what a pgbench run tells of its clients' logins.
type pgbenchLogins struct {
	connSec       float64 // initial connection time, seconds (0: not reported)
	noneProcessed bool    // no transaction processed, none failed
}

// pgbenchLoginsOf reads pgbenchLogins from pgbench's output.
func pgbenchLoginsOf(out []byte) pgbenchLogins {
	var l pgbenchLogins
	if m := connRE.FindSubmatch(out); m != nil {
		ms, _ := strconv.ParseFloat(string(m[1]), 64)
		l.connSec = ms / 1000
	}
	tx, failed := txRE.FindSubmatch(out), failedRE.FindSubmatch(out)
	l.noneProcessed = tx != nil && string(tx[1]) == "0" && (failed == nil || string(failed[1]) == "0")
	return l
}

// runPgbenchOnce runs pgbench -T seconds and returns the round's figures and what it
// tells of the clients' logins.
func runPgbenchOnce(ctx context.Context, e *pgEnv, b *bins, t *target, r pgRun, work string, seconds int) (Sample, pgbenchLogins, error) {
	logDir, err := os.MkdirTemp(work, "pgbench-")
	if err != nil {
		return Sample{}, pgbenchLogins{}, err
	}
	defer os.RemoveAll(logDir)
	args := []string{"-n", "-M", r.mode, "-c", strconv.Itoa(r.clients), "-j", strconv.Itoa(min(r.clients, 2)),
		"-T", strconv.Itoa(seconds), "-l", "--log-prefix", filepath.Join(logDir, "tx"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(t.port), "-U", e.user}
	switch r.script {
	case "select":
		args = append(args, "-S")
	case "select1", "sleep":
		sql := "SELECT 1;\n"
		if r.script == "sleep" {
			sql = "SELECT pg_sleep(0.05);\n"
		}
		f := filepath.Join(logDir, r.script+".sql")
		if err := os.WriteFile(f, []byte(sql), 0o644); err != nil {
			return Sample{}, pgbenchLogins{}, err
		}
		args = append(args, "-f", f)
	}
	if r.connect {
		args = append(args, "-C")
	}
	db := t.db
	if r.db != "" {
		db = r.db
	}
	args = append(args, db)
	cctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+120)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, b.path("pgbench"), args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+e.password, "PGSSLMODE=disable")
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return Sample{}, pgbenchLogins{}, ctx.Err()
	}
	login := pgbenchLoginsOf(out)
	s, err := parsePgbench(out)
	s.Seconds = time.Since(start).Seconds()
	if err != nil {
		s.Failure = fmt.Sprintf("pgbench: %v: %v: %s", runErr, err, lastLines(out, 3))
		return s, login, nil
	}
	s.Errors += pgAborted(out)
	if runErr != nil && s.Errors == 0 {
		s.Errors = 1 // aborted clients: pgbench exits 2
		s.Failure = ""
	}
	lat, err := readPgbenchLogs(logDir)
	if err != nil {
		return Sample{}, pgbenchLogins{}, err
	}
	fillLatencies(&s, lat)
	if s.Requests == 0 {
		s.Requests = int64(len(lat))
	}
	return s, login, nil
}

// parsePgbench reads throughput, processed and failed transactions from pgbench's
// summary.
func parsePgbench(out []byte) (Sample, error) {
	var s Sample
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return s, errNoFigures
	}
	s.Throughput, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := failedRE.FindSubmatch(out); m != nil {
		s.Errors, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := txRE.FindSubmatch(out); m != nil {
		s.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return s, nil
}

// errNoFigures is returned when a load generator's output has no result.
var errNoFigures = fmt.Errorf("poolbench: no figures in the output")

// readPgbenchLogs returns the latencies in milliseconds of every transaction in the
// pgbench -l logs of dir (third field, microseconds), sorted.
func readPgbenchLogs(dir string) ([]float64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil {
		return nil, err
	}
	var lat []float64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		lat, err = appendPgbenchLog(lat, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(lat)
	return lat, nil
}

// appendPgbenchLog appends the latencies of one pgbench -l log (lines "client_id
// transaction_no time script_no time_epoch time_us [schedule_lag]"; time in
// microseconds) to lat, in milliseconds. Failed transactions (time "failed") are left out.
func appendPgbenchLog(lat []float64, r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		if us, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			lat = append(lat, float64(us)/1000)
		}
	}
	return lat, sc.Err()
}

// fillLatencies sets s's percentiles from sorted latencies in milliseconds.
func fillLatencies(s *Sample, sorted []float64) {
	if len(sorted) == 0 {
		return
	}
	p := func(q float64) *float64 { v := Percentile(sorted, q); return &v }
	s.P50Ms, s.P90Ms, s.P99Ms, s.P999Ms = p(50), p(90), p(99), p(99.9)
}

// lastLines returns the last n lines of out, joined by " | ".
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.ReplaceAll(out, []byte("\r"), []byte("\n")))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
