package pgpool

import (
	"strings"

	"github.com/poolsuite/poolsuite/protocol/postgres"
)

// session is what PostgreSQL would keep for one client between transactions, as far
// as pgpool carries it from one server connection to the next:
//   - vals: the client's values of the parameters PostgreSQL reports with
//     ParameterStatus (application_name, TimeZone, ...);
//   - sets: for every other parameter the client changed (at startup, with SET or
//     set_config), the statement that gives a server connection the client's value;
//     base holds the startup ones, which RESET goes back to, as in PostgreSQL;
//   - setOps: followed changes sent and not yet confirmed by their CommandComplete
//     (a change that fails is never applied);
//   - stmts: the client's protocol-level prepared statements, named and unnamed
//     (statements, session_stmts.go);
//   - pins: the state that cannot move (advisory locks, LISTEN, SQL PREPARE, WITH
//     HOLD cursors, temporary tables, SETs that cannot be followed, named statements
//     inside an untracked pipeline, an unnamed statement too long to copy) and so
//     keeps the client on its server connection, each with its reason, with pinCheck
//     set when some of it may have been released and the server must be asked.
//
// A session's methods decide and do no I/O; the client guards its session with c.mu.
// What is in flight on the client's server connection (c.inflight, prepState) belongs
// to the binding, not to the session.
type session struct {
	vals        map[string]string
	sets        map[string]string
	base        map[string]string
	startupSets map[string]string // startup values of unreported parameters, as sent
	setOps      []postgres.SetOp
	stmts       statements
	pins        pins
	pinCheck    bool
}

// maxPendingSetOps bounds the followed changes waiting for confirmation per client.
const maxPendingSetOps = 64

// init sets the session's parameters at login: the reported ones from welcome (what
// the server said at its login) overlaid with the client's startup parameters, and the
// unreported startup values (s.startupSets) as the client's own settings.
func (s *session) init(welcome, startup map[string]string) {
	s.vals = make(map[string]string, len(postgres.ReportedParams))
	for _, name := range postgres.ReportedParams {
		if v, ok := welcome[name]; ok {
			s.vals[name] = v
		}
	}
	for k, v := range startup {
		if name, ok := postgres.ReportedParam(k); ok {
			s.vals[name] = v
		}
	}
	s.base = make(map[string]string, len(s.startupSets))
	s.sets = make(map[string]string, len(s.startupSets))
	for k, v := range s.startupSets {
		s.base[k] = postgres.SetOp{Name: k, Value: v, Raw: true}.Statement()
		s.sets[k] = s.base[k]
	}
}

// reported records a ParameterStatus value for the client (its server connection
// reported it after the client changed it).
func (s *session) reported(name, value string) {
	if _, ok := postgres.ReportedParam(name); ok {
		s.vals[name] = value
	}
}

// replay returns the statements that bring a server connection in line with the
// session, given the connection's reported parameters and followed settings, or ""
// when it already is.
func (s *session) replay(params, sets map[string]string) string {
	var b strings.Builder
	for name, want := range s.vals {
		if have, ok := params[name]; ok && have == want {
			continue
		}
		if name == "client_encoding" && strings.EqualFold(params[name], want) {
			continue
		}
		b.WriteString("SET ")
		b.WriteString(name)
		b.WriteString(" = ")
		b.WriteString(postgres.QuoteLiteral(want))
		b.WriteString(";")
	}
	for name, want := range s.sets {
		if sets[name] != want {
			b.WriteString(want + ";")
		}
	}
	for name := range sets {
		if _, ok := s.sets[name]; !ok {
			b.WriteString("SET " + name + " TO DEFAULT;")
		}
	}
	return b.String()
}

// followedSets returns a copy of the session's followed settings, as a server
// connection holds them once replay's statements have run.
func (s *session) followedSets() map[string]string {
	m := make(map[string]string, len(s.sets))
	for k, v := range s.sets {
		m[k] = v
	}
	return m
}

// queue records a followed change sent to the server, to be applied when confirmed.
func (s *session) queue(op postgres.SetOp) {
	if len(s.setOps) < maxPendingSetOps {
		s.setOps = append(s.setOps, op)
	}
}

// confirm applies the oldest queued change if tag (a CommandComplete tag) confirms
// it, and returns it so that the server connection's record follows too.
func (s *session) confirm(tag string) (postgres.SetOp, bool) {
	if len(s.setOps) == 0 || s.setOps[0].Tag != tag {
		return postgres.SetOp{}, false
	}
	op := s.setOps[0]
	s.setOps = s.setOps[1:]
	switch {
	case op.All:
		clear(s.sets)
		for k, v := range s.base {
			s.sets[k] = v
		}
	case op.Value == postgres.DefaultValue && !op.Raw:
		if v, ok := s.base[op.Name]; ok {
			s.sets[op.Name] = v
		} else {
			delete(s.sets, op.Name)
		}
	default:
		s.sets[op.Name] = op.Statement()
	}
	return op, true
}

// waitingSets reports how many followed changes wait for confirmation.
func (s *session) waitingSets() int { return len(s.setOps) }

// unconfirmed forgets the changes still waiting when every request was answered:
// PostgreSQL did not confirm them, so they failed.
func (s *session) unconfirmed() { s.setOps = s.setOps[:0] }

// applyToServer records a confirmed change on a server connection's followed
// settings (a RESET there goes back to the server's own default).
func applyToServer(sets map[string]string, op postgres.SetOp) {
	switch {
	case op.All:
		clear(sets)
	case op.Value == postgres.DefaultValue && !op.Raw:
		delete(sets, op.Name)
	default:
		sets[op.Name] = op.Statement()
	}
}

// note records what a statement sent to the server does to state that pins (and
// whether it is a SET pgpool cannot follow), and returns the pins it had before.
func (s *session) note(ch postgres.StateChange, unfollowedSet bool) (was pins) {
	was = s.pins
	s.pins = s.pins.add(pins(ch.Takes))
	if unfollowedSet {
		s.pins = s.pins.add(pinSet)
	}
	if ch.Unset {
		s.pins = s.pins.clear(pinSet)
	}
	if ch.Recheck && s.pins.has(serverPins) {
		s.pinCheck = true
	}
	return was
}

// pin adds a pin of pgpool's own reason (pinPipeline), and returns the pins before.
func (s *session) pin(p pins) (was pins) {
	was = s.pins
	s.pins = s.pins.add(p)
	return was
}

// serverLost drops the pins of state that lived only in a server session that is
// gone (what pinCheckQuery counts, and a SET pgpool could not follow), and returns the
// pins before; pgpool's own reasons, which concern its statement tracking, stay.
func (s *session) serverLost() (was pins) {
	was = s.pins
	s.pins = s.pins.clear(serverPins | pinSet)
	s.pinCheck = false
	return was
}

// checked applies the server's report of the state that remains, and returns the
// pins before.
func (s *session) checked(remain pins) (was pins) {
	was = s.pins
	s.pins = s.pins.checked(remain)
	return was
}
