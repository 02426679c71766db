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
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
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

// authenticate runs the client's authentication and returns the credentials the pool
// logs in to PostgreSQL with. db is nil for the admin console and for a database that
// does not exist: users are then looked up in the Userlist only (no auth_query) and no
// server credentials are derived. A user found nowhere goes through a mock exchange
// that fails as a wrong password does; with trust, such a user is refused.
func (c *client) authenticate(g *Config, db *Database) (*auth.Credentials, error) {
	if g.AuthType == authCert {
		return c.authenticateCert(g, db)
	}
	method, err := auth.ParseMethod(g.AuthType)
	if err != nil {
		return nil, fatalf(CodeInvalidAuthorization, "unsupported auth_type %q", g.AuthType)
	}
	secretText, known := g.Userlist[c.user]
	// noRow: auth_query found no such user. The client is not told (it fails as a
	// wrong password does); the log says it in PgBouncer's words.
	noRow := false
	if !known && db != nil && authUserOf(g, db) != "" && g.AuthQuery != "" {
		secretText, known, err = c.pl.authQuery(db, c.database, c.user)
		if err != nil {
			return nil, err
		}
		noRow = !known
	}
	if !known {
		if method == auth.Trust {
			c.pl.log.Info("client authentication failed", "client", c.id, "user", c.user, "remote", c.remote, "err", "trust: no such user")
			return nil, logAs(noRow, fatalf(CodeInvalidAuthorization, "\"trust\" authentication failed"))
		}
		// Run the exchange anyway so the client cannot tell unknown users apart.
		secretText = ""
	}
	secret := auth.ParseSecret(secretText)
	opts := auth.Options{MockSCRAMWork: c.pl.mockSCRAMWork(g), MockSCRAMIterations: c.pl.mockIterations(g, db)}
	if secret.Kind == auth.SecretNone {
		opts.MockSCRAM = c.pl.mockSCRAM(g, db, c.database, c.user)
	}
	cred, err := auth.AuthenticateWith(c.rd, c.w, method, c.user, secret, opts)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			if noRow {
				c.pl.log.Info("client authentication failed", "client", c.id, "user", c.user, "remote", c.remote, "err", err, "cause", reasonNoSuchUser)
			} else {
				c.pl.log.Info("client authentication failed", "client", c.id, "user", c.user, "remote", c.remote, "err", err)
			}
			return nil, logAs(noRow, &authFailure{resp: ae.ErrorResponse(), err: err})
		}
		return nil, err
	}
	if db != nil && db.Password != "" {
		cred = &auth.Credentials{Password: db.Password}
	}
	if db != nil && db.User != "" {
		if s, ok := g.Userlist[db.User]; ok && db.Password == "" {
			cred = auth.ParseSecret(s).Credentials()
		}
	}
	return cred, nil
}

// authCert is auth_type = cert: the client's TLS certificate authenticates it.
const authCert = "cert"

// errCertAuth is what a client refused by certificate authentication hears, in
// PgBouncer's words; the reason goes to the log only.
func errCertAuth() *Error {
	return fatalf(CodeInvalidAuthorization, "certificate authentication failed")
}

