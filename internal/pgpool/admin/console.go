package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// CompatVersion is the PgBouncer release whose console pgpool imitates.
const CompatVersion = "1.18.0"

// ConsoleDatabase is the name the console reports itself under in SHOW POOLS, SHOW
// DATABASES and SHOW STATS, as PgBouncer does, whichever of its names the client
// connected to. Its pool's user is named the same.
const ConsoleDatabase = "pgbouncer"

// AltConsoleDatabase is the console's other name.
const AltConsoleDatabase = "pgpool"

// IsDatabase reports whether name is one of the console's database names.
func IsDatabase(name string) bool { return name == ConsoleDatabase || name == AltConsoleDatabase }

// Welcome are the ParameterStatus values sent at login, PgBouncer's set;
// server_version says "bouncer" because clients test for it.
var Welcome = map[string]string{
	"server_version":              CompatVersion + "/bouncer",
	"client_encoding":             "UTF8",
	"server_encoding":             "UTF8",
	"DateStyle":                   "ISO",
	"TimeZone":                    "GMT",
	"standard_conforming_strings": "on",
	"is_superuser":                "on",
}

// SQLSTATE codes of the console's errors.
const (
	CodeProtocolViolation   = "08P01"
	CodeFeatureNotSupported = "0A000"
	CodeAdminShutdown       = "57P01"
)

// Error is an error the console answers a statement with. PgBouncer reports nearly
// all of them as ERROR with SQLSTATE 08P01 and keeps the connection; a Fatal one
// closes it.
type Error struct {
	Fatal   bool
	Code    string
	Message string
	Detail  string
}

func (e *Error) Error() string { return fmt.Sprintf("pgpool: admin: %s (%s)", e.Message, e.Code) }

func consoleErr(format string, args ...any) *Error {
	return &Error{Code: CodeProtocolViolation, Message: fmt.Sprintf(format, args...)}
}

// errAccess is PgBouncer's answer to a stats user running a command that changes
// something.
func errAccess() *Error { return consoleErr("admin access needed") }

// syntaxError is PgBouncer's answer to a statement it does not know.
func syntaxError(q string) *Error {
	return consoleErr("invalid command '%s', use SHOW HELP;", q)
}

// ErrExit ends the console connection without an answer (SHUTDOWN).
var ErrExit = errors.New("pgpool: admin console session ended")

// Errors a Control returns.
var (
	// ErrShuttingDown: the pooler shuts down while a command waits.
	ErrShuttingDown = errors.New("pgpool: shutting down")
	// ErrPauseCanceled: RESUME ran while PAUSE waited.
	ErrPauseCanceled = errors.New("pgpool: PAUSE canceled by RESUME")
	// ErrNoReload: the pooler has nothing to reload from.
	ErrNoReload = errors.New("pgpool: runs without a configuration file")
)

// SetKept is the error Control.Set returns when the value was stored but the
// running configuration stays as it was until a later SET completes it (a TLS key
// set before its certificate).
type SetKept struct{ Err error }

func (k *SetKept) Error() string { return k.Err.Error() }

// Unwrap returns the reason the value was not applied.
func (k *SetKept) Unwrap() error { return k.Err }

// Control is what the console asks of the pooler. Database arguments are never
// the console's own; "" stands for every database where a method says so.
type Control interface {
	// Snapshot returns the pooler's state now.
	Snapshot() *Snapshot
	// KnownDatabase reports whether clients may connect to the database: it has an
	// entry, the "*" entry covers it, or it has a pool.
	KnownDatabase(name string) bool
	// Paused reports whether the database ("" = the whole pooler) is paused.
	Paused(database string) bool
	// SetPaused pauses or resumes the database ("" = the whole pooler).
	SetPaused(database string, paused bool)
	// WaitReleased closes idle server connections of the database ("" = all) and
	// waits until it has none: ErrPauseCanceled if the pause is lifted meanwhile,
	// ErrShuttingDown if the pooler shuts down.
	WaitReleased(database string) error
	// Suspend is SUSPEND: no socket's data is processed any more until Unsuspend;
	// it returns once what was under way has been flushed (ErrShuttingDown if the
	// pooler shuts down meanwhile).
	Suspend() error
	// Suspended reports whether SUSPEND is in force.
	Suspended() bool
	// Unsuspend lifts SUSPEND; false if it was not in force.
	Unsuspend() bool
	// Kill closes every client and server connection of the database.
	Kill(database string)
	// Reconnect closes the database's ("" = all) server connections, idle ones now
	// and busy ones when released.
	Reconnect(database string)
	// WaitClose waits until the server connections Reconnect or a change of server
	// settings asked to close are closed (ErrShuttingDown if the pooler shuts down).
	WaitClose(database string) error
	// SetDisabled refuses or again admits new clients of the database.
	SetDisabled(database string, disabled bool)
	// Reload re-reads the configuration (ErrNoReload when there is none to read).
	Reload() error
	// Shutdown shuts the pooler down; it must not wait for the console's client.
	Shutdown()
	// Set changes one setting of SHOW CONFIG, named in any case, for the caller;
	// its error's text says why not, or it is a *SetKept.
	Set(who Caller, name, value string) error
}

