package pgpool

import "bytes"

// statements is the part of a client's session that holds its protocol-level
// prepared statements, as PostgreSQL would keep them for the client between
// transactions: the named ones, under the client's names, and the unnamed one, the
// client's last unnamed Parse. Like the rest of the session its methods decide and do
// no I/O (the client guards it with c.mu); what a server connection holds is passed
// in (an unnamedHolder, the connection's statement cache lookups), and what must be
// sent there is returned.
//
// Everything here is the client's and goes with it (an online restart hands it over
// whole: named, seq, and the unnamed statement with unnamedSeq, unnamedAs and
// unnamedPinned); what a server connection holds is not in it. The response
// tracking that sends and matches the messages (c.inflight, prepState) belongs to the
// client's binding, not here.
type statements struct {
	// named: the client's named statements by the client's name; nil until the
	// client's statements are tracked (max_prepared_statements > 0).
	named map[string]*preparedStmt
	seq   uint64 // named statements defined so far (preparedStmt.seq)

	// unnamed is the client's last unnamed Parse as things stand after what was sent;
	// nil: the client has none, or (unnamedPinned) it is too long to copy and only the
	// client's server connection has it. unnamedSeq counts its changes; a server
	// connection holds the client's unnamed statement when its unnamedHolder names the
	// client and unnamedSeq. After an undo the statement gets a fresh unnamedSeq, so
	// that no server connection matches it by mistake; unnamedAs is then the number of
	// the earlier state it equals, so that undoing the change that led to that state
	// (PostgreSQL skipped several) still applies.
	unnamed       []byte
	unnamedSeq    uint64
	unnamedAs     uint64
	unnamedPinned bool
}

// maxUnnamedCopy bounds the copy a client keeps of its last unnamed Parse. A longer
// one is not copied: the client is pinned to the server connection that has it
// (pinUnnamed) until its unnamed statement changes again.
const maxUnnamedCopy = 1 << 20

// preparedStmt is one of a client's named statements.
type preparedStmt struct {
	name  string // the client's name
	srv   string // the server-side name
	parse []byte // the Parse message under srv, ready to send
	seq   uint64 // order of definition, for DISCARD ALL seen later
	gen   uint64 // the pool's generation of srv when the client prepared it
}

// unnamedHolder says whose unnamed statement a server connection holds: the client's
// id and the client's unnamedSeq then; zero when unknown.
type unnamedHolder struct{ client, seq uint64 }

// unnamedChange is what one request sent to a server connection did to the unnamed
// statements: the client's own (own: its Parse, Query or Close) or only the server
// connection's (pgpool sent the client's Parse again). It keeps the states before,
// put back if PostgreSQL skips the request; seq is the client's unnamedSeq after it,
// prevSeq the one before.
type unnamedChange struct {
	own        bool
	prevParse  []byte
	prevPinned bool
	prevHolder unnamedHolder
	seq        uint64
	prevSeq    uint64
}

// unnamedNeed is what a Bind or Describe of the unnamed statement needs on a server
// connection.
type unnamedNeed uint8

const (
	unnamedHeld    unnamedNeed = iota // the connection holds the client's unnamed statement
	unnamedResend                     // send the client's last unnamed Parse first
	unnamedMissing                    // the client has none: PostgreSQL's 26000
)

// init starts tracking the client's named statements.
func (st *statements) init() { st.named = make(map[string]*preparedStmt) }

// get returns the client's named statement name, or nil.
func (st *statements) get(name []byte) *preparedStmt { return st.named[string(name)] }

// define records a named statement from its Parse body after the name (rest), under
// the server-side name srv, prepared in the pool's generation gen of srv.
func (st *statements) define(name, rest []byte, srv string, gen uint64) *preparedStmt {
	st.seq++
	ps := &preparedStmt{name: string(name), srv: srv, seq: st.seq, gen: gen}
	ps.parse = appendMessage(nil, 'P', []byte(ps.srv), nul, rest)
	st.named[ps.name] = ps
	return ps
}

// forget drops a named statement if its name still means ps (a Close, or a Parse
// PostgreSQL refused or skipped).
func (st *statements) forget(ps *preparedStmt) {
	if ps != nil && st.named[ps.name] == ps {
		delete(st.named, ps.name)
	}
}

// restore puts back a named statement whose removal PostgreSQL skipped or refused,
// unless its name was taken meanwhile.
func (st *statements) restore(ps *preparedStmt) {
	if _, ok := st.named[ps.name]; !ok {
		st.named[ps.name] = ps
	}
}

