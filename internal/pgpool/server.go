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

	"github.com/poolsuite/poolsuite/protocol/postgres"
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
	// unnamedClient and unnamedSeq say whose unnamed statement the connection holds:
	// the client's id and its unnamedSeq then; 0 when unknown (prepared.go). Owned by
	// whoever holds the connection.
	unnamedClient, unnamedSeq uint64

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

// startTLS negotiates TLS per server_tls_sslmode.
func (s *server) startTLS(o *serverOptions) error {
	switch o.tlsMode {
	case "", "disable", "allow":
		return nil
	}
	var req [8]byte
	binary.BigEndian.PutUint32(req[:], 8)
	binary.BigEndian.PutUint32(req[4:], wire.SSLRequestCode)
	if _, err := s.conn.Write(req[:]); err != nil {
		return connFailed(err)
	}
	var ans [1]byte
	if _, err := io.ReadFull(s.conn, ans[:]); err != nil {
		return connFailed(err)
	}
	if ans[0] != 'S' {
		if o.tlsMode == "prefer" {
			return nil
		}
		return fatalf(CodeConnectionFailure, "server does not support TLS (server_tls_sslmode=%s)", o.tlsMode)
	}
	cfg := o.tlsConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	switch o.tlsMode {
	case "prefer", "require":
		cfg.InsecureSkipVerify = true
	case "verify-full":
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(o.addr)
		}
		if cfg.VerifyConnection != nil {
			cfg.VerifyConnection = serverVerifier(cfg.RootCAs, cfg.ServerName, true)
		}
	}
	tc := tls.Client(s.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return &Error{Severity: "FATAL", Code: CodeConnectionFailure,
			Message: fmt.Sprintf("server TLS handshake failed: %v", err), Err: err}
	}
	s.conn = tc
	s.tls = true
	return nil
}

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
	s.unnamedClient = 0 // a Query or Parse of pgpool's own drops the unnamed statement
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

func (s *server) String() string { return "S-" + strconv.FormatUint(s.id, 10) }
