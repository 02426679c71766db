package pgpool

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// parkedRelease is a release of a server connection put off until the cancels
// forwarded for it have completed.
type parkedRelease uint8

const (
	parkedNone             parkedRelease = iota
	parkedPut                            // release
	parkedAfterTransaction               // releaseAfterTransaction
)

// cancelStarted counts a CancelRequest about to be forwarded for this connection.
// The caller holds the client's mu and has seen this connection serve that client
// with a request in flight, so the connection cannot have been released in between.
func (s *server) cancelStarted() {
	s.cmu.Lock()
	s.cancels++
	s.cmu.Unlock()
}

// cancelDone ends a forwarded cancel; the last one to end performs a release that
// was put off for it.
func (s *server) cancelDone() {
	s.cmu.Lock()
	s.cancels--
	park := parkedNone
	if s.cancels == 0 {
		park, s.parked = s.parked, parkedNone
	}
	s.cmu.Unlock()
	if park != parkedNone && s.pool != nil {
		s.pool.resumeRelease(s, park == parkedAfterTransaction)
	}
}

// parkForCancels puts a release off while cancels forwarded for this connection are
// still under way; it reports whether it did.
func (s *server) parkForCancels(transactionEnd bool) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.cancels == 0 {
		return false
	}
	s.parked = parkedPut
	if transactionEnd {
		s.parked = parkedAfterTransaction
	}
	return true
}

// cancel sends a CancelRequest for whatever this connection is running and waits, up
// to timeout, until PostgreSQL has processed it (it then closes the connection).
func (s *server) cancel(timeout time.Duration) {
	network := "tcp"
	if len(s.addr) > 0 && s.addr[0] == '/' {
		network = "unix"
	}
	conn, err := net.DialTimeout(network, s.addr, timeout)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	var req [16]byte
	binary.BigEndian.PutUint32(req[0:], 16)
	binary.BigEndian.PutUint32(req[4:], wire.CancelRequest)
	binary.BigEndian.PutUint32(req[8:], s.pid)
	binary.BigEndian.PutUint32(req[12:], s.secret)
	if _, err := conn.Write(req[:]); err != nil {
		return
	}
	// PostgreSQL closes the connection when done; wait for that so the cancel has been
	// processed before we report back.
	var b [1]byte
	conn.Read(b[:])
}