// deallocate forgets what a SQL DEALLOCATE name (or DEALLOCATE ALL, all) of the
// client's own statements forgets, and returns it, for restore if PostgreSQL would
// have refused the command. ok is false when name is not one of them.
func (st *statements) deallocate(name string, all bool) (removed []*preparedStmt, ok bool) {
	if all {
		for _, ps := range st.named {
			removed = append(removed, ps)
		}
		clear(st.named)
		return removed, true
	}
	ps := st.named[name]
	if ps == nil {
		return nil, false
	}
	delete(st.named, name)
	return []*preparedStmt{ps}, true
}

// discarded forgets the named statements defined up to sequence seq: a DISCARD ALL or
// DEALLOCATE ALL sent after them ran on the server.
func (st *statements) discarded(seq uint64) {
	for n, ps := range st.named {
		if ps.seq <= seq {
			delete(st.named, n)
		}
	}
}

// unnamedOn says what a Bind or Describe of the unnamed statement by client id needs
// on a server connection holding h's unnamed statement; with unnamedResend, parse is
// the Parse to send first.
func (st *statements) unnamedOn(id uint64, h unnamedHolder) (need unnamedNeed, parse []byte) {
	if h.client == id && h.seq == st.unnamedSeq {
		return unnamedHeld, nil
	}
	if st.unnamed == nil {
		return unnamedMissing, nil
	}
	return unnamedResend, st.unnamed
}

// changeUnnamed records a request of client id about to be sent to the server
// connection whose holder is h: with own, the client's unnamed statement becomes
// parse (an unnamed Parse; nil for a simple Query or a Close of the unnamed
// statement, which drop it); without, the connection gets the client's current one
// again. A Parse longer than maxUnnamedCopy is not copied (unnamedPinned). It
// returns what undoUnnamed needs.
func (st *statements) changeUnnamed(id uint64, h *unnamedHolder, parse []byte, own bool) unnamedChange {
	ch := unnamedChange{own: own, prevParse: st.unnamed, prevPinned: st.unnamedPinned, prevHolder: *h, prevSeq: st.unnamedSeq}
	if own {
		st.unnamedSeq++
		st.unnamedAs = 0
		prev := st.unnamed
		st.unnamed, st.unnamedPinned = nil, false
		switch {
		case len(parse) > maxUnnamedCopy:
			st.unnamedPinned = true
		case parse != nil && bytes.Equal(prev, parse):
			// The same Parse again (a driver re-parsing its query each time): the copy
			// is never written to, so it is kept, and an undo restoring it shares it.
			st.unnamed = prev
		case parse != nil:
			st.unnamed = append([]byte(nil), parse...)
		}
	}
	*h = unnamedHolder{id, st.unnamedSeq}
	ch.seq = st.unnamedSeq
	return ch
}

// current reports whether the client's unnamed statement is still the one of state
// seq (its own, or restored to it by an undo).
func (st *statements) current(seq uint64) bool {
	return seq != 0 && (st.unnamedSeq == seq || st.unnamedAs == seq)
}

// undoUnnamed reverts a change PostgreSQL skipped: the unnamed statements are as
// before it. The client's state gets a new number, so no server connection matches
// the restored statement by mistake.
func (st *statements) undoUnnamed(id uint64, h *unnamedHolder, ch *unnamedChange) {
	if ch.own && st.current(ch.seq) {
		st.unnamedSeq++
		st.unnamedAs = ch.prevSeq
		st.unnamed, st.unnamedPinned = ch.prevParse, ch.prevPinned
	}
	if *h == (unnamedHolder{id, ch.seq}) {
		*h = ch.prevHolder
	}
}

// unnamedFailed records that PostgreSQL refused an unnamed Parse: the server
// connection has no unnamed statement now, and, if it was the client's own Parse,
// neither has the client (a Bind of it then gets PostgreSQL's 26000).
func (st *statements) unnamedFailed(id uint64, h *unnamedHolder, ch *unnamedChange) {
	if ch.own {
		if st.current(ch.seq) {
			st.unnamed, st.unnamedPinned = nil, false // the server still matches: it has none either
		}
		return
	}
	if *h == (unnamedHolder{id, ch.seq}) {
		*h = unnamedHolder{}
	}
}

// unnamedPin brings the session's pinUnnamed in line with the unnamed statement, and
// returns the pins before.
func (s *session) unnamedPin() (was pins) {
	was = s.pins
	if s.stmts.unnamedPinned {
		s.pins = s.pins.add(pinUnnamed)
	} else {
		s.pins = s.pins.clear(pinUnnamed)
	}
	return was
}
