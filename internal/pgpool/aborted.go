package pgpool

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// abortState tracks an extended-protocol batch sent inside a transaction whose server
// connection died. Only the client's goroutine touches it.
type abortState struct {
	skip     bool // an error was sent: ignore messages until Sync, as PostgreSQL does
	ending   bool // the batch parsed ROLLBACK, COMMIT, END or ABORT
	reported bool // the client has been told its transaction was lost
}

// errAborted is what every statement of a transaction whose server connection died gets
// until the client ends the transaction.
func errAborted() *Error {
	return &Error{Severity: "ERROR", Code: "25P02",
		Message: "current transaction is aborted, commands ignored until end of transaction block",
		Detail:  "The server connection running this transaction was lost; its work was rolled back."}
}

// abortError returns the error for a statement of a lost transaction: the first one
// says what happened (08006), later ones are PostgreSQL's 25P02.
func (c *client) abortError() *pgproto3.ErrorResponse {
	if !c.abort.reported {
		c.abort.reported = true
		return (&Error{Severity: "ERROR", Code: CodeConnectionFailure,
			Message: "server connection lost inside a transaction; the transaction was rolled back",
			Detail:  "End the transaction with ROLLBACK; until then its statements are refused."}).response()
	}
	return errAborted().response()
}

// abortedTx answers a client whose transaction died with its server connection, the way
// PostgreSQL answers inside a failed transaction: statements fail with 25P02, and
// ROLLBACK (or COMMIT, END, ABORT, which PostgreSQL turns into ROLLBACK there) ends the
// transaction. Nothing reaches a server until then, so no part of the transaction runs
// elsewhere.
func (c *client) abortedTx(typ byte, msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := &c.abort
	switch typ {
	case wire.Query:
		var q pgproto3.Query
		if q.Decode(wire.Body(msg)) == nil && postgres.EndsTransaction(q.String) {
			c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte("ROLLBACK")})
			c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			c.endAborted()
		} else {
			c.w.Send(c.abortError())
			c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'E'})
		}
		return c.w.Flush()
	case wire.FunctionCall:
		c.w.Send(c.abortError())
		c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'E'})
		return c.w.Flush()
	case wire.Sync:
		status := byte('E')
		if st.ending && !st.skip {
			status = 'I'
			c.endAborted()
		}
		st.skip, st.ending = false, false
		c.w.Send(&pgproto3.ReadyForQuery{TxStatus: status})
		return c.w.Flush()
	case wire.Flush:
		return c.w.Flush()
	}
	if st.skip {
		return nil
	}
	switch typ {
	case wire.Parse:
		var p pgproto3.Parse
		if p.Decode(wire.Body(msg)) == nil && postgres.EndsTransaction(p.Query) {
			st.ending = true
			c.w.Send(&pgproto3.ParseComplete{})
			return nil
		}
		st.skip = true
		c.w.Send(c.abortError())
	case wire.Bind:
		c.w.Send(&pgproto3.BindComplete{})
	case wire.Describe:
		c.w.Send(&pgproto3.NoData{})
	case wire.Close:
		c.w.Send(&pgproto3.CloseComplete{})
	case wire.Execute:
		if st.ending {
			c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte("ROLLBACK")})
			return nil
		}
		st.skip = true
		c.w.Send(c.abortError())
	}
	return nil
}

// endAborted leaves the aborted state once the client has ended its transaction.
func (c *client) endAborted() {
	c.abort = abortState{}
	c.mu.Lock()
	c.aborted = false
	c.mu.Unlock()
}