// authenticateCert is auth_type = cert: the client must have connected over TLS with
// a certificate that verified against client_tls_ca_file, whose Common Name is the
// user name; no password is asked. The user must be known (Userlist, auth_query),
// and its secret is what the pool logs in to PostgreSQL with.
func (c *client) authenticateCert(g *Config, db *Database) (*auth.Credentials, error) {
	reason := ""
	var cn string
	tc, _ := c.conn.(*tls.Conn)
	switch {
	case !c.tls || tc == nil:
		reason = "TLS connection required"
	default:
		cs := tc.ConnectionState()
		switch {
		case len(cs.PeerCertificates) == 0:
			reason = "TLS client certificate required"
		case len(cs.VerifiedChains) == 0:
			// Only a certificate checked against client_tls_ca_file proves anything.
			reason = "TLS client certificate not verified (client_tls_ca_file)"
		default:
			cn = cs.PeerCertificates[0].Subject.CommonName
			if cn != c.user {
				reason = "TLS certificate name mismatch"
			}
		}
	}
	var secretText string
	if reason == "" {
		var known bool
		var err error
		secretText, known = g.Userlist[c.user]
		if !known && db != nil && g.AuthUser != "" && g.AuthQuery != "" {
			if secretText, known, err = c.pl.authQuery(db, c.database, c.user); err != nil {
				return nil, err
			}
		}
		if !known {
			reason = "no such user"
		}
	}
	if reason != "" {
		c.pl.log.Info("client authentication failed", "client", c.id, "user", c.user, "remote", c.remote,
			"err", "cert: "+reason, "certificate_cn", cn)
		return nil, errCertAuth()
	}
	cred := auth.ParseSecret(secretText).Credentials()
	if db != nil && db.Password != "" {
		cred = &auth.Credentials{Password: db.Password}
	}
	if db != nil && db.User != "" {
		if s, ok := g.Userlist[db.User]; ok && db.Password == "" {
			cred = auth.ParseSecret(s).Credentials()
		}
	}
	return cred, nil
}

// mockChoice remembers, for one configuration, how the mock exchange of a user
// without a secret imitates a real one (see mockSCRAMWork and mockSCRAM).
type mockChoice struct {
	cfg  *Config
	work bool
	// scram of total auth_file users with a secret have a SCRAM verifier.
	scram, total int
	// iterations is the SCRAM iteration count most auth_file users show.
	iterations int

	mu sync.Mutex
	// enc is auth_query's PostgreSQL's password_encryption, by database: true for
	// scram-sha-256. last is the latest one learnt of any database (lastSet once one
	// is).
	enc           map[string]bool
	last, lastSet bool
}

// maxEncCache bounds mockChoice.enc: with a wildcard database, clients choose the
// names. A database past it asks its server at every auth_query.
const maxEncCache = 1024

// mockFor returns the mockChoice of g, made once per configuration (so a reload
// starts afresh).
func (pl *Pooler) mockFor(g *Config) *mockChoice {
	for {
		old := pl.mock.Load()
		if old != nil && old.cfg == g {
			return old
		}
		mc := newMockChoice(g)
		if g != pl.settings() {
			return mc // a configuration already replaced: not kept
		}
		if pl.mock.CompareAndSwap(old, mc) {
			return mc
		}
	}
}

// newMockChoice counts the auth_file's secrets of g.
func newMockChoice(g *Config) *mockChoice {
	mc := &mockChoice{cfg: g}
	plain, stored := 0, 0
	// The iteration counts real users' SCRAM exchanges show: a verifier's own, and the
	// default for a plain-text user where auth_type asks it for SCRAM.
	iterations := map[int]int{}
	for _, s := range g.Userlist {
		sec := auth.ParseSecret(s)
		switch sec.Kind {
		case auth.SecretPlain:
			plain++
			if g.AuthType == "scram-sha-256" {
				iterations[auth.DefaultSCRAMIterations]++
			}
		case auth.SecretSCRAM:
			stored++
			iterations[sec.SCRAM.Iterations]++
		case auth.SecretMD5:
		default:
			continue
		}
		mc.total++
	}
	mc.scram = stored
	// The most common count; on a tie the default, else the smallest.
	best, bestN := auth.DefaultSCRAMIterations, iterations[auth.DefaultSCRAMIterations]
	for n, k := range iterations {
		if k > bestN || k == bestN && best != auth.DefaultSCRAMIterations && n < best {
			best, bestN = n, k
		}
	}
	mc.iterations = best
	if g.AuthUser == "" || g.AuthQuery == "" {
		mc.work = plain >= stored
	}
	return mc
}

// mockSCRAMWork says whether the mock SCRAM exchange of an unknown user should cost
// what a plain-text user's costs (PBKDF2) or what a stored verifier's costs (none):
// like most users of the auth_file, so that timing does not tell most real users
// from unknown ones. With auth_query, users come from PostgreSQL, which stores
// verifiers. Decided once per configuration.
func (pl *Pooler) mockSCRAMWork(g *Config) bool { return pl.mockFor(g).work }

