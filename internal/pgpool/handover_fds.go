package pgpool

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

// SHOW FDS, as PgBouncer has it: one row per socket (listeners, clients, servers)
// with what is needed to continue serving it. In an online restart (pgpool -R) each
// row comes with its socket, passed by SCM_RIGHTS over the admin console's unix
// socket, and its last column carries pgpool's own state of the socket as JSON
// (fdState); otherwise the rows only list the sockets.

// fdColumns are SHOW FDS's columns: PgBouncer's, then pgpool's state.
var fdColumns = []struct {
	name string
	oid  uint32
}{
	{"fd", 23}, {"task", 25}, {"user", 25}, {"database", 25}, {"addr", 25}, {"port", 23},
	{"cancel", 20}, {"link", 23}, {"client_encoding", 25}, {"std_strings", 25},
	{"datestyle", 25}, {"timezone", 25}, {"password", 25}, {"scram_client_key", 25},
	{"scram_server_key", 25}, {fdStateColumn, 25},
}

// fdStateColumn is the column of SHOW FDS that carries pgpool's state of a socket.
const fdStateColumn = "pgpool_state"

// fdRowDescription is SHOW FDS's RowDescription.
func fdRowDescription() *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{}
	for _, c := range fdColumns {
		size := int16(-1)
		switch c.oid {
		case 23:
			size = 4
		case 20:
			size = 8
		}
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: c.oid, DataTypeSize: size, TypeModifier: -1})
	}
	return rd
}

// Kinds of fdState.
const (
	fdKindListener = "listener"
	fdKindClient   = "client"
	// fdKindServer is the server connection of the client in the row before: the
	// client moves with it (session mode, or session state that pins it).
	fdKindServer = "server"
	// fdKindIdleServer is an idle server connection of a pool (fdState.Pool).
	fdKindIdleServer = "idle_server"
)

// fdState is pgpool's state of one socket in SHOW FDS.
type fdState struct {
	Kind string `json:"kind"`
	// A listener: its network ("tcp", "unix") and address, and the id of the process
	// handing it over.
	Network string `json:"network,omitempty"`
	Addr    string `json:"addr,omitempty"`
	PID     int    `json:"pid,omitempty"`
	// MockKey, on a listener's row, is the handing process's mock key (auth.MockKey):
	// the new process adopts it, so that an unknown user's mock exchange and a
	// plain-text user's salt are the same before and after the restart.
	MockKey []byte `json:"mock_key,omitempty"`
	// A client.
	Client *fdClient `json:"client,omitempty"`
	// An idle server connection and its pool.
	Pool   *fdPool   `json:"pool,omitempty"`
	Server *fdServer `json:"server,omitempty"`
}

// fdPool names the pool of an idle server connection.
type fdPool struct {
	Database string            `json:"database"`
	User     string            `json:"user"`
	Cred     *fdCred           `json:"cred,omitempty"`
	Welcome  map[string]string `json:"welcome,omitempty"`
}

// fdClient is a client connection handed over between transactions: everything the
// new process needs to go on serving it as if it had logged in there.
type fdClient struct {
	User        string            `json:"user"`
	Database    string            `json:"database"`
	AppName     string            `json:"app_name,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	Remote      string            `json:"remote"`
	Unix        bool              `json:"unix,omitempty"`
	PID         uint32            `json:"pid"`
	Secret      uint32            `json:"secret"`
	ConnectedAt time.Time         `json:"connected_at"`

	// The session value (session.go).
	Vals        map[string]string `json:"vals,omitempty"`
	Sets        map[string]string `json:"sets,omitempty"`
	Base        map[string]string `json:"base,omitempty"`
	StartupSets map[string]string `json:"startup_sets,omitempty"`

	Prep *fdPrep `json:"prep,omitempty"`
	// Cred is what the client's pool logs in to PostgreSQL with (the client's own
	// password or SCRAM keys when the server login passes them through).
	Cred *fdCred `json:"cred,omitempty"`
	// Pending is what pgpool had read from the client and not yet processed.
	Pending []byte `json:"pending,omitempty"`
	// Pins is the session state that pins the client to Server.
	Pins pins `json:"pins,omitempty"`
	// Server is the client's server connection, whose socket comes in the next row;
	// nil: the client has none.
	Server *fdServer `json:"server,omitempty"`
	// Welcome is what the pool tells new clients (ParameterStatus at login).
	Welcome map[string]string `json:"welcome,omitempty"`
}

// fdServer is a server connection handed over with its client, idle (nothing in
// flight, outside a transaction).
type fdServer struct {
	Addr      string            `json:"addr"`
	PID       uint32            `json:"pid"`
	Secret    uint32            `json:"secret"`
	Params    map[string]string `json:"params,omitempty"`
	Sets      map[string]string `json:"sets,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Stmts are the statements prepared under pgpool's names, most recently used
	// first, and whether each is stale.
	Stmts []fdCached `json:"stmts,omitempty"`
	// Pending is what pgpool had read from the server and not yet processed.
	Pending []byte `json:"pending,omitempty"`
}

