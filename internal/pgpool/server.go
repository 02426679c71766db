package pgpool

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// serverState is what SHOW SERVERS reports for a server connection.
type serverState int32

const (
	serverLogin  serverState = iota // connecting and logging in
	serverIdle                      // in the pool, free
	serverActive                    // bound to a client
	serverUsed                      // taken for an internal query (check, reset)
	serverClosed
)

func (s serverState) String() string {
	switch s {
	case serverLogin:
		return "login"
	case serverIdle:
		return "idle"
	case serverActive:
		return "active"
	case serverUsed:
		return "used"
	default:
		return "closed"
	}
}

// sink receives what a server connection reads while someone owns it. Calls come from
// the server's reader goroutine, one at a time.
type sink interface {
	// serverMessage handles one message; msg is valid only during the call.
	serverMessage(s *server, typ byte, msg []byte)
	// serverFlush is called when no further message is buffered.
	serverFlush(s *server)
	// serverGone is called once when the connection dies while owned.
	serverGone(s *server, err error)
}

// sinkRef lets a sink be stored in an atomic.Pointer without allocating per binding.
type sinkRef struct{ s sink }

// server is one connection from pgpool to PostgreSQL. Its reader goroutine reads every
// message and passes it to the current owner's sink; with no owner, it keeps the
// ParameterStatus values and drops notices. Writes are made by the owner only.
type server struct {
	id   uint64
	pool *pool
	conn net.Conn
	rd   *wire.Reader
	w    *wire.Writer

	pid, secret uint32 // the server's own BackendKeyData
	addr        string // the address it was dialled at (for cancel requests)
	tls         bool
	tlsKey      string // serverOptions.tlsKey of the settings it was opened with

	// wmu is held while the owner flushes w. The owner can lose the connection the
	// moment PostgreSQL has its last message, before Flush returns; release takes wmu
	// so the next owner never shares the buffer with a flush still unwinding.
	wmu      sync.Mutex
	wdl      writeDeadline // guarded by wmu
	owner    atomic.Pointer[sinkRef]
	state    atomic.Int32 // serverState
	txStatus atomic.Uint32

	// stmts are the statements prepared under pgpool's server-side names (prepared.go).
	stmts stmtCache
	// unnamed says whose unnamed statement the connection holds: the client's id and
	// its unnamedSeq then; zero when unknown (session_stmts.go). Owned by whoever holds
	// the connection.
	unnamed unnamedHolder

	paramsMu sync.Mutex
	params   map[string]string // ParameterStatus values as PostgreSQL last reported them
	sets     map[string]string // unreported parameters set by clients or pgpool (SQL text)

	createdAt time.Time
	expiresAt time.Time // server_lifetime with jitter
	lastUsed  atomic.Int64
	lastCheck time.Time // owned by whoever holds the connection

	// cmu guards cancels and parked: the CancelRequests forwarded to PostgreSQL for
	// this connection's client that have not completed yet, and a release that waits
	// for them so that none can reach the query of the next client.
	cmu     sync.Mutex
	cancels int
	parked  parkedRelease

	// logDB and logUser name the connection in log lines; reason is why pgpool
	// closed it (closeBecause), for log_disconnections.
	logDB, logUser string
	reason         atomic.Pointer[string]

	closeOnce sync.Once
	closed    atomic.Bool
	done      chan struct{} // closed when the reader goroutine ends
	closeErr  error
}

func (s *server) setState(st serverState) { s.state.Store(int32(st)) }

func (s *server) getState() serverState { return serverState(s.state.Load()) }

// serverOptions are what is needed to open a server connection.
type serverOptions struct {
	network, addr  string // "tcp" host:port or "unix" socket path
	user, database string
	startup        map[string]string // extra startup parameters
	cred           *auth.Credentials
	connectTimeout time.Duration
	tlsMode        string // disable, allow, prefer, require, verify-ca, verify-full
	tlsConfig      *tls.Config
	// tlsKey identifies the server_tls_* settings tlsMode and tlsConfig come from: a
	// connection opened under other ones is closed when it is next free (stale).
	tlsKey string
	// hosts is the database's host list when it has more than one host; network and
	// addr are then the address of the attempt (hosts.go).
	hosts        []endpoint
	stickyHost   bool   // load_balance_hosts=disable
	connectQuery string // run once after login (connect_query)
}

