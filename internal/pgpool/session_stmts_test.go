package pgpool

import (
	"bytes"
	"testing"
)

// unnamedParse returns an unnamed Parse message of query q.
func unnamedParse(q string) []byte {
	return appendMessage(nil, 'P', nul, []byte(q), nul, []byte{0, 0})
}

// TestStatementsNamed: named statements are defined in order, a Close or a failed
// Parse forgets only the statement its name still means, a skipped removal is put
// back only under a free name, DEALLOCATE forgets the client's own, and a DISCARD ALL
// forgets what was defined before it, not after.
func TestStatementsNamed(t *testing.T) {
	var st statements
	st.init()
	a := st.define([]byte("a"), []byte("select 1\x00\x00\x00"), "pgpool_x", 3)
	if st.get([]byte("a")) != a || a.seq != 1 || a.gen != 3 || a.srv != "pgpool_x" {
		t.Fatalf("define: %+v", a)
	}
	if !bytes.HasPrefix(a.parse, []byte("P")) || !bytes.Contains(a.parse, []byte("pgpool_x\x00select 1")) {
		t.Fatalf("parse under the server-side name: %q", a.parse)
	}
	st.forget(a)
	a2 := st.define([]byte("a"), []byte("select 2\x00\x00\x00"), "pgpool_y", 0)
	st.forget(a) // a stale Parse failing later does not drop the new statement
	if st.get([]byte("a")) != a2 {
		t.Fatal("forget dropped a statement its name no longer means")
	}
	st.restore(a) // a skipped Close of the old one: the name is taken
	if st.get([]byte("a")) != a2 {
		t.Fatal("restore replaced a statement")
	}
	b := st.define([]byte("b"), nil, "pgpool_z", 0)
	if _, ok := st.deallocate("c", false); ok {
		t.Fatal("DEALLOCATE of a statement the client does not have")
	}
	removed, ok := st.deallocate("b", false)
	if !ok || len(removed) != 1 || removed[0] != b || st.get([]byte("b")) != nil {
		t.Fatalf("DEALLOCATE b: %v %v", removed, ok)
	}
	st.restore(b) // PostgreSQL refused it (failed transaction)
	if st.get([]byte("b")) != b {
		t.Fatal("refused DEALLOCATE not undone")
	}
	if removed, _ := st.deallocate("", true); len(removed) != 2 || len(st.named) != 0 {
		t.Fatalf("DEALLOCATE ALL removed %d, left %d", len(removed), len(st.named))
	}
	old := st.define([]byte("o"), nil, "pgpool_o", 0)
	seq := st.seq // a DISCARD ALL is sent now
	young := st.define([]byte("y"), nil, "pgpool_y", 0)
	st.discarded(seq)
	if st.get([]byte("o")) != nil || st.get([]byte("y")) != young {
		t.Fatalf("DISCARD ALL after %v: left %v", old, st.named)
	}
}

// TestStatementsUnnamed: which Parse a Bind of the unnamed statement needs on a server
// connection, after the client's own changes, another client's, a skipped request
// and a refused Parse; and an unnamed Parse too long to copy pins the client instead,
// until the unnamed statement changes.
func TestStatementsUnnamed(t *testing.T) {
	const me, other = 7, 8
	var sess session
	st := &sess.stmts
	st.init()
	var s1, s2 unnamedHolder
	if need, _ := st.unnamedOn(me, s1); need != unnamedMissing {
		t.Fatalf("no unnamed statement yet: %v", need)
	}
	p := unnamedParse("select 1")
	st.changeUnnamed(me, &s1, p, true)
	p[len(p)-3] = 'x' // the client's read buffer is reused
	if need, _ := st.unnamedOn(me, s1); need != unnamedHeld {
		t.Fatalf("on the connection that parsed it: %v", need)
	}
	need, parse := st.unnamedOn(me, s2)
	if need != unnamedResend || !bytes.Equal(parse, unnamedParse("select 1")) {
		t.Fatalf("on another connection: %v %q", need, parse)
	}
	ch := st.changeUnnamed(me, &s2, nil, false) // pgpool sends it there
	if need, _ := st.unnamedOn(me, s2); need != unnamedHeld {
		t.Fatal("resent statement not held")
	}
	s1 = unnamedHolder{other, 1} // another client parsed on s1 meanwhile
	if need, _ := st.unnamedOn(me, s1); need != unnamedResend {
		t.Fatal("another client's unnamed statement taken for the client's")
	}
	st.unnamedFailed(me, &s2, &ch) // the resent Parse failed there
	if s2 != (unnamedHolder{}) || st.unnamed == nil {
		t.Fatalf("failed resend: holder %v, client's %q", s2, st.unnamed)
	}

	// A Query drops the unnamed statement; PostgreSQL skips it: it is back, and no
	// connection holds it by mistake.
	ch = st.changeUnnamed(me, &s2, nil, true)
	if need, _ := st.unnamedOn(me, s1); need != unnamedMissing {
		t.Fatal("a simple Query left an unnamed statement")
	}
	st.undoUnnamed(me, &s2, &ch)
	if need, parse := st.unnamedOn(me, s2); need != unnamedResend || !bytes.Equal(parse, unnamedParse("select 1")) {
		t.Fatalf("after a skipped Query: %v %q", need, parse)
	}

	// A refused own Parse leaves the client without one.
	ch = st.changeUnnamed(me, &s2, unnamedParse("selec"), true)
	st.unnamedFailed(me, &s2, &ch)
	if need, _ := st.unnamedOn(me, s1); need != unnamedMissing {
		t.Fatal("a refused Parse left an unnamed statement")
	}

	// Too long to copy: not copied, pinned; a later change unpins, and undoing it pins
	// again.
	long := unnamedParse("select 1 -- " + string(make([]byte, maxUnnamedCopy)))
	st.changeUnnamed(me, &s1, long, true)
	if st.unnamed != nil || !st.unnamedPinned {
		t.Fatalf("long Parse copied (%d bytes) or not pinned", len(st.unnamed))
	}
	if sess.unnamedPin(); sess.pins.String() != "unnamed_parse" {
		t.Fatalf("pins %q", sess.pins)
	}
	if need, _ := st.unnamedOn(me, s1); need != unnamedHeld {
		t.Fatal("the pinned connection does not hold it")
	}
	if need, _ := st.unnamedOn(me, s2); need != unnamedMissing {
		t.Fatal("a long Parse offered for resending")
	}
	ch = st.changeUnnamed(me, &s1, unnamedParse("select 2"), true)
	if was := sess.unnamedPin(); was != pinUnnamed || sess.pins != 0 {
		t.Fatalf("a short Parse after it: pins %q (was %q)", sess.pins, was)
	}
	st.undoUnnamed(me, &s1, &ch)
	if sess.unnamedPin(); !sess.pins.has(pinUnnamed) || st.unnamed != nil {
		t.Fatal("undoing the short Parse did not bring back the pinned long one")
	}
}