// fdCached is one entry of a server connection's statement cache.
type fdCached struct {
	Name  string `json:"name"`
	Stale bool   `json:"stale,omitempty"`
}

// fdPrep is a client's prepared statements (prepState).
type fdPrep struct {
	Tracking   bool     `json:"tracking,omitempty"`
	Off        bool     `json:"off,omitempty"`
	Stmts      []fdStmt `json:"stmts,omitempty"`
	Unnamed    []byte   `json:"unnamed,omitempty"`
	UnnamedSeq uint64   `json:"unnamed_seq,omitempty"`
	Seq        uint64   `json:"seq"`
}

// fdStmt is one named statement (preparedStmt).
type fdStmt struct {
	Name  string `json:"name"`
	Srv   string `json:"srv"`
	Parse []byte `json:"parse"`
	Seq   uint64 `json:"seq"`
}

// fdCred is auth.Credentials in SHOW FDS.
type fdCred struct {
	Password  string `json:"password,omitempty"`
	MD5       string `json:"md5,omitempty"`
	SCRAM     string `json:"scram,omitempty"` // the verifier, as pg_authid stores it
	ClientKey []byte `json:"client_key,omitempty"`
}

func credToFD(c *auth.Credentials) *fdCred {
	if c == nil {
		return nil
	}
	fc := &fdCred{Password: c.Password, MD5: c.MD5, ClientKey: c.ClientKey}
	if c.SCRAM != nil {
		fc.SCRAM = c.SCRAM.Text()
	}
	return fc
}

// credentials returns the credentials fc carries; nil for none.
func (fc *fdCred) credentials() *auth.Credentials {
	if fc == nil {
		return nil
	}
	c := &auth.Credentials{Password: fc.Password, MD5: fc.MD5, ClientKey: fc.ClientKey}
	if fc.SCRAM != "" {
		if s := auth.ParseSecret(fc.SCRAM); s.Kind == auth.SecretSCRAM {
			v := s.SCRAM
			c.SCRAM = &v
		}
	}
	return c
}

// Errors of fd passing.
var (
	// ErrNoSocketFD: a connection or listener has no file descriptor to pass.
	ErrNoSocketFD = errors.New("pgpool: socket has no file descriptor to pass")
	// ErrFDProtocol: SHOW FDS's rows and the descriptors passed with them do not match.
	ErrFDProtocol = errors.New("pgpool: SHOW FDS rows and passed descriptors do not match")
)

// socketFile returns a duplicate of the descriptor of a connection or listener; the
// socket stays open while the file does.
func socketFile(x any) (*os.File, error) {
	if tc, ok := x.(*tls.Conn); ok {
		x = tc.NetConn()
	}
	if f, ok := x.(interface{ File() (*os.File, error) }); ok {
		return f.File()
	}
	return nil, ErrNoSocketFD
}

// socketFD returns the descriptor number of a connection or listener, -1 if none.
func socketFD(x any) int {
	if tc, ok := x.(*tls.Conn); ok {
		x = tc.NetConn()
	}
	sc, ok := x.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// fileFD returns a file's descriptor number without changing its mode (Fd would make
// it blocking, and the socket it shares with a running connection with it).
func fileFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(x uintptr) { fd = int(x) })
	}
	return fd
}

