package pgpool

import (
	"bytes"
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// The admin console is the virtual database "pgbouncer" (or "pgpool"). It speaks
// PgBouncer 1.18's console dialect: the same commands, column names, column types and
// error texts, so dashboards and exporters written for PgBouncer read pgpool
// unchanged. Users in admin_users may run every command, users in stats_users only
// SHOW. Only the simple query protocol is served.

// compatVersion is the PgBouncer release whose console pgpool imitates.
const compatVersion = "1.18.0"

// adminDatabase is the name the console reports itself under in SHOW POOLS, SHOW
// DATABASES and SHOW STATS, as PgBouncer does, whichever of adminDatabases the client
// connected to. Its pool's user is named the same.
const adminDatabase = "pgbouncer"

// adminWelcome are the ParameterStatus values sent at login, PgBouncer's set;
// server_version says "bouncer" because clients test for it.
var adminWelcome = map[string]string{
	"server_version":              compatVersion + "/bouncer",
	"client_encoding":             "UTF8",
	"server_encoding":             "UTF8",
	"DateStyle":                   "ISO",
	"TimeZone":                    "GMT",
	"standard_conforming_strings": "on",
	"is_superuser":                "on",
}

// errAdminExit ends an admin connection without a message (SHUTDOWN).
var errAdminExit = errors.New("pgpool: admin console session ended")

// adminErr is an error of the console. PgBouncer reports all of them as ERROR with
// SQLSTATE 08P01 and keeps the connection.
func adminErr(format string, args ...any) *Error {
	return errorf(CodeProtocolViolation, format, args...)
}

// errAdminAccess is PgBouncer's answer to a stats user running a command that
// changes something.
func errAdminAccess() *Error { return adminErr("admin access needed") }

// ownAdminUser is the user name with which pgpool's own OS user logs in to the admin
// console over the unix socket without a password.
const ownAdminUser = "pgbouncer"

// isAdmin reports whether the client may use every admin console command.
func (c *client) isAdmin(g *Config) bool { return c.ownUser || g.isAdmin(c.user) }

// isStats reports whether the client may run the admin console's SHOW commands.
func (c *client) isStats(g *Config) bool { return c.ownUser || g.isStats(c.user) }

// loginAdmin authenticates a client of the admin console: like any client, against the
// Userlist, and then it must be in admin_users or stats_users.
func (c *client) loginAdmin(g *Config) error {
	if c.user == ownAdminUser && sameOSUser(c.conn) {
		// As PgBouncer: the OS user pgpool runs as is admin over the unix socket.
		c.ownUser, c.admin = true, true
		c.pl.log.Info("admin console login from pgpool's own OS user", "client", c.id, "user", c.user, "remote", c.remote)
		return c.sendWelcome(adminWelcome)
	}
	if _, err := c.authenticate(g, nil); err != nil {
		return err
	}
	if !c.isStats(g) {
		c.pl.log.Info("admin console login refused", "client", c.id, "user", c.user, "remote", c.remote)
		return fatalf(CodeInvalidAuthorization, "not allowed")
	}
	c.admin = true
	c.pl.log.Info("admin console login", "client", c.id, "user", c.user, "remote", c.remote, "admin", c.isAdmin(g))
	return c.sendWelcome(adminWelcome)
}

// runAdmin serves the admin console until the client leaves.
func (c *client) runAdmin() error {
	c.setState(clientActive)
	for {
		typ, msg, err := c.rd.NextPart()
		if err != nil {
			return c.readError(err)
		}
		if c.rd.Remaining() > 0 {
			// No console command is this long: it is not read whole.
			return c.adminBadPacket(adminErr("admin console command too long"))
		}
		switch typ {
		case wire.Terminate:
			return nil
		case wire.Query:
			err = c.adminQuery(msg)
		case wire.Parse, wire.Bind, wire.Execute:
			err = c.adminBadPacket(adminErr("extended query protocol not supported by admin console"))
		default:
			err = c.adminBadPacket(adminErr("unsupported packet type for admin console: %q", typ))
		}
		if errors.Is(err, errAdminExit) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// adminBadPacket reports a message the console does not serve and closes the
// connection, as PgBouncer does.
func (c *client) adminBadPacket(e *Error) error {
	c.sendErrorReady(e, 'I')
	fatal := fatalf(CodeProtocolViolation, "bad packet")
	c.sendError(fatal)
	return fatal
}

// adminHandler runs one console command.
type adminHandler struct {
	run func(c *client, cmd adminCommand) error
	// admin says the command needs admin_users; stats_users may run the others.
	admin bool
}

// adminCommands maps the verbs to their handlers. SHOW and SELECT check access per
// subcommand.
var adminCommands = map[string]adminHandler{
	"show":       {run: (*client).adminShow},
	"select":     {run: (*client).adminShow},
	"set":        {run: (*client).adminSet},
	"pause":      {run: (*client).adminPause, admin: true},
	"resume":     {run: (*client).adminResume, admin: true},
	"kill":       {run: (*client).adminKill, admin: true},
	"reconnect":  {run: (*client).adminReconnect, admin: true},
	"disable":    {run: (*client).adminDisable, admin: true},
	"enable":     {run: (*client).adminEnable, admin: true},
	"reload":     {run: (*client).adminReload, admin: true},
	"shutdown":   {run: (*client).adminShutdown, admin: true},
	"suspend":    {run: (*client).adminSuspend, admin: true},
	"wait_close": {run: (*client).adminWaitClose, admin: true},
}

// adminQuery runs one Query message.
func (c *client) adminQuery(msg []byte) error {
	st := &c.pl.admin.console
	st.received.Add(int64(len(msg)))
	st.queryCount.Add(1)
	st.xactCount.Add(1)
	body := wire.Body(msg)
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	q := string(body)
	err := c.adminExec(q)
	var pe *Error
	if errors.As(err, &pe) {
		if pe.Fatal() {
			c.sendError(pe)
			return pe
		}
		c.pl.log.Debug("admin console error", "client", c.id, "user", c.user, "query", q, "err", pe.Message)
		return c.sendErrorReady(pe, 'I')
	}
	return err
}

// adminExec parses and runs a console statement.
func (c *client) adminExec(q string) error {
	cmd, err := parseAdminCommand(q)
	if errors.Is(err, errAdminArgs) {
		return adminErr("bad arguments")
	}
	if err != nil {
		return adminSyntaxError(q)
	}
	h, ok := adminCommands[cmd.verb]
	if !ok {
		return adminSyntaxError(q)
	}
	g := c.pl.settings()
	if !c.isStats(g) || (h.admin && !c.isAdmin(g)) {
		// Also when admin_users or stats_users changed since login.
		return errAdminAccess()
	}
	if h.admin {
		c.pl.log.Info("admin command", "client", c.id, "user", c.user, "command", q)
	}
	return h.run(c, withQuery(cmd, q))
}

// withQuery keeps the statement's text for error messages.
func withQuery(cmd adminCommand, q string) adminCommand {
	cmd.query = q
	return cmd
}

// adminSyntaxError is PgBouncer's answer to a statement it does not know.
func adminSyntaxError(q string) *Error {
	return adminErr("invalid command '%s', use SHOW HELP;", q)
}

// requireNoArg answers a syntax error when a command that takes no argument got one.
func requireNoArg(cmd adminCommand) error {
	if cmd.arg != "" {
		return adminSyntaxError(cmd.query)
	}
	return nil
}

// notice returns a NoticeResponse like PgBouncer's.
func notice(msg, detail string) *pgproto3.NoticeResponse {
	return &pgproto3.NoticeResponse{
		Severity:            "NOTICE",
		SeverityUnlocalized: "NOTICE",
		Code:                "00000",
		Message:             msg,
		Detail:              detail,
	}
}

// adminHelp is the Detail of SHOW HELP's notice.
var adminHelp = "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION|STATE\n" +
	"\tSHOW LISTS|MEM\n" +
	"\tSHOW DNS_HOSTS|DNS_ZONES\n" +
	"\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n" +
	"\tSET key = arg\n" +
	"\tRELOAD\n" +
	"\tPAUSE [<db>]\n" +
	"\tRESUME [<db>]\n" +
	"\tDISABLE <db>\n" +
	"\tENABLE <db>\n" +
	"\tRECONNECT [<db>]\n" +
	"\tKILL <db>\n" +
	"\tSHUTDOWN\n" +
	"\tWAIT_CLOSE [<db>]"

func (c *client) adminShowHelp() error {
	return c.sendNoticeComplete(notice("Console usage", adminHelp), "SHOW")
}