// FuzzStatementsUnnamed: any sequence of unnamed-statement changes by one client over
// two server connections, of which a prefix is answered and the rest skipped by
// PostgreSQL (undone in reverse, as skipToSync and resetBinding do), leaves the
// client's unnamed statement as after the prefix; a connection is then taken to hold
// it only if PostgreSQL's state there (after the prefix) is that statement; a Bind
// right after a change on a connection needs nothing there; and the copy kept never
// exceeds maxUnnamedCopy.
func FuzzStatementsUnnamed(f *testing.F) {
	f.Add([]byte{0, 4, 1, 2, 6, 3}, uint8(2))
	f.Add([]byte{0, 0, 2, 1, 2, 0}, uint8(0))
	f.Add([]byte{0, 255, 2, 6, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, ops []byte, answered uint8) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		const me = 1
		var sess session
		st := &sess.stmts
		st.init()
		holders := [2]unnamedHolder{{2, 5}, {}}
		type state struct {
			parse  []byte
			pinned bool
		}
		type change struct {
			srv     int
			ch      unnamedChange
			content int // the statement the client (own) or the connection has after it
		}
		var done []change
		var after []state // the client's statement after each change
		content := 0      // which change made the client's statement (0: the initial none)
		for i := 0; i < len(ops); i++ {
			op, srv := ops[i]%4, int(ops[i]>>2)&1
			h := &holders[srv]
			var ch unnamedChange
			switch op {
			case 0: // the client's own Parse; the next byte picks its length
				n := 0
				if i+1 < len(ops) {
					i++
					n = int(ops[i])
				}
				q := string(bytes.Repeat([]byte{'x'}, n))
				if n == 255 {
					q = string(make([]byte, maxUnnamedCopy))
				}
				ch = st.changeUnnamed(me, h, unnamedParse(q), true)
			case 1: // a simple Query or a Close of the unnamed statement
				ch = st.changeUnnamed(me, h, nil, true)
			default: // a Bind: pgpool resends the Parse if the connection needs it
				need, _ := st.unnamedOn(me, *h)
				if need != unnamedResend {
					continue
				}
				ch = st.changeUnnamed(me, h, nil, false)
			}
			if need, _ := st.unnamedOn(me, *h); need != unnamedHeld {
				t.Fatalf("op %d: a Bind right after a change needs %v", i, need)
			}
			if len(st.unnamed) > maxUnnamedCopy || st.unnamedPinned && st.unnamed != nil {
				t.Fatalf("op %d: copy of %d bytes, pinned %v", i, len(st.unnamed), st.unnamedPinned)
			}
			if ch.own {
				content = len(done) + 1
			}
			done = append(done, change{srv, ch, content})
			after = append(after, state{st.unnamed, st.unnamedPinned})
		}
		k := int(answered)
		if k > len(done) {
			k = len(done)
		}
		if k == len(done) {
			return
		}
		want := state{}
		if k > 0 {
			want = after[k-1]
		}
		for i := len(done) - 1; i >= k; i-- {
			st.undoUnnamed(me, &holders[done[i].srv], &done[i].ch)
		}
		if !bytes.Equal(st.unnamed, want.parse) || st.unnamedPinned != want.pinned {
			t.Fatalf("after undoing %d of %d: %q pinned %v, want %q pinned %v", len(done)-k, len(done), st.unnamed, st.unnamedPinned, want.parse, want.pinned)
		}
		// PostgreSQL's state after the prefix: each connection has what the last change
		// there left (-1: another client's), the client what its last own change made.
		srvHas, clientHas := [2]int{-1, -1}, 0
		for _, d := range done[:k] {
			srvHas[d.srv] = d.content
			if d.ch.own {
				clientHas = d.content
			}
		}
		for i, h := range holders {
			if need, _ := st.unnamedOn(me, h); need == unnamedHeld && srvHas[i] != clientHas {
				t.Fatalf("connection %d (%v) taken to hold the client's statement %d; it has %d", i, h, clientHas, srvHas[i])
			}
		}
		if sess.unnamedPin(); sess.pins.has(pinUnnamed) != want.pinned {
			t.Fatalf("pins %q, want pinned %v", sess.pins, want.pinned)
		}
	})
}

