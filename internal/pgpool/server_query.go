package pgpool

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// opSink collects the outcome of an internal query run by pgpool itself.
type opSink struct {
	done chan error // buffered 1
	err  error      // first ErrorResponse
	ref  sinkRef
	rows [][]string // DataRow values when collect is set
	// collect asks for DataRow values to be kept.
	collect bool
}

func (o *opSink) serverMessage(s *server, typ byte, msg []byte) {
	switch typ {
	case wire.ErrorResponse:
		if o.err == nil {
			var er pgproto3.ErrorResponse
			if er.Decode(wire.Body(msg)) == nil {
				o.err = &ServerError{Response: &er}
			} else {
				o.err = wire.ErrMalformed
			}
		}
	case wire.CommandComplete:
		if postgres.DropsAllStatements(msg) {
			s.stmts.clearBefore(^uint64(0)) // server_reset_query DISCARD ALL
			s.paramsMu.Lock()
			clear(s.sets) // DISCARD ALL resets every parameter
			s.paramsMu.Unlock()
		}
	case wire.DataRow:
		if o.collect {
			var dr pgproto3.DataRow
			if dr.Decode(wire.Body(msg)) == nil {
				row := make([]string, len(dr.Values))
				for i, v := range dr.Values {
					row[i] = string(v)
				}
				o.rows = append(o.rows, row)
			}
		}
	case wire.ReadyForQuery:
		s.owner.Store(nil)
		o.done <- o.err
	}
}

func (o *opSink) serverFlush(*server) {}

func (o *opSink) serverGone(_ *server, err error) { o.done <- connFailed(err) }

// exec runs a simple query on a server connection that nobody else owns and waits for
// its ReadyForQuery, up to timeout. On timeout or I/O failure the connection is closed.
func (s *server) exec(query string, timeout time.Duration) error {
	_, err := s.query(query, false, timeout)
	return err
}

func (s *server) query(query string, collect bool, timeout time.Duration) ([][]string, error) {
	return s.roundTrip(collect, timeout, &pgproto3.Query{String: query})
}

// queryParams runs one parameterised query with the extended protocol and returns its
// rows as text, like query.
func (s *server) queryParams(sql string, args []string, timeout time.Duration) ([][]string, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	return s.roundTrip(true, timeout, &pgproto3.Parse{Query: sql}, &pgproto3.Bind{Parameters: params},
		&pgproto3.Execute{}, &pgproto3.Sync{})
}

// roundTrip sends msgs on a connection nobody else owns and waits for ReadyForQuery,
// up to timeout; it returns the DataRow values when collect is set. On timeout or I/O
// failure the connection is closed.
func (s *server) roundTrip(collect bool, timeout time.Duration, msgs ...pgproto3.FrontendMessage) ([][]string, error) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	o := &opSink{done: make(chan error, 1), collect: collect}
	o.ref.s = o
	s.unnamed = unnamedHolder{} // a Query or Parse of pgpool's own drops the unnamed statement
	s.owner.Store(&o.ref)
	for _, m := range msgs {
		if err := s.w.Send(m); err != nil {
			s.owner.Store(nil)
			s.w.Reset()
			return nil, err
		}
	}
	if err := s.flush(timeout); err != nil {
		// The reader sees the closed socket and reports to o, unless it ended before o
		// became the owner.
		s.waitOp(o)
		return nil, connFailed(err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-o.done:
		return o.rows, err
	case <-s.done:
		select {
		case err := <-o.done:
			return o.rows, err
		default:
			return nil, connFailed(net.ErrClosed) // the reader ended before o was the owner
		}
	case <-t.C:
		s.close()
		s.waitOp(o)
		return nil, fatalf(CodeConnectionFailure, "server did not answer within %v", timeout)
	}
}

// waitOp waits until the reader has reported to o, or has ended.
func (s *server) waitOp(o *opSink) {
	select {
	case <-o.done:
	case <-s.done:
	}
}
