package pgpool

import (
	"testing"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

func TestSyncQueue(t *testing.T) {
	var q syncQueue
	q.push(wire.Query)
	q.push(wire.Sync)
	q.push(wire.Sync)
	if q.len() != 3 || q.front() != wire.Query {
		t.Fatalf("len %d front %q", q.len(), q.front())
	}
	q.pop()
	if q.len() != 2 || q.front() != wire.Sync {
		t.Fatalf("after pop: len %d front %q", q.len(), q.front())
	}
	q.push(wire.Query)
	q.dropSyncs()
	if q.len() != 1 || q.front() != wire.Query {
		t.Fatalf("after dropSyncs: len %d front %q", q.len(), q.front())
	}
	q.pop()
	if q.len() != 0 || q.front() != 0 {
		t.Fatalf("empty: len %d front %q", q.len(), q.front())
	}
	q.pop() // popping an empty queue is harmless
	if q.len() != 0 {
		t.Fatal("negative length")
	}
	// A pipeline that never drains keeps its memory bounded by what is in flight.
	q.push(wire.Sync) // always one in flight: the queue never empties
	for i := 0; i < 100000; i++ {
		q.push(wire.Sync)
		q.pop()
	}
	if q.len() != 1 {
		t.Fatalf("len %d, want 1", q.len())
	}
	if cap(q.kinds) > 256 {
		t.Fatalf("queue grew to %d", cap(q.kinds))
	}
	if n := testing.AllocsPerRun(1000, func() { q.push(wire.Sync); q.pop() }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}
