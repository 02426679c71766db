package kv_test

import (
	"fmt"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// TestServerCountersOfPipelines: a server's counters, which its connection adds up
// per write and per read, are exact once the replies are in: every request and reply
// and their bytes counted, nothing left queued or in flight.
func TestServerCountersOfPipelines(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "cnt", rs, "")
	p := startProxy(t, parseConfig(t, yml), kv.Options{StatsAddr: "127.0.0.1:0"})
	c := dialRaw(t, addr)
	var reqBytes, repBytes int
	total := 0
	for round := 0; round < 3; round++ {
		var pipe []byte
		n := 50 + 100*round
		for i := 0; i < n; i++ {
			pipe = redis.AppendCommandStrings(pipe, "SET", fmt.Sprintf("k%d:%d", round, i), "v")
		}
		c.send(string(pipe))
		for i := 0; i < n; i++ {
			r := c.reply()
			if r != "+OK\r\n" {
				t.Fatalf("reply %q", r)
			}
			repBytes += len(r)
		}
		reqBytes += len(pipe)
		total += n
		for field, want := range map[string]int{"requests": total, "responses": total, "request_bytes": reqBytes, "response_bytes": repBytes,
			"in_queue": 0, "in_queue_bytes": 0, "out_queue": 0, "out_queue_bytes": 0} {
			if got := serverStat(t, p, "cnt", "s0", field); got != float64(want) {
				t.Errorf("round %d: %s = %v, want %d", round, field, got, want)
			}
		}
	}
}