// Caller is who runs a statement, with the rights its user has now.
type Caller struct {
	ID   uint64
	User string
	// Stats: the user may run SHOW; Admin: every command.
	Stats, Admin bool
	// Owner: pgpool's own OS user over the unix socket, who may also change the
	// settings that decide who may log in.
	Owner bool
}

// Reply is a console statement's answer: an optional notice, an optional result
// set, then CommandComplete with Tag.
type Reply struct {
	Notice *pgproto3.NoticeResponse
	Result *Result
	Tag    string
}

// Console runs console statements against a pooler.
type Console struct {
	Control Control
	Log     *slog.Logger // nil: slog.Default()
}

// statement is one statement being run.
type statement struct {
	con   *Console
	who   Caller
	cmd   Command
	query string
}

type handler struct {
	run func(st *statement) (*Reply, error)
	// admin says the command needs admin_users; stats_users may run the others.
	admin bool
}

// commands maps the verbs to their handlers. SHOW and SELECT check access per
// subcommand.
var commands = map[string]handler{
	"show":       {run: (*statement).show},
	"select":     {run: (*statement).show},
	"set":        {run: (*statement).set},
	"pause":      {run: (*statement).pause, admin: true},
	"resume":     {run: (*statement).resume, admin: true},
	"kill":       {run: (*statement).kill, admin: true},
	"reconnect":  {run: (*statement).reconnect, admin: true},
	"disable":    {run: (*statement).disable, admin: true},
	"enable":     {run: (*statement).enable, admin: true},
	"reload":     {run: (*statement).reload, admin: true},
	"shutdown":   {run: (*statement).shutdown, admin: true},
	"suspend":    {run: (*statement).suspend, admin: true},
	"wait_close": {run: (*statement).waitClose, admin: true},
}

func (con *Console) log() *slog.Logger {
	if con.Log != nil {
		return con.Log
	}
	return slog.Default()
}

// Exec parses and runs one console statement. Its error is an *Error to send, or
// ErrExit.
func (con *Console) Exec(who Caller, q string) (*Reply, error) {
	cmd, err := Parse(q)
	if errors.Is(err, ErrArgs) {
		return nil, consoleErr("bad arguments")
	}
	if err != nil {
		return nil, syntaxError(q)
	}
	h, ok := commands[cmd.Verb]
	if !ok {
		return nil, syntaxError(q)
	}
	if !who.Stats || (h.admin && !who.Admin) {
		// Also when admin_users or stats_users changed since login.
		return nil, errAccess()
	}
	if h.admin {
		con.log().Info("admin command", "client", who.ID, "user", who.User, "command", q)
	}
	return h.run(&statement{con: con, who: who, cmd: cmd, query: q})
}

func done(tag string) (*Reply, error) { return &Reply{Tag: tag}, nil }