// authQueryApplies says whether users absent from the auth_file are looked up with
// auth_query on db (nil: a database that does not exist, for which any database's
// auth_user counts).
func authQueryApplies(g *Config, db *Database) bool {
	if g.AuthQuery == "" {
		return false
	}
	if db != nil || g.AuthUser != "" {
		return authUserOf(g, db) != ""
	}
	for _, d := range g.Databases {
		if d != nil && d.AuthUser != "" {
			return true
		}
	}
	return false
}

// mockSCRAM says whether user, who has no secret, is treated as having a SCRAM
// verifier (auth.Options.MockSCRAM) under md5 and plain: whether such a user is asked
// for SCRAM rather than md5, so that the method asked does not tell unknown users from
// real ones, whose method follows their secret.
//
// With auth_query, as PostgreSQL decides for a role it does not find: from
// password_encryption, which the auth connection asked the database's server (see
// authQuery), the type PostgreSQL stores new passwords with; for a database that does
// not exist, the latest one learnt of any database; before any, scram-sha-256,
// PostgreSQL's default. Otherwise by name: auth.MockPrefersSCRAM with the auth_file's
// share of SCRAM verifiers, so that an unknown name is asked SCRAM as often as a real
// user is, the same name always the same way.
func (pl *Pooler) mockSCRAM(g *Config, db *Database, database, user string) bool {
	mc := pl.mockFor(g)
	if authQueryApplies(g, db) {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		if enc, ok := mc.enc[database]; ok && db != nil {
			return enc
		}
		if mc.lastSet {
			return mc.last
		}
		return true
	}
	return auth.MockPrefersSCRAM(user, mc.scram, mc.total)
}

// mockIterations is the SCRAM iteration count of an unknown user's mock exchange: that
// of most auth_file users, or with auth_query the default, which every verifier
// PostgreSQL 15 makes has (later versions' scram_iterations is not asked).
func (pl *Pooler) mockIterations(g *Config, db *Database) int {
	if authQueryApplies(g, db) {
		return auth.DefaultSCRAMIterations
	}
	return pl.mockFor(g).iterations
}

// mockMethodMatters says whether g's auth_type asks users without a secret for a
// method, or does work, that depends on the secret they are treated as having.
func mockMethodMatters(g *Config) bool {
	m, err := auth.ParseMethod(g.AuthType)
	return err == nil && (m == auth.MD5 || m == auth.Plain)
}

// encKnown says whether database's password_encryption is known under g.
func (pl *Pooler) encKnown(g *Config, database string) bool {
	mc := pl.mockFor(g)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	_, ok := mc.enc[database]
	return ok
}

// learnEnc records database's password_encryption under g.
func (pl *Pooler) learnEnc(g *Config, database, value string) {
	scram := value != "md5"
	mc := pl.mockFor(g)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.enc == nil {
		mc.enc = make(map[string]bool)
	}
	if _, ok := mc.enc[database]; ok || len(mc.enc) < maxEncCache {
		mc.enc[database] = scram
	}
	mc.last, mc.lastSet = scram, true
}

// authFailure carries the ErrorResponse an authentication failure is reported with.
type authFailure struct {
	resp *pgproto3.ErrorResponse
	err  error
}

func (e *authFailure) Error() string { return e.err.Error() }
func (e *authFailure) Unwrap() error { return e.err }

// reasonNoSuchUser is PgBouncer's close reason for a user auth_query does not find.
const reasonNoSuchUser = "no such user"

// unknownUser is a login failure of a user auth_query did not find: the client
// hears err, the same as for a wrong password, while log_disconnections' line says
// "closing because: no such user", as PgBouncer's does. Only the log, which callers
// do not see, tells which users exist.
type unknownUser struct{ err error }

func (e *unknownUser) Error() string { return e.err.Error() }
func (e *unknownUser) Unwrap() error { return e.err }

// logAs wraps err as an unknownUser when noRow.
func logAs(noRow bool, err error) error {
	if noRow {
		return &unknownUser{err: err}
	}
	return err
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
