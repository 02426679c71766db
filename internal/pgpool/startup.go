package pgpool

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// adminDatabases are the virtual databases of the admin console.
var adminDatabases = map[string]bool{admin.ConsoleDatabase: true, admin.AltConsoleDatabase: true}

// ErrCancelRequest ends a connection that carried a CancelRequest.
var errCancelRequest = errors.New("pgpool: cancel request")

// startup reads the startup packet, negotiating TLS first if the client asks, and
// records the client's parameters. It returns errCancelRequest for a cancel.
func (c *client) startup() error {
	g := c.pl.settings()
	for {
		pkt, err := c.rd.ReadStartup()
		if err != nil {
			return err
		}
		st, err := wire.DecodeStartup(pkt)
		var up *wire.UnsupportedProtocolError
		switch {
		case errors.As(err, &up):
			return fatalf(CodeProtocolViolation, "%s", up.Error())
		case err != nil:
			return err
		}
		switch st.Kind {
		case wire.KindSSLRequest:
			if err := c.negotiateTLS(g); err != nil {
				return err
			}
			continue
		case wire.KindGSSENCRequest:
			if _, err := c.conn.Write([]byte{'N'}); err != nil {
				return err
			}
			continue
		case wire.KindCancelRequest:
			c.pl.cancel(st.PID, st.Secret)
			return errCancelRequest
		}
		// TLS over a unix socket is not offered, so a unix-socket client is served
		// without it whatever client_tls_sslmode says, as by PgBouncer.
		if tlsRequired(g.ClientTLSMode) && !c.tls && !c.unix {
			return fatalf(CodeInvalidAuthorization, "SSL required")
		}
		return c.acceptParams(g, st.Params)
	}
}