// requireNoArg answers a syntax error when a command that takes no argument got one.
func (st *statement) requireNoArg() error {
	if st.cmd.Arg != "" {
		return syntaxError(st.query)
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

// help is the Detail of SHOW HELP's notice.
const help = "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION|STATE\n" +
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

// show runs SHOW (or SELECT, its synonym) and its subcommand.
func (st *statement) show() (*Reply, error) {
	name := strings.ToLower(st.cmd.Arg)
	if v, ok := fakeParams[name]; ok {
		r := newResult(textCol(name))
		r.add(v)
		return &Reply{Result: r, Tag: "SHOW"}, nil
	}
	switch name {
	case "help":
		return &Reply{Notice: notice("Console usage", help), Tag: "SHOW"}, nil
	case "sockets", "active_sockets":
		if !st.who.Admin {
			return nil, errAccess()
		}
	case "fds":
		// PgBouncer's SHOW FDS serves its online restart (-R), which pgpool does not have.
		if !st.who.Admin {
			return nil, errAccess()
		}
		return nil, &Error{Code: CodeFeatureNotSupported, Message: "SHOW FDS is not supported by pgpool: it serves PgBouncer's online restart (-R), which pgpool does not have"}
	}
	if name == "config" {
		return &Reply{Result: showConfig(st.con.Control.Snapshot(), st.who.Owner), Tag: "SHOW"}, nil
	}
	f, ok := showCommands[name]
	if !ok {
		return nil, syntaxError(st.query)
	}
	return &Reply{Result: f(st.con.Control.Snapshot()), Tag: "SHOW"}, nil
}

// set is SET key = value: the session parameters clients set at connect are
// acknowledged and ignored, as PgBouncer does; the settings of SHOW CONFIG marked
// changeable take effect until the next RELOAD reads the file again.
func (st *statement) set() (*Reply, error) {
	key := strings.ToLower(st.cmd.Arg)
	if _, ok := fakeParams[key]; ok {
		return &Reply{Notice: notice("SET ignored", ""), Tag: "SET"}, nil
	}
	if !st.who.Admin {
		return nil, errAccess()
	}
	val := st.cmd.Val
	tag := "SET " + key + "=" + val
	err := st.con.Control.Set(st.who, st.cmd.Arg, val)
	var kept *SetKept
	if errors.As(err, &kept) {
		st.con.log().Warn("admin SET stored; TLS settings not applied yet", "client", st.who.ID, "user", st.who.User, "key", key, "value", val, "err", kept.Err)
		return &Reply{Notice: notice("TLS settings could not be applied, still using old configuration", kept.Err.Error()), Tag: tag}, nil
	}
	if err != nil {
		e := consoleErr("SET failed")
		e.Detail = err.Error()
		return nil, e
	}
	st.con.log().Info("admin SET", "client", st.who.ID, "user", st.who.User, "key", key, "value", val)
	return done(tag)
}

// target checks the database argument of a command that changes a database. what
// names the command in PgBouncer's error text ("pause", "kill", ...).
func (st *statement) target(name, what string) error {
	if IsDatabase(name) {
		return consoleErr("cannot %s admin db: %s", what, name)
	}
	if !st.con.Control.KnownDatabase(name) {
		return consoleErr("no such database: %s", name)
	}
	return nil
}

// errShuttingDown ends a console command that waits while the pooler shuts down.
func errShuttingDown() *Error {
	return &Error{Fatal: true, Code: CodeAdminShutdown, Message: "pgpool is shutting down"}
}

// waitError turns a Control's error of a wait into the console's answer.
func waitError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrShuttingDown):
		return errShuttingDown()
	case errors.Is(err, ErrPauseCanceled):
		return consoleErr("PAUSE canceled by RESUME")
	}
	return consoleErr("%s", err.Error())
}

// pause is PAUSE [db]: no client gets a server connection any more, idle server
// connections are closed, and the command returns once every server connection of the
// pools concerned has been released and closed.
func (st *statement) pause() (*Reply, error) {
	ctl := st.con.Control
	if ctl.Paused("") || ctl.Suspended() {
		return nil, consoleErr("already suspended/paused")
	}
	db := st.cmd.Arg
	if db != "" {
		if err := st.target(db, "pause"); err != nil {
			return nil, err
		}
	}
	ctl.SetPaused(db, true)
	if err := waitError(ctl.WaitReleased(db)); err != nil {
		return nil, err
	}
	return done("PAUSE")
}

