package pgpool

import (
	"testing"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// TestInflightQueue: the one queue counts the requests answered by ReadyForQuery
// among the groups it holds, in order, through pops, dropped Syncs (COPY) and resets;
// a pipeline that never drains keeps it bounded, and a request costs no allocation.
func TestInflightQueue(t *testing.T) {
	var q inflightQueue
	q.pushRequest(wire.Query)
	q.pushRequest(wire.Sync)
	q.pushRequest(wire.Sync)
	if q.requests() != 3 || q.len() != 3 || q.firstRequest().kind != groupQuery {
		t.Fatalf("requests %d len %d", q.requests(), q.len())
	}
	q.pop()
	if q.requests() != 2 || q.firstRequest().kind != groupSync {
		t.Fatalf("after pop: requests %d", q.requests())
	}
	// A tracked batch: its Parse, Bind and Execute are groups, not requests.
	q.push(respGroup{kind: groupParse})
	q.push(respGroup{kind: groupExecute})
	q.push(respGroup{kind: groupSynthParse})
	q.pushRequest(wire.Query)
	if q.requests() != 3 || q.len() != 6 {
		t.Fatalf("with a batch: requests %d len %d", q.requests(), q.len())
	}
	q.dropSyncs()
	if q.requests() != 1 || q.len() != 4 || q.peek().kind != groupParse || q.firstRequest().kind != groupQuery {
		t.Fatalf("after dropSyncs: requests %d len %d front %v", q.requests(), q.len(), q.peek().kind)
	}
	for q.len() > 0 {
		q.pop()
	}
	if q.requests() != 0 || q.peek() != nil || q.firstRequest() != nil {
		t.Fatalf("empty: requests %d", q.requests())
	}
	q.pop() // popping an empty queue is harmless
	if q.requests() != 0 || q.len() != 0 {
		t.Fatal("negative length")
	}
	q.pushRequest(wire.Sync)
	q.push(respGroup{kind: groupBind})
	q.reset()
	if q.requests() != 0 || q.len() != 0 {
		t.Fatalf("after reset: requests %d len %d", q.requests(), q.len())
	}
	// A pipeline that never drains keeps its memory bounded by what is in flight.
	q.pushRequest(wire.Sync) // always one in flight: the queue never empties
	for i := 0; i < 100000; i++ {
		q.pushRequest(wire.Sync)
		q.pop()
	}
	if q.requests() != 1 {
		t.Fatalf("requests %d, want 1", q.requests())
	}
	if cap(q.buf) > 256 {
		t.Fatalf("queue grew to %d", cap(q.buf))
	}
	if n := testing.AllocsPerRun(1000, func() { q.pushRequest(wire.Query); q.pop() }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// BenchmarkInflightRequest: the cost the queue adds to a simple-protocol request.
func BenchmarkInflightRequest(b *testing.B) {
	var q inflightQueue
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.pushRequest(wire.Query)
		q.drop()
	}
}