// FuzzStatementsNamed: whatever sequence of Parses, failed Parses, Closes put back,
// DEALLOCATEs and DISCARD ALLs a client's named statements go through, every name
// means the statement defined under it, definitions are numbered in order, a forget
// or restore touches only its own name and never another statement, and a DISCARD
// ALL forgets exactly what was defined before it.
func FuzzStatementsNamed(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 3, 1, 4, 2, 2, 0})
	f.Add([]byte{0, 2, 0, 3, 4, 0, 0, 2, 3, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 128 {
			ops = ops[:128]
		}
		var st statements
		st.init()
		var made []*preparedStmt // every statement defined, current or not
		var seqs []uint64        // st.seq at each step, for a DISCARD ALL sent then
		arg := func(i *int) int {
			if *i+1 < len(ops) {
				*i++
				return int(ops[*i])
			}
			return 0
		}
		for i := 0; i < len(ops); i++ {
			before := len(st.named)
			switch ops[i] % 5 {
			case 0: // a Parse under a free name
				name := []byte{'a' + byte(arg(&i)%4)}
				if st.get(name) != nil {
					continue // pgpool answers 42P05 and defines nothing
				}
				seq := st.seq
				ps := st.define(name, []byte("select 1\x00\x00\x00"), "pgpool_x", 0)
				if st.get(name) != ps || ps.seq != seq+1 || st.seq != seq+1 || len(st.named) != before+1 {
					t.Fatalf("define %q: %+v, seq %d", name, ps, st.seq)
				}
				made = append(made, ps)
			case 1: // a Parse refused or a Close: forget that statement
				if len(made) == 0 {
					continue
				}
				ps := made[arg(&i)%len(made)]
				cur := st.named[ps.name]
				st.forget(ps)
				if cur == ps && st.named[ps.name] != nil || cur != ps && st.named[ps.name] != cur {
					t.Fatalf("forget %p under %q: was %p, now %p", ps, ps.name, cur, st.named[ps.name])
				}
			case 2: // a skipped Close or refused DEALLOCATE: put back
				if len(made) == 0 {
					continue
				}
				ps := made[arg(&i)%len(made)]
				cur := st.named[ps.name]
				st.restore(ps)
				if cur != nil && st.named[ps.name] != cur || cur == nil && st.named[ps.name] != ps {
					t.Fatalf("restore %p under %q: was %p, now %p", ps, ps.name, cur, st.named[ps.name])
				}
			case 3: // DEALLOCATE name or ALL
				a := arg(&i)
				if a%5 == 4 {
					removed, ok := st.deallocate("", true)
					if !ok || len(removed) != before || len(st.named) != 0 {
						t.Fatalf("DEALLOCATE ALL removed %d of %d", len(removed), before)
					}
					continue
				}
				name := string(rune('a' + a%4))
				cur := st.named[name]
				removed, ok := st.deallocate(name, false)
				if ok != (cur != nil) || ok && (len(removed) != 1 || removed[0] != cur) || st.named[name] != nil {
					t.Fatalf("DEALLOCATE %s: %v %v (had %p)", name, removed, ok, cur)
				}
			case 4: // a DISCARD ALL sent at an earlier step ran
				if len(seqs) == 0 {
					continue
				}
				seq := seqs[arg(&i)%len(seqs)]
				kept := map[string]*preparedStmt{}
				for n, ps := range st.named {
					if ps.seq > seq {
						kept[n] = ps
					}
				}
				st.discarded(seq)
				if len(st.named) != len(kept) {
					t.Fatalf("DISCARD ALL at %d kept %d, want %d", seq, len(st.named), len(kept))
				}
				for n, ps := range kept {
					if st.named[n] != ps {
						t.Fatalf("DISCARD ALL at %d dropped %q defined at %d", seq, n, ps.seq)
					}
				}
			}
			seqs = append(seqs, st.seq)
			used := map[uint64]bool{}
			for n, ps := range st.named {
				if ps.name != n || ps.seq == 0 || ps.seq > st.seq || used[ps.seq] {
					t.Fatalf("statement %q: %+v (seq %d)", n, ps, st.seq)
				}
				used[ps.seq] = true
			}
		}
	})
}