// hostPort splits an address for SHOW FDS's addr and port: "unix" and the port
// given for unix sockets.
func hostPort(a net.Addr, unixPort int) (string, int) {
	if a == nil || a.Network() == "unix" {
		return "unix", unixPort
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// unixPortOf reads the port from a unix socket path .s.PGSQL.<port>.
func unixPortOf(a net.Addr) int {
	if a == nil {
		return 0
	}
	s := a.String()
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			n, _ := strconv.Atoi(s[i+1:])
			return n
		}
	}
	return 0
}

// fdRow is one SHOW FDS row before encoding; nil fields are NULL.
type fdRow struct {
	fd                   int
	task, user, database string
	addr                 string
	port                 int
	cancel               uint64
	link                 int
	encoding, stdStrings string
	dateStyle, timeZone  string
	password             string
	clientKey, serverKey []byte
	state                []byte
}

func (r *fdRow) values() [][]byte {
	txt := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	key := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return []byte(base64.StdEncoding.EncodeToString(b))
	}
	return [][]byte{
		[]byte(strconv.Itoa(r.fd)), []byte(r.task), txt(r.user), txt(r.database), txt(r.addr),
		[]byte(strconv.Itoa(r.port)), []byte(strconv.FormatInt(int64(r.cancel), 10)),
		[]byte(strconv.Itoa(r.link)), txt(r.encoding), txt(r.stdStrings), txt(r.dateStyle),
		txt(r.timeZone), txt(r.password), key(r.clientKey), key(r.serverKey), r.state,
	}
}

// sendFD writes b on uc with fd passed alongside; the descriptor arrives with b's
// first byte.
func sendFD(uc *net.UnixConn, b []byte, f *os.File, timeout time.Duration) error {
	if timeout > 0 {
		uc.SetWriteDeadline(time.Now().Add(timeout))
		defer uc.SetWriteDeadline(time.Time{})
	}
	var n int
	var err error
	if f == nil {
		n, _, err = uc.WriteMsgUnix(b, nil, nil)
	} else {
		// Through SyscallConn: Fd would put the shared socket in blocking mode.
		rc, rerr := f.SyscallConn()
		if rerr != nil {
			return rerr
		}
		if cerr := rc.Control(func(fd uintptr) { n, _, err = uc.WriteMsgUnix(b, unix.UnixRights(int(fd)), nil) }); cerr != nil {
			return cerr
		}
	}
	if err != nil {
		return err
	}
	if n < len(b) {
		_, err = uc.Write(b[n:])
	}
	return err
}

// fdReader reads a unix socket and keeps, in order, the descriptors passed with what
// it reads. Reads stop at each passed descriptor, so a message is whole in the
// buffer no earlier than its descriptor is queued.
type fdReader struct {
	uc  *net.UnixConn
	fds []int
	oob []byte
}

// maxQueuedFDs bounds the descriptors received and not yet claimed.
const maxQueuedFDs = 1024

func (r *fdReader) Read(p []byte) (int, error) {
	if r.oob == nil {
		r.oob = make([]byte, unix.CmsgSpace(16*4))
	}
	n, oobn, flags, _, err := r.uc.ReadMsgUnix(p, r.oob)
	if oobn > 0 {
		scms, perr := unix.ParseSocketControlMessage(r.oob[:oobn])
		if perr != nil {
			return n, fmt.Errorf("%w: %v", ErrFDProtocol, perr)
		}
		for _, scm := range scms {
			fds, perr := unix.ParseUnixRights(&scm)
			if perr != nil {
				continue
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				if len(r.fds) >= maxQueuedFDs {
					unix.Close(fd)
					continue
				}
				r.fds = append(r.fds, fd)
			}
		}
	}
	if flags&unix.MSG_CTRUNC != 0 && err == nil {
		err = fmt.Errorf("%w: control data truncated", ErrFDProtocol)
	}
	return n, err
}

// take returns the oldest unclaimed descriptor as a file.
func (r *fdReader) take(name string) (*os.File, error) {
	if len(r.fds) == 0 {
		return nil, fmt.Errorf("%w: a row came without its descriptor", ErrFDProtocol)
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return os.NewFile(uintptr(fd), name), nil
}

// closeAll closes the descriptors nobody claimed.
func (r *fdReader) closeAll() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}

// cancelOf packs a cancel key into SHOW FDS's cancel column.
func cancelOf(pid, secret uint32) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:], pid)
	binary.BigEndian.PutUint32(b[4:], secret)
	return binary.BigEndian.Uint64(b[:])
}
