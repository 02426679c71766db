package pgpool

import (
	"crypto/tls"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

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