// resume is RESUME [db]: lift PAUSE or KILL.
func (st *statement) resume() (*Reply, error) {
	ctl := st.con.Control
	db := st.cmd.Arg
	if db == "" && ctl.Unsuspend() {
		return done("RESUME")
	}
	if db == "" {
		if !ctl.Paused("") {
			return nil, consoleErr("pooler is not paused/suspended")
		}
	} else {
		if !ctl.KnownDatabase(db) {
			return nil, consoleErr("no such database: %s", db)
		}
		if !ctl.Paused(db) {
			return nil, consoleErr("database %s is not paused", db)
		}
	}
	ctl.SetPaused(db, false)
	return done("RESUME")
}

// kill is KILL db: every client and server connection of the database is closed at
// once and the database stays paused until RESUME.
func (st *statement) kill() (*Reply, error) {
	ctl := st.con.Control
	if ctl.Paused("") || ctl.Suspended() {
		return nil, consoleErr("already suspended/paused")
	}
	db := st.cmd.Arg
	if db == "" {
		return nil, consoleErr("a database is required")
	}
	if err := st.target(db, "kill"); err != nil {
		return nil, err
	}
	ctl.SetPaused(db, true)
	ctl.Kill(db)
	return done("KILL")
}

// reconnect is RECONNECT [db]: every server connection is closed, idle ones now and
// busy ones when released, so new ones pick up changed settings.
func (st *statement) reconnect() (*Reply, error) {
	db := st.cmd.Arg
	if db != "" {
		if err := st.target(db, "reconnect"); err != nil {
			return nil, err
		}
	}
	st.con.Control.Reconnect(db)
	return done("RECONNECT")
}

// waitClose is WAIT_CLOSE [db]: wait until the server connections RECONNECT or a
// reload of server settings asked to close are closed.
func (st *statement) waitClose() (*Reply, error) {
	db := st.cmd.Arg
	if db != "" {
		if IsDatabase(db) {
			return nil, consoleErr("cannot wait in admin db: %s", db)
		}
		if !st.con.Control.KnownDatabase(db) {
			return nil, consoleErr("no such database: %s", db)
		}
	}
	if err := waitError(st.con.Control.WaitClose(db)); err != nil {
		return nil, err
	}
	return done("WAIT_CLOSE")
}

// disable is DISABLE db: new clients of the database are refused; connected ones go
// on.
func (st *statement) disable() (*Reply, error) {
	db := st.cmd.Arg
	if db == "" {
		return nil, consoleErr("a database is required")
	}
	if err := st.target(db, "disable"); err != nil {
		return nil, err
	}
	st.con.Control.SetDisabled(db, true)
	return done("DISABLE")
}

// enable is ENABLE db: undo DISABLE.
func (st *statement) enable() (*Reply, error) {
	db := st.cmd.Arg
	if db == "" {
		return nil, consoleErr("a database is required")
	}
	if err := st.target(db, "disable"); err != nil { // PgBouncer's wording
		return nil, err
	}
	st.con.Control.SetDisabled(db, false)
	return done("ENABLE")
}

// reload is RELOAD.
func (st *statement) reload() (*Reply, error) {
	if err := st.requireNoArg(); err != nil {
		return nil, err
	}
	err := st.con.Control.Reload()
	if errors.Is(err, ErrNoReload) {
		return nil, consoleErr("RELOAD is not available: pgpool runs without a configuration file")
	}
	if err != nil {
		st.con.log().Warn("RELOAD failed", "client", st.who.ID, "user", st.who.User, "err", err)
		e := consoleErr("RELOAD failed")
		e.Detail = err.Error()
		return nil, e
	}
	return done("RELOAD")
}

// shutdown is SHUTDOWN. Like PgBouncer, it sends no answer; the connection closes.
func (st *statement) shutdown() (*Reply, error) {
	if err := st.requireNoArg(); err != nil {
		return nil, err
	}
	st.con.Control.Shutdown()
	return nil, ErrExit
}

// suspend is SUSPEND: what is under way is flushed, then no socket's data is
// processed (new clients wait) until RESUME; the console goes on.
func (st *statement) suspend() (*Reply, error) {
	if err := st.requireNoArg(); err != nil {
		return nil, err
	}
	ctl := st.con.Control
	if ctl.Paused("") || ctl.Suspended() {
		return nil, consoleErr("already suspended/paused")
	}
	if err := waitError(ctl.Suspend()); err != nil {
		return nil, err
	}
	return done("SUSPEND")
}
