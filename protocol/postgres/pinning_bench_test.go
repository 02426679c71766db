package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// BenchmarkStatementInspection: the per-statement cost of following SETs and session
// state for an ordinary query; it must not allocate.
func BenchmarkStatementInspection(b *testing.B) {
	msg, _ := (&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"}).Encode(nil)
	b.ReportAllocs()
	for b.Loop() {
		sessionStateChange(wire.Query, msg)
		var first [8]byte
		firstWordLower(statementText(wire.Query, msg), first[:])
	}
}

func TestStatementInspectionDoesNotAllocate(t *testing.T) {
	msg, _ := (&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"}).Encode(nil)
	if n := testing.AllocsPerRun(100, func() { sessionStateChange(wire.Query, msg) }); n != 0 {
		t.Fatalf("%v allocations per ordinary statement", n)
	}
}
