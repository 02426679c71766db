package pgpool

import (
	"bytes"
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// The admin console is the virtual database "pgbouncer" (or "pgpool"). Package admin
// parses its statements, builds their results from a Snapshot and runs its commands
// through consoleControl; this file logs its clients in, reads their Query messages
// and writes the answers. Users in admin_users may run every command, users in
// stats_users only SHOW. Only the simple query protocol is served.

// compatVersion is the PgBouncer release whose console pgpool imitates.
const compatVersion = admin.CompatVersion

// adminErr is an error of the console. PgBouncer reports all of them as ERROR with
// SQLSTATE 08P01 and keeps the connection.
func adminErr(format string, args ...any) *Error {
	return errorf(CodeProtocolViolation, format, args...)
}

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
		return c.sendWelcome(admin.Welcome)
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
	return c.sendWelcome(admin.Welcome)
}

// runAdmin serves the admin console until the client leaves.
func (c *client) runAdmin() error {
	c.bound()
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
		if errors.Is(err, admin.ErrExit) {
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
	g := c.pl.settings()
	if cmd, err := admin.Parse(q); err == nil && c.isAdmin(g) {
		if isShowFDS(cmd) {
			return c.showFDs()
		}
		c.pl.handoverCommand(c, cmd)
	}
	con := admin.Console{Control: consoleControl{c.pl}, Log: c.pl.log}
	reply, err := con.Exec(admin.Caller{ID: c.id, User: c.user, Stats: c.isStats(g), Admin: c.isAdmin(g), Owner: c.ownUser}, q)
	if err == nil {
		return c.sendReply(reply)
	}
	var ae *admin.Error
	if !errors.As(err, &ae) {
		return err
	}
	pe := &Error{Severity: "ERROR", Code: ae.Code, Message: ae.Message, Detail: ae.Detail}
	if ae.Fatal {
		pe.Severity = "FATAL"
		c.sendError(pe)
		return pe
	}
	c.pl.log.Debug("admin console error", "client", c.id, "user", c.user, "query", q, "err", pe.Message)
	return c.sendErrorReady(pe, 'I')
}

// sendReply writes a console answer: its notice, its result set, CommandComplete
// and ReadyForQuery.
func (c *client) sendReply(r *admin.Reply) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if r.Notice != nil {
		c.w.Send(r.Notice)
	}
	if r.Result != nil {
		c.w.Send(r.Result.RowDescription())
		for _, row := range r.Result.Rows {
			c.w.Send(&pgproto3.DataRow{Values: row})
		}
	}
	c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte(r.Tag)})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	c.pl.admin.console.sent.Add(int64(c.w.Buffered()))
	return c.w.Flush()
}
