package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func reader(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 64) }

func TestReadRESP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
		rest string // what must be left unread
	}{
		{"+PONG\r\nX", nil, "X"},
		{":12\r\n", nil, ""},
		{"$3\r\nabc\r\nX", nil, "X"},
		{"$-1\r\nX", nil, "X"},
		{"*2\r\n$1\r\na\r\n$-1\r\nX", nil, "X"},
		{"*2\r\n-ERR one\r\n:1\r\nX", errReply, "X"}, // the whole array is read
		{"-ERR Connection timed out\r\nX", errReply, "X"},
		{"$3\r\nabcd\r\n", errProtocol, ""},
		{"?\r\n", errProtocol, ""},
		{"+no crlf\n", errProtocol, ""},
		{"$99999999999\r\n", errProtocol, ""},
		{"+" + strings.Repeat("x", 100) + "\r\n", errProtocol, ""}, // longer than the buffer
	} {
		r := reader(tc.in)
		err := readRESP(r)
		if !errors.Is(err, tc.want) {
			t.Errorf("readRESP(%q) = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if tc.rest != "" {
			rest, _ := r.ReadString(0)
			if rest != tc.rest {
				t.Errorf("readRESP(%q) left %q, want %q", tc.in, rest, tc.rest)
			}
		}
	}
	if err := readRESP(reader("$3\r\nab")); err == nil {
		t.Error("a truncated bulk string read without error")
	}
}

func TestReadMemcache(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"END\r\nX", nil},
		{"VALUE mc:1 0 3\r\nabc\r\nEND\r\nX", nil},
		{"VALUE mc:1 5 3 99\r\nabc\r\nVALUE mc:2 0 0\r\n\r\nEND\r\nX", nil},
		{"SERVER_ERROR out of memory\r\nX", errReply},
		{"ERROR\r\nX", errReply},
		{"VALUE mc:1 0 2\r\nabc\r\nEND\r\n", errProtocol},
		{"HELLO\r\n", errProtocol},
	} {
		r := reader(tc.in)
		err := readMemcacheGet(r)
		if !errors.Is(err, tc.want) {
			t.Errorf("readMemcacheGet(%q) = %v, want %v", tc.in, err, tc.want)
		}
		if err == nil || errors.Is(err, errReply) {
			if rest, _ := r.ReadString(0); rest != "X" {
				t.Errorf("readMemcacheGet(%q) left %q, want X", tc.in, rest)
			}
		}
	}
	if err := readMemcacheStored(reader("STORED\r\n")); err != nil {
		t.Errorf("STORED: %v", err)
	}
	if err := readMemcacheStored(reader("NOT_STORED\r\n")); !errors.Is(err, errReply) {
		t.Errorf("NOT_STORED: %v, want errReply", err)
	}
}

func TestRecorderBounded(t *testing.T) {
	rc := &recorder{}
	big := make([]float64, maxLatencySamples-10)
	rc.add([2][]float64{big, nil}, int64(len(big)), 0, nil)
	rc.add([2][]float64{make([]float64, 5), make([]float64, 100)}, 105, 3, errProtocol)
	if n := len(rc.res.lat[0]) + len(rc.res.lat[1]); n != maxLatencySamples {
		t.Errorf("%d latencies kept, want the bound %d", n, maxLatencySamples)
	}
	if rc.res.requests != int64(len(big))+105 || rc.res.errors != 3 || len(rc.failures) != 1 {
		t.Errorf("requests %d errors %d failures %v", rc.res.requests, rc.res.errors, rc.failures)
	}
}

func TestLoadSample(t *testing.T) {
	r := loadResult{requests: 1000, errors: 100, seconds: 2}
	for i := range 900 {
		r.lat[0] = append(r.lat[0], float64(i+1)/10) // 0.1 .. 90 ms, sorted
	}
	r.lat[1] = []float64{500, 500} // the frozen shard's keys: not in the percentiles
	s := loadSample(r)
	if s.Throughput != 450 || s.Errors != 100 || s.Requests != 1000 {
		t.Errorf("throughput %v errors %d requests %d, want 450 (successes per second), 100, 1000", s.Throughput, s.Errors, s.Requests)
	}
	if s.P50Ms == nil || *s.P50Ms != 45 || *s.P99Ms != 89.1 {
		t.Errorf("p50 %v p99 %v, want 45 and 89.1 from class 0 only", *s.P50Ms, *s.P99Ms)
	}
}

