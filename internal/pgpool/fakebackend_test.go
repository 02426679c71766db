package pgpool

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A fake PostgreSQL backend for tests of rules a real server rarely shows on demand: it
// logs pgpool in with AuthenticationOk, then answers each message with what a
// per-test script returns, or with plain defaults, and records every message each of
// its connections received.

// fakeMsg is a received frontend message, copied out of pgproto3's reused structs.
type fakeMsg struct {
	Type string // "Query", "Parse", "Bind", "Describe", "Execute", "Close", "Sync", "Flush", "Terminate", ...
	Name string // Parse, Bind (the statement), Describe and Close: the object's name
	Kind byte   // Describe and Close: 'S' or 'P'
	SQL  string // Query and Parse: the text
}

func (m fakeMsg) String() string {
	switch m.Type {
	case "Query":
		return "Query(" + m.SQL + ")"
	case "Parse":
		return fmt.Sprintf("Parse(%q, %s)", m.Name, m.SQL)
	case "Bind":
		return fmt.Sprintf("Bind(%q)", m.Name)
	case "Describe", "Close":
		return fmt.Sprintf("%s(%c %q)", m.Type, m.Kind, m.Name)
	}
	return m.Type
}

func fakeRecord(msg pgproto3.FrontendMessage) fakeMsg {
	switch m := msg.(type) {
	case *pgproto3.Query:
		return fakeMsg{Type: "Query", SQL: m.String}
	case *pgproto3.Parse:
		return fakeMsg{Type: "Parse", Name: m.Name, SQL: m.Query}
	case *pgproto3.Bind:
		return fakeMsg{Type: "Bind", Name: m.PreparedStatement}
	case *pgproto3.Describe:
		return fakeMsg{Type: "Describe", Kind: m.ObjectType, Name: m.Name}
	case *pgproto3.Close:
		return fakeMsg{Type: "Close", Kind: m.ObjectType, Name: m.Name}
	case *pgproto3.Execute:
		return fakeMsg{Type: "Execute"}
	case *pgproto3.Sync:
		return fakeMsg{Type: "Sync"}
	case *pgproto3.Flush:
		return fakeMsg{Type: "Flush"}
	case *pgproto3.Terminate:
		return fakeMsg{Type: "Terminate"}
	}
	return fakeMsg{Type: fmt.Sprintf("%T", msg)}
}

// fakeScript answers one message on connection fc: handled false leaves it to the
// defaults. It runs on the connection's goroutine; it may call fc.hangUp.
type fakeScript func(fc *fakeConn, m fakeMsg) (replies []pgproto3.BackendMessage, handled bool)

// fakeBackend is a listening fake server.
type fakeBackend struct {
	ln     net.Listener
	script fakeScript
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*fakeConn
	pid   uint32
}

// fakeConn is one server connection of the fake.
type fakeConn struct {
	fb   *fakeBackend
	id   int // 0 for the first connection pgpool opened
	conn net.Conn
	done chan struct{} // closed when the connection has ended

	mu      sync.Mutex
	got     []fakeMsg
	waiters []fakeWaiter
	// Owned by the connection's goroutine.
	tx       byte              // transaction status
	skipping bool              // an error was sent: skip to Sync
	stmts    map[string]string // statement name -> text
	portal   string            // text of the unnamed portal
}

type fakeWaiter struct {
	match func(fakeMsg) bool
	left  int // matches still to come
	ch    chan struct{}
}

// startFake listens on a free loopback port until the test ends.
func startFake(t *testing.T, script fakeScript) *fakeBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{ln: ln, script: script, pid: 1000}
	fb.wg.Add(1)
	go fb.accept()
	t.Cleanup(func() {
		ln.Close()
		fb.mu.Lock()
		for _, fc := range fb.conns {
			fc.conn.Close()
		}
		fb.mu.Unlock()
		fb.wg.Wait()
	})
	return fb
}

// config returns a transaction-mode pooler config with database "fakedb" on the fake,
// for user "u" with password "pw".
func (fb *fakeBackend) config() *Config {
	cfg := Defaults()
	cfg.PoolMode = PoolTransaction
	cfg.AuthType = "plain"
	cfg.Userlist = map[string]string{"u": "pw"}
	a := fb.ln.Addr().(*net.TCPAddr)
	cfg.Databases["fakedb"] = &Database{Host: "127.0.0.1", Port: a.Port, ReservePool: -1}
	cfg.ServerTLSMode = "disable"
	cfg.LogStats = false
	return cfg
}