// acceptParams reads the startup parameters. Every parameter PostgreSQL could take
// is accepted and follows the client: reported ones (TimeZone, DateStyle, ...) through
// the client's values, the others (client_min_messages, search_path, any setting, and
// the -c switches of "options") as the client's own startup SETs, which the server
// checks at login (checkStartupSets).
func (c *client) acceptParams(g *Config, params map[string]string) error {
	c.user = params["user"]
	if c.user == "" {
		return fatalf(CodeInvalidAuthorization, "no user name in startup packet")
	}
	c.database = params["database"]
	if c.database == "" {
		c.database = c.user
	}
	c.appName = params["application_name"]
	c.params = make(map[string]string)
	c.sess.startupSets = nil
	admin := adminDatabases[c.database]
	if _, ok := params["replication"]; ok {
		return fatalf(CodeProtocolViolation, "replication connections are not supported")
	}
	if o, ok := params["options"]; ok && !admin && !contains(g.IgnoreStartupParameters, "options") {
		// PostgreSQL applies options first; parameters sent on their own win.
		settings, err := postgres.ParseOptions(o)
		if err != nil {
			return fatalf(codeSyntaxError, "%s", err.Error())
		}
		for _, kv := range settings {
			if err := c.startupParam(kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	for k, v := range params {
		switch k {
		case "user", "database", "options":
			continue
		}
		if strings.HasPrefix(k, "_pq_.") || contains(g.IgnoreStartupParameters, k) {
			continue // protocol extensions, which PostgreSQL ignores too
		}
		if admin {
			c.params[k] = v
			continue
		}
		if err := c.startupParam(k, v); err != nil {
			return err
		}
	}
	return nil
}

// startupParam records one startup setting.
func (c *client) startupParam(name, value string) error {
	if n, ok := postgres.ReportedParam(name); ok {
		c.params[n] = value
		return nil
	}
	lname := strings.ToLower(name)
	if !postgres.PlainName(lname) {
		return fatalf(codeUndefinedObject, "unrecognized configuration parameter \"%s\"", name)
	}
	if c.sess.startupSets == nil {
		c.sess.startupSets = make(map[string]string)
	}
	c.sess.startupSets[lname] = value
	return nil
}

// checkStartupSets has a server connection try the client's startup SETs (for the
// length of one statement's implicit transaction, so nothing stays), and returns
// PostgreSQL's error for a setting it would refuse at login.
func (c *client) checkStartupSets(p *pool, deadline time.Time, reason string) error {
	if len(c.sess.startupSets) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	first := true
	for name, value := range c.sess.startupSets {
		if !first {
			b.WriteString(", ")
		}
		first = false
		// Set locally: the same check, undone when the statement ends.
		b.WriteString("pg_catalog.set_config(" + postgres.QuoteString(name) + ", " + postgres.QuoteString(value) + ", true)")
	}
	s, err := p.acquire(c, deadline)
	if err != nil {
		if errors.Is(err, ErrQueryWaitTimeout) {
			return waitError(err, reason)
		}
		return err
	}
	s.setState(serverUsed)
	err = s.exec(b.String(), c.pl.settings().ServerConnectTimeout)
	var se *ServerError
	switch {
	case err == nil:
		p.release(s)
	case errors.As(err, &se):
		p.release(s)
		se.Response.Severity, se.Response.SeverityUnlocalized = "FATAL", "FATAL"
		return se
	default:
		s.close()
		return err
	}
	return nil
}

// negotiateTLS answers an SSLRequest.
func (c *client) negotiateTLS(g *Config) error {
	if c.tls {
		return fatalf(CodeProtocolViolation, "duplicate SSLRequest")
	}
	if g.ClientTLSMode == "" || g.ClientTLSMode == "disable" || g.ClientTLS == nil || c.unix {
		_, err := c.conn.Write([]byte{'N'})
		return err
	}
	if c.rd.Buffered() > 0 {
		return fatalf(CodeProtocolViolation, "data after SSLRequest")
	}
	if _, err := c.conn.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(c.conn, g.ClientTLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("pgpool: client TLS handshake: %w", err)
	}
	c.conn = tc
	c.rd = wire.NewReader(tc)
	c.w = wire.NewWriter(tc)
	c.tls = true
	return nil
}

// login authenticates the client and links it to its pool.
func (c *client) login() error {
	if adminDatabases[c.database] {
		return c.loginAdmin(c.pl.settings())
	}
	c.pl.susp.park(c.pl.done) // new clients wait out SUSPEND
	g := c.pl.settings()
	db, ok := g.database(c.database)
	if !ok {
		// Authenticate first, as for a real database (without auth_query), so that
		// only a client whose password is right learns that the database is missing.
		if _, err := c.authenticate(g, nil); err != nil {
			return err
		}
		if g.LogConnections {
			c.pl.log.Info(fmt.Sprintf("login failed: db=%s user=%s", c.database, c.user), c.logConn())
		}
		return fatalf(CodeInvalidCatalogName, "no such database: %s", c.database)
	}
	cred, err := c.authenticate(g, db)
	if err != nil {
		return err
	}
	if c.pl.databaseDisabled(c.database) {
		return fatalf(CodeCannotConnectNow, "database \"%s\" is disabled", c.database)
	}
	_, explicit := g.Databases[c.database]
	known := explicit || c.pl.databaseSeen(c.database)
	p, err := c.pl.poolFor(c.database, c.user, db, cred)
	if err != nil {
		return err
	}
	if !known {
		c.logAutoDatabase()
	}
	c.pool = p
	c.cfg = p.config()
	deadline, reason := waitDeadline(g)
	welcome, err := p.welcomeParams(c, deadline)
	if err != nil {
		if errors.Is(err, ErrQueryWaitTimeout) {
			return waitError(err, reason)
		}
		return err
	}
	if err := c.checkStartupSets(p, deadline, reason); err != nil {
		return err
	}
	c.initParams(welcome)
	return c.sendWelcome(welcome)
}

// sendWelcome finishes login: AuthenticationOk, ParameterStatus, BackendKeyData,
// ReadyForQuery.
func (c *client) sendWelcome(welcome map[string]string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(&pgproto3.AuthenticationOk{})
	for k, v := range welcome {
		if cv, ok := c.sess.vals[k]; ok {
			v = cv
		}
		c.w.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	c.w.Send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: binary.BigEndian.AppendUint32(nil, c.secret)})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return c.w.Flush()
}

// newCancelKey returns a random BackendKeyData for a client.
func newCancelKey() (pid, secret uint32) {
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		panic(err)
	}
	return binary.BigEndian.Uint32(b[:]) & 0x7fffffff, binary.BigEndian.Uint32(b[4:])
}

// sendStartupError reports a login failure to the client.
func (c *client) sendStartupError(err error) {
	var af *authFailure
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if errors.As(err, &af) {
		c.w.Send(af.resp)
	} else {
		resp := asClientError(err)
		resp.Severity, resp.SeverityUnlocalized = "FATAL", "FATAL"
		c.w.Send(resp)
	}
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.w.Flush()
}

func remoteAddr(conn net.Conn) string {
	if a := conn.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "unix"
}