// connectServer dials and logs in, then starts the reader goroutine. The whole login is
// bounded by connectTimeout.
func connectServer(p *pool, id uint64, o *serverOptions) (*server, error) {
	timeout := o.connectTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	start := time.Now()
	conn, err := d.Dial(o.network, o.addr)
	if err != nil {
		if p != nil {
			s := &server{id: id, addr: o.addr, createdAt: start, logDB: p.database, logUser: o.user}
			s.reason.Store(ptrTo(reasonConnectFailed))
			s.logClosing(p)
		}
		return nil, &Error{Severity: "FATAL", Code: CodeConnectionFailure,
			Message: fmt.Sprintf("server connection failed: %v", err), Err: err}
	}
	conn.SetDeadline(deadline)
	s := &server{
		id: id, pool: p, conn: conn, addr: o.addr, tlsKey: o.tlsKey,
		params:    make(map[string]string),
		sets:      make(map[string]string),
		createdAt: time.Now(),
		done:      make(chan struct{}),
		logDB:     o.database, logUser: o.user,
	}
	if p != nil {
		s.logDB = p.database
	}
	s.setState(serverLogin)
	if err := s.login(o); err != nil {
		conn.Close()
		if p != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// server_connect_timeout ended the login, as PgBouncer logs it.
			s.reason.Store(ptrTo(reasonConnectTimeout))
			s.logClosing(p)
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	s.lastUsed.Store(time.Now().UnixNano())
	s.lastCheck = time.Now()
	go s.readLoop()
	return s, nil
}

func (s *server) login(o *serverOptions) error {
	if o.network == "tcp" {
		if err := s.startTLS(o); err != nil {
			return err
		}
	}
	s.rd = wire.NewReader(s.conn)
	s.w = wire.NewWriter(s.conn)
	params := map[string]string{"user": o.user, "database": o.database}
	for k, v := range o.startup {
		params[k] = v
	}
	if err := s.w.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return connFailed(err)
	}
	if err := auth.Login(s.rd, s.w, o.user, o.cred); err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			if ae.Kind == auth.ErrServer && ae.Server != nil {
				return &ServerError{Response: ae.Server}
			}
			if ae.Err == nil || ae.Kind == auth.ErrNoCredentials {
				er := ae.ErrorResponse()
				return &Error{Severity: "FATAL", Code: ae.SQLState(), Message: er.Message, Detail: er.Detail, Err: err}
			}
		}
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return connFailed(err)
		}
		return &Error{Severity: "FATAL", Code: CodeConnectionFailure,
			Message: fmt.Sprintf("server login failed: %v", err), Err: err}
	}
	for {
		typ, msg, err := s.rd.Next()
		if err != nil {
			return connFailed(err)
		}
		switch typ {
		case wire.ParameterStatus:
			var ps pgproto3.ParameterStatus
			if ps.Decode(wire.Body(msg)) == nil {
				s.params[ps.Name] = ps.Value
			}
		case wire.BackendKeyData:
			body := wire.Body(msg)
			if len(body) >= 8 {
				s.pid = binary.BigEndian.Uint32(body)
				s.secret = binary.BigEndian.Uint32(body[4:])
			}
		case wire.ErrorResponse:
			var er pgproto3.ErrorResponse
			if er.Decode(wire.Body(msg)) != nil {
				return connFailed(wire.ErrMalformed)
			}
			return &ServerError{Response: &er}
		case wire.ReadyForQuery:
			s.txStatus.Store(uint32(msg[wire.HeaderSize]))
			return nil
		case wire.NoticeResponse, wire.NegotiateProtocol:
		default:
			return connFailed(fmt.Errorf("unexpected message %q during login", typ))
		}
	}
}

func connFailed(err error) *Error {
	return &Error{Severity: "FATAL", Code: CodeConnectionFailure,
		Message: fmt.Sprintf("server connection failed: %v", err), Err: err}
}

// close closes the socket; the reader goroutine then ends and reports it to the pool.
func (s *server) close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.setState(serverClosed)
		if s.conn != nil {
			// Be polite when we can: a Terminate lets PostgreSQL end the backend cleanly.
			s.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			s.conn.Write([]byte{wire.Terminate, 0, 0, 0, 4})
			s.conn.Close()
		}
	})
}

// flush sends what the owner buffered; a write blocked for about timeout fails and
// closes the connection.
func (s *server) flush(timeout time.Duration) error {
	s.wmu.Lock()
	s.wdl.arm(s.conn, timeout)
	err := s.w.Flush()
	s.wmu.Unlock()
	if err != nil {
		s.close()
		return err
	}
	return nil
}

// writeThrough sends what the owner buffered and then p, without copying p (a part
// of a message streamed from a client); a write blocked for about timeout fails and
// closes the connection.
func (s *server) writeThrough(p []byte, timeout time.Duration) error {
	s.wmu.Lock()
	s.wdl.arm(s.conn, timeout)
	err := s.w.WriteThrough(p)
	s.wmu.Unlock()
	if err != nil {
		s.close()
		return err
	}
	return nil
}

// txIdle reports whether the last ReadyForQuery said the session is idle.
func (s *server) txIdle() bool { return byte(s.txStatus.Load()) == 'I' }

func (s *server) String() string { return "S-" + strconv.FormatUint(s.id, 10) }