func (fb *fakeBackend) accept() {
	defer fb.wg.Done()
	for {
		conn, err := fb.ln.Accept()
		if err != nil {
			return
		}
		fb.mu.Lock()
		fc := &fakeConn{fb: fb, id: len(fb.conns), conn: conn, done: make(chan struct{}), tx: 'I', stmts: map[string]string{}}
		fb.conns = append(fb.conns, fc)
		fb.pid++
		pid := fb.pid
		fb.mu.Unlock()
		fb.wg.Add(1)
		go func() {
			defer fb.wg.Done()
			defer close(fc.done)
			defer conn.Close()
			fc.serve(pid)
		}()
	}
}

// conn returns connection i, nil if it was not opened.
func (fb *fakeBackend) conn(i int) *fakeConn {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if i < len(fb.conns) {
		return fb.conns[i]
	}
	return nil
}

// opened is the number of connections pgpool opened.
func (fb *fakeBackend) opened() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return len(fb.conns)
}

// messages returns what the connection has received so far.
func (fc *fakeConn) messages() []fakeMsg {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]fakeMsg(nil), fc.got...)
}

// when returns a channel closed once the connection receives (or has received) a
// message that match accepts; it is closed before the message is answered.
func (fc *fakeConn) when(match func(fakeMsg) bool) <-chan struct{} { return fc.whenNth(match, 1) }

// whenNth is when for the nth message match accepts. match must not call fc's methods.
func (fc *fakeConn) whenNth(match func(fakeMsg) bool, n int) <-chan struct{} {
	ch := make(chan struct{})
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, m := range fc.got {
		if match(m) {
			n--
		}
	}
	if n <= 0 {
		close(ch)
		return ch
	}
	fc.waiters = append(fc.waiters, fakeWaiter{match, n, ch})
	return ch
}

// hangUp closes the connection's socket.
func (fc *fakeConn) hangUp() { fc.conn.Close() }

func (fc *fakeConn) record(m fakeMsg) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.got = append(fc.got, m)
	kept := fc.waiters[:0]
	for _, w := range fc.waiters {
		if w.match(m) {
			w.left--
		}
		if w.left <= 0 {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	fc.waiters = kept
}

func (fc *fakeConn) serve(pid uint32) {
	be := pgproto3.NewBackend(fc.conn, fc.conn)
	fc.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{{"server_version", "15.0"}, {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"},
		{"TimeZone", "UTC"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"}} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		m := fakeRecord(msg)
		fc.record(m)
		if m.Type == "Terminate" {
			return
		}
		var replies []pgproto3.BackendMessage
		if fc.skipping && m.Type != "Sync" {
			continue // PostgreSQL skips to Sync after an error
		}
		handled := false
		if fc.fb.script != nil {
			replies, handled = fc.fb.script(fc, m)
		}
		if !handled {
			replies = fc.defaults(m)
		}
		if m.Type == "Sync" {
			fc.skipping = false
		}
		for _, r := range replies {
			if _, ok := r.(*pgproto3.ErrorResponse); ok && m.Type != "Query" && m.Type != "Sync" {
				fc.skipping = true
			}
			if rq, ok := r.(*pgproto3.ReadyForQuery); ok {
				fc.tx = rq.TxStatus
			}
			be.Send(r)
		}
		if err := be.Flush(); err != nil {
			return
		}
	}
}

// fakeRows answers a query with one row of text values.
func fakeRows(tag string, values ...string) []pgproto3.BackendMessage {
	var rd pgproto3.RowDescription
	row := make([][]byte, len(values))
	for i, v := range values {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(fmt.Sprintf("c%d", i)), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1})
		row[i] = []byte(v)
	}
	return []pgproto3.BackendMessage{&rd, &pgproto3.DataRow{Values: row}, &pgproto3.CommandComplete{CommandTag: []byte(tag)}}
}

// fakeError is an ErrorResponse with code and message.
func fakeError(code, message string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: message}
}

// isSelect reports whether sql returns rows in the defaults.
func isSelect(sql string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(sql)), "select")
}

// commandTag is the defaults' tag for sql: its first word in upper case.
func commandTag(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimSuffix(f[0], ";"))
}

