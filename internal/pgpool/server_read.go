package pgpool

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// readLoop is the server's reader goroutine. It ends when the connection closes.
func (s *server) readLoop() {
	defer close(s.done)
	defer s.rd.Free()
	// SUSPEND holds the reader between batches: once a batch has been read it is
	// relayed and flushed before the reader parks (suspend.go).
	var gate *suspendGate
	var done <-chan struct{}
	if s.pool != nil && s.pool.pooler != nil {
		gate, done = &s.pool.pooler.susp, s.pool.pooler.done
	}
	inBatch := false
	defer func() {
		if inBatch {
			gate.leave()
		}
	}()
	endBatch := func() {
		if inBatch && !s.rd.HasMessage() {
			gate.leave()
			inBatch = false
		}
	}
	for {
		typ, msg, err := s.rd.NextPart()
		if err != nil {
			if s.serverHandedOver(err) {
				return
			}
			s.fail(err)
			return
		}
		if gate != nil && !inBatch {
			gate.enter(done)
			inBatch = true
		}
		if s.rd.Remaining() > 0 {
			if msg, err = s.longMessage(typ, msg); err != nil {
				s.fail(err)
				return
			}
			if msg == nil {
				endBatch()
				continue // streamed to the client, or nobody's
			}
		}
		switch typ {
		case wire.ReadyForQuery:
			if len(msg) > wire.HeaderSize {
				s.txStatus.Store(uint32(msg[wire.HeaderSize]))
			}
		case wire.ParameterStatus:
			s.recordParam(msg)
		}
		ref := s.owner.Load()
		if ref == nil {
			// Idle: notices and async status are not anyone's. A FATAL error (the
			// backend was terminated, the server shuts down) means the connection is
			// ending: close it now, so it is not handed to a client in the moment
			// before the socket's end is read.
			if typ == wire.ErrorResponse && postgres.FatalResponse(msg) {
				s.close()
			}
			endBatch()
			continue
		}
		ref.s.serverMessage(s, typ, msg)
		if !s.rd.HasMessage() {
			if ref := s.owner.Load(); ref != nil {
				ref.s.serverFlush(s)
			}
			s.rd.Release()
			endBatch()
		}
	}
}

// longMessage handles a message longer than the read buffer, of which head is the
// first part. A row, COPY data or a function result is streamed to the client that
// owns the connection, or skipped when nobody does; it then returns nil. Anything
// else pgpool decodes: it is read whole, bounded by the reader's maximum.
func (s *server) longMessage(typ byte, head []byte) ([]byte, error) {
	switch typ {
	case wire.DataRow, wire.CopyData, wire.FunctionCallResponse:
		ref := s.owner.Load()
		if ref == nil {
			return nil, s.rd.Discard()
		}
		if c, ok := ref.s.(*client); ok {
			return nil, c.serverStream(s, head)
		}
	}
	return s.rd.Rest()
}

func (s *server) recordParam(msg []byte) {
	var ps pgproto3.ParameterStatus
	if ps.Decode(wire.Body(msg)) != nil {
		return
	}
	s.paramsMu.Lock()
	s.params[ps.Name] = ps.Value
	s.paramsMu.Unlock()
}

// param returns the value PostgreSQL last reported for a parameter.
func (s *server) param(name string) (string, bool) {
	s.paramsMu.Lock()
	defer s.paramsMu.Unlock()
	v, ok := s.params[name]
	return v, ok
}

// paramsCopy returns the ParameterStatus values as last reported.
func (s *server) paramsCopy() map[string]string {
	s.paramsMu.Lock()
	defer s.paramsMu.Unlock()
	m := make(map[string]string, len(s.params))
	for k, v := range s.params {
		m[k] = v
	}
	return m
}

// fail handles the end of the connection seen by the reader.
func (s *server) fail(err error) {
	if !s.closed.Load() && !errors.Is(err, net.ErrClosed) {
		s.closeErr = err
	}
	s.close()
	if ref := s.owner.Swap(nil); ref != nil {
		ref.s.serverGone(s, err)
	}
	if s.pool != nil {
		s.logClosing(s.pool)
		s.pool.serverClosed(s)
	}
}