func TestPgAborted(t *testing.T) {
	out := `pgbench: error: client 7 aborted in command 0 (SQL) of script 0; perhaps the backend died while processing
pgbench: error: client 12 aborted in command 0 (SQL) of script 0; perhaps the backend died while processing
number of failed transactions: 0 (0.000%)
pgbench: error: Run was aborted; the above results are incomplete.
`
	if n := pgAborted([]byte(out)); n != 2 {
		t.Errorf("pgAborted = %d, want 2", n)
	}
}

func TestAggregateRSSPerClient(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	res := Result{Samples: []Sample{{Throughput: 1, RSSPerClientBytes: f(3000)}, {Throughput: 1, RSSPerClientBytes: f(5000)}, {Failure: "x", RSSPerClientBytes: f(1)}}}
	Aggregate(&res)
	if res.RSSPerClientBytes == nil || *res.RSSPerClientBytes != 4000 || res.Spread["rss_per_client_bytes"] != (Range{3000, 5000}) {
		t.Errorf("rss per client %v spread %v, want the median 4000 of the good rounds", res.RSSPerClientBytes, res.Spread)
	}
	md := Markdown(&Results{Results: []Result{{Scenario: "pg-idle-c10", Protocol: "pg", Target: "pgpool", Rounds: 2, RSSPerClientBytes: res.RSSPerClientBytes, Spread: res.Spread, Unit: "logins/s"}}}, nil)
	if !strings.Contains(md, "pgpool 4,000 bytes (3,000–5,000)") || !strings.Contains(md, "4,000 B RSS/client") {
		t.Errorf("report does not show the RSS per client:\n%s", md)
	}
}

// FuzzReadRESP checks the Redis reply reader never panics nor reads past a bounded
// amount for any input.
func FuzzReadRESP(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "$3\r\nabc\r\n", "*2\r\n$1\r\na\r\n-ERR x\r\n", "$-1\r\n", "*-1\r\n", ":1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readRESP(bufio.NewReaderSize(strings.NewReader(string(b)), 64))
	})
}

// FuzzReadMemcacheGet checks the memcached get reply reader never panics for any input.
func FuzzReadMemcacheGet(f *testing.F) {
	for _, s := range []string{"END\r\n", "VALUE k 0 1\r\na\r\nEND\r\n", "SERVER_ERROR x\r\n", "VALUE k 0 -1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readMemcacheGet(bufio.NewReaderSize(strings.NewReader(string(b)), 64))
	})
}

func TestRunnerOnceScenario(t *testing.T) {
	runs := map[string]int{}
	sc := func(name string, once bool) *scenario {
		return &scenario{tmpl: Result{Scenario: name}, key: name, once: once,
			run: func(_ context.Context, tg *target) (Sample, error) {
				runs[name+"/"+tg.name]++
				return Sample{Throughput: 1, Requests: 1}, nil
			}}
	}
	r := newRunner(3, io.Discard)
	targets := []*target{{name: "a"}, {name: "b"}}
	if err := r.runAll(t.Context(), []*scenario{sc("idle", true), sc("load", false)}, targets); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"idle/a": 1, "idle/b": 1, "load/a": 3, "load/b": 3}
	for k, v := range want {
		if runs[k] != v {
			t.Errorf("%s ran %d times, want %d (runs %v)", k, runs[k], v, runs)
		}
	}
	for _, x := range r.results {
		if x.Scenario == "idle" && x.Rounds != 1 {
			t.Errorf("idle/%s: %d rounds, want 1", x.Target, x.Rounds)
		}
	}
}