// defaults answers like a server where every select returns one row "1" and every
// other statement succeeds; the pin check finds nothing left.
func (fc *fakeConn) defaults(m fakeMsg) []pgproto3.BackendMessage {
	switch m.Type {
	case "Query":
		var out []pgproto3.BackendMessage
		switch {
		case m.SQL == pinCheckQuery:
			out = fakeRows("SELECT 1", "0", "0", "0", "0", "0")
		case strings.TrimSpace(m.SQL) == "":
			out = []pgproto3.BackendMessage{&pgproto3.EmptyQueryResponse{}}
		case isSelect(m.SQL):
			out = fakeRows("SELECT 1", "1")
		default:
			tag := commandTag(m.SQL)
			switch tag {
			case "BEGIN":
				fc.tx = 'T'
			case "COMMIT", "ROLLBACK":
				fc.tx = 'I'
			}
			out = []pgproto3.BackendMessage{&pgproto3.CommandComplete{CommandTag: []byte(tag)}}
		}
		return append(out, &pgproto3.ReadyForQuery{TxStatus: fc.tx})
	case "Parse":
		fc.stmts[m.Name] = m.SQL
		return []pgproto3.BackendMessage{&pgproto3.ParseComplete{}}
	case "Bind":
		fc.portal = fc.stmts[m.Name]
		return []pgproto3.BackendMessage{&pgproto3.BindComplete{}}
	case "Describe":
		sql := fc.portal
		var out []pgproto3.BackendMessage
		if m.Kind == 'S' {
			sql = fc.stmts[m.Name]
			out = append(out, &pgproto3.ParameterDescription{})
		}
		if isSelect(sql) {
			return append(out, fakeRows("")[0])
		}
		return append(out, &pgproto3.NoData{})
	case "Execute":
		if isSelect(fc.portal) {
			return fakeRows("SELECT 1", "1")[1:]
		}
		return []pgproto3.BackendMessage{&pgproto3.CommandComplete{CommandTag: []byte(commandTag(fc.portal))}}
	case "Close":
		if m.Kind == 'S' {
			delete(fc.stmts, m.Name)
		}
		return []pgproto3.BackendMessage{&pgproto3.CloseComplete{}}
	case "Sync":
		return []pgproto3.BackendMessage{&pgproto3.ReadyForQuery{TxStatus: fc.tx}}
	}
	return nil
}

// fakeClient is a raw protocol client of the pooler.
type fakeClient struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

// dialFake logs in to the pooler at addr as u/pw on fakedb with a raw client.
func dialFake(t *testing.T, addr string) *fakeClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fc := &fakeClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	fc.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "u", "database": "fakedb"}})
	if m := fc.receive(); m != (*pgproto3.AuthenticationCleartextPassword)(nil) {
		if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); !ok {
			t.Fatalf("login: expected a cleartext password request, got %T", m)
		}
	}
	fc.send(&pgproto3.PasswordMessage{Password: "pw"})
	for {
		switch m := fc.receive().(type) {
		case *pgproto3.ReadyForQuery:
			return fc
		case *pgproto3.ErrorResponse:
			t.Fatalf("login: %s %s", m.Code, m.Message)
		}
	}
}

func (fc *fakeClient) send(msgs ...pgproto3.FrontendMessage) {
	fc.t.Helper()
	for _, m := range msgs {
		fc.fe.Send(m)
	}
	if err := fc.fe.Flush(); err != nil {
		fc.t.Fatal(err)
	}
}

func (fc *fakeClient) receive() pgproto3.BackendMessage {
	fc.t.Helper()
	m, err := fc.fe.Receive()
	if err != nil {
		fc.t.Fatal(err)
	}
	return m
}

// untilReady reads up to ReadyForQuery and returns a summary of each message:
// the type's name, and an ErrorResponse's code.
func (fc *fakeClient) untilReady() []string {
	fc.t.Helper()
	var got []string
	for {
		msg, err := fc.fe.Receive()
		if err != nil {
			return append(got, "EOF")
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return append(got, "ReadyForQuery")
		case *pgproto3.ErrorResponse:
			got = append(got, "Error "+m.Code)
		default:
			got = append(got, strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3."))
		}
	}
}

// query runs a simple query and returns untilReady's summary.
func (fc *fakeClient) query(sql string) []string {
	fc.t.Helper()
	fc.send(&pgproto3.Query{String: sql})
	return fc.untilReady()
}

// waitClosed waits until ch is closed, failing the test after a long while.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("the fake backend never received %s", what)
	}
}
