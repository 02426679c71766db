package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// kvKeyspace is the number of distinct random keys redis-benchmark uses (-r).
const kvKeyspace = 100000

// kvRun is one redis-benchmark invocation.
type kvRun struct {
	test     string // "GET", "SET" or "MGET" (10 keys)
	clients  int
	pipeline int
	requests int
}

// redisBenchmarkArgs returns the arguments for r against addr port.
func redisBenchmarkArgs(port int, r kvRun) []string {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-c", strconv.Itoa(r.clients),
		"-n", strconv.Itoa(r.requests), "-P", strconv.Itoa(r.pipeline), "-r", strconv.Itoa(kvKeyspace), "-e"}
	if r.test == "MGET" {
		args = append(args, "MGET")
		for range 10 {
			args = append(args, "key:__rand_int__")
		}
		return args
	}
	return append(args, "-t", strings.ToLower(r.test))
}

// runRedisBenchmark runs r against t.
func runRedisBenchmark(ctx context.Context, b *bins, t *target, r kvRun) (Sample, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, b.path("redis-benchmark"), redisBenchmarkArgs(t.port, r)...)
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return Sample{}, ctx.Err()
	}
	s, err := parseRedisBenchmark(out)
	s.Seconds = time.Since(start).Seconds()
	if err != nil || runErr != nil {
		s.Failure = fmt.Sprintf("redis-benchmark: %v %v: %s", runErr, err, lastLines(out, 3))
	}
	s.Requests = int64(r.requests)
	return s, nil
}

var (
	rbPctRE   = regexp.MustCompile(`(?m)^\s*([0-9.]+)% <= ([0-9.]+) milliseconds`)
	rbTputRE  = regexp.MustCompile(`throughput summary: ([0-9.]+) requests per second`)
	rbErrorRE = regexp.MustCompile(`(?m)^Error from server: `)
)

// parseRedisBenchmark reads redis-benchmark's plain output (not --csv, which has no p90
// or p99.9): throughput from its summary and percentiles interpolated in its "Latency
// by percentile distribution" (points at 50%, 75%, 87.5%, ...).
func parseRedisBenchmark(out []byte) (Sample, error) {
	var s Sample
	out = bytes.ReplaceAll(out, []byte("\r"), []byte("\n"))
	m := rbTputRE.FindSubmatch(out)
	if m == nil {
		return s, errNoFigures
	}
	s.Throughput, _ = strconv.ParseFloat(string(m[1]), 64)
	s.Errors = int64(len(rbErrorRE.FindAll(out, -1)))
	// Only the percentile block: the cumulative block that follows has coarser points.
	block := out
	if i := bytes.Index(block, []byte("Latency by percentile distribution")); i >= 0 {
		block = block[i:]
		if j := bytes.Index(block, []byte("Cumulative distribution")); j >= 0 {
			block = block[:j]
		}
	}
	var pts []CDFPoint
	for _, m := range rbPctRE.FindAllSubmatch(block, -1) {
		pct, err1 := strconv.ParseFloat(string(m[1]), 64)
		v, err2 := strconv.ParseFloat(string(m[2]), 64)
		if err1 == nil && err2 == nil {
			pts = append(pts, CDFPoint{Pct: pct, Value: v})
		}
	}
	p := func(q float64) *float64 {
		v, ok := PercentileCDF(pts, q)
		if !ok {
			return nil
		}
		return &v
	}
	s.P50Ms, s.P90Ms, s.P99Ms, s.P999Ms = p(50), p(90), p(99), p(99.9)
	return s, nil
}
