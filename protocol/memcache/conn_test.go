package memcache

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

// fakeServers answers text parts like memcached holding store, one per shard.
func textServer(store map[string]string, payload []byte) []byte {
	var r TextRequest
	var out []byte
	for len(payload) > 0 {
		n, err := ParseText(payload, &r, Limits{})
		if err != nil || n == 0 {
			panic("bad part")
		}
		payload = payload[n:]
		switch r.Cmd {
		case CmdGet, CmdGets:
			for _, k := range r.Keys {
				if v, ok := store[string(k)]; ok {
					out = append(out, "VALUE "+string(k)+" 0 "+itoa(len(v))+"\r\n"+v+"\r\n"...)
				}
			}
			out = append(out, "END\r\n"...)
		case CmdSet:
			store[string(r.Keys[0])] = string(r.Data)
			out = append(out, "STORED\r\n"...)
		case CmdDelete:
			if _, ok := store[string(r.Keys[0])]; ok {
				delete(store, string(r.Keys[0]))
				out = append(out, "DELETED\r\n"...)
			} else {
				out = append(out, "NOT_FOUND\r\n"...)
			}
		case CmdMetaGet:
			v, ok := store[string(r.Keys[0])]
			switch {
			case !ok:
				out = append(out, "EN\r\n"...)
			default:
				out = append(out, "VA "+itoa(len(v))+"\r\n"+v+"\r\n"...)
			}
		case CmdMetaSet:
			store[string(r.Keys[0])] = string(r.Data)
			out = append(out, "HD\r\n"...)
		case CmdMetaDelete:
			if _, ok := store[string(r.Keys[0])]; !ok {
				out = append(out, "NF\r\n"...)
			} else {
				delete(store, string(r.Keys[0]))
				out = append(out, "HD\r\n"...)
			}
		case CmdVersion:
			out = append(out, "VERSION 1.6.18\r\n"...)
		default:
			panic("unexpected " + r.Cmd.String())
		}
		if r.NoReply || r.Quiet {
			panic("server form kept noreply or q")
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// run feeds a client stream through a Conn with shards fake servers and returns the
// client's answers, checking that each part gets exactly one reply as framed.
func runText(t *testing.T, stores []map[string]string, in string) string {
	t.Helper()
	c := NewConn(Limits{})
	var out []byte
	buf := []byte(in)
	var p Plan
	for len(buf) > 0 {
		n, err := c.Parse(buf, &p, modSharder(len(stores)))
		if err != nil || n == 0 {
			t.Fatalf("parse %q: %d %v", buf, n, err)
		}
		buf = buf[n:]
		if len(p.Parts) == 0 {
			out = append(out, p.Local...)
			if p.Close {
				break
			}
			continue
		}
		var replies [][]byte
		for _, pt := range p.Parts {
			r := textServer(stores[pt.Shard], pt.Payload)
			if l, err := TextReplyLen(r, Limits{}); err != nil || l != len(r) {
				t.Fatalf("part %q: reply %q framed %d %v", pt.Payload, r, l, err)
			}
			replies = append(replies, r)
		}
		if len(p.Parts) == 1 && !p.Rewrite {
			out = append(out, replies[0]...)
			continue
		}
		out, _ = c.Reply(out, &p, replies)
	}
	return string(out)
}

func TestConnTextPipeline(t *testing.T) {
	stores := []map[string]string{{"a0": "A"}, {"b1": "B\r\nB"}}
	in := "set c0 0 0 1 noreply\r\nC\r\n" + // no answer
		"get a0 b1 c0 x1\r\n" + // split over two servers, in request order
		"mg a0 v q\r\nmg zz0 v q\r\nmg b1 v q\r\nmd none1 q\r\nms n0 1 q\r\nN\r\nmn\r\n" + // quiet mix, both servers
		"delete x0 noreply\r\ndelete a0\r\n" +
		"version\r\n" +
		"quit\r\nget a0\r\n"
	want := "VALUE a0 0 1\r\nA\r\nVALUE b1 0 4\r\nB\r\nB\r\nVALUE c0 0 1\r\nC\r\nEND\r\n" +
		"VA 1\r\nA\r\nVA 4\r\nB\r\nB\r\nNF\r\nMN\r\n" +
		"DELETED\r\n" +
		"VERSION 1.6.18\r\n"
	if got := runText(t, stores, in); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if stores[0]["n0"] != "N" || stores[0]["c0"] != "C" {
		t.Fatalf("stores %v", stores)
	}
}

func TestConnTextRefusedAndTooLarge(t *testing.T) {
	c := NewConn(Limits{MaxValue: 4})
	var p Plan
	for _, in := range []string{"flush_all\r\n", "stats\r\n", "verbosity 1\r\n"} {
		if n, err := c.Parse([]byte(in), &p, modSharder(1)); err != nil || n != len(in) || !p.Close || len(p.Parts) != 0 || len(p.Local) != 0 {
			t.Fatalf("%q: %d %v %+v", in, n, err, p)
		}
	}
	// Oversized set: a delete of the key, the fixed answer, and the data skipped in pieces.
	stream := []byte("set k0 0 0 6\r\nabcdef\r\nget k0\r\n")
	n, err := c.Parse(stream, &p, modSharder(1))
	if err != nil || n != 14 || len(p.Parts) != 1 || string(p.Parts[0].Payload) != "delete k0\r\n" {
		t.Fatalf("too large: %d %v %+v", n, err, p.Parts)
	}
	if out, _ := c.Reply(nil, &p, [][]byte{[]byte("DELETED\r\n")}); string(out) != TooLargeReply {
		t.Fatalf("answer %q", out)
	}
	stream = stream[n:]
	if n, _ := c.Parse(stream[:3], &p, modSharder(1)); n != 3 || len(p.Parts) != 0 || len(p.Local) != 0 {
		t.Fatalf("skip 1: %d", n)
	}
	stream = stream[3:]
	if n, _ := c.Parse(stream, &p, modSharder(1)); n != 5 {
		t.Fatalf("skip 2: %d", n)
	}
	stream = stream[5:]
	if n, err := c.Parse(stream, &p, modSharder(1)); err != nil || n != len(stream) || string(p.Parts[0].Payload) != "get k0\r\n" {
		t.Fatalf("after skip: %d %v", n, err)
	}
	// Oversized add with noreply: no answer, data skipped, nothing sent.
	c = NewConn(Limits{MaxValue: 4})
	if n, _ := c.Parse([]byte("add k 0 0 9 noreply\r\n"), &p, modSharder(1)); n != 21 || len(p.Parts) != 0 || len(p.Local) != 0 || p.Expect != ExpectNone {
		t.Fatalf("noreply too large: %d %+v", n, p)
	}
	// A malformed line is a typed error.
	if _, err := NewConn(Limits{}).Parse([]byte("GET a\r\n"), &p, modSharder(1)); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("upper case: %v", err)
	}
}

// binServer answers binary parts like memcached: getq/getkq misses silent, hits carry
// flags (and the key for getk/getkq).
func binServer(store map[string]string, payload []byte) []byte {
	var out []byte
	var r BinaryRequest
	for len(payload) > 0 {
		n, err := ParseBinary(payload, &r, Limits{})
		if err != nil || n == 0 {
			panic("bad binary part")
		}
		payload = payload[n:]
		v, ok := store[string(r.Key)]
		switch r.Opcode {
		case OpGet, OpGetK, OpGetQ, OpGetKQ:
			key := []byte(nil)
			if r.Opcode == OpGetK || r.Opcode == OpGetKQ {
				key = r.Key
			}
			switch {
			case ok:
				out = AppendBinaryResponse(out, r.Opcode, 0, r.Opaque, 1, []byte{0, 0, 0, 5}, key, []byte(v))
			case r.Opcode == OpGet || r.Opcode == OpGetK:
				out = AppendBinaryResponse(out, r.Opcode, StatusNotFound, r.Opaque, 0, nil, nil, []byte("Not found"))
			}
		case OpNoop:
			out = AppendBinaryResponse(out, OpNoop, 0, r.Opaque, 0, nil, nil, nil)
		case OpSet:
			store[string(r.Key)] = string(r.Value)
			out = AppendBinaryResponse(out, OpSet, 0, r.Opaque, 2, nil, nil, nil)
		case OpAdd:
			st := uint16(StatusOK)
			if ok {
				st = StatusNotStored
			} else {
				store[string(r.Key)] = string(r.Value)
			}
			out = AppendBinaryResponse(out, OpAdd, st, r.Opaque, 0, nil, nil, nil)
		case OpVersion:
			out = AppendBinaryResponse(out, OpVersion, 0, r.Opaque, 0, nil, nil, []byte("1.6.18"))
		default:
			panic("unexpected binary opcode")
		}
	}
	return out
}

type binReply struct {
	op     byte
	status uint16
	opaque uint32
	key    string
	value  string
}

func decodeReplies(t *testing.T, b []byte) []binReply {
	t.Helper()
	var out []binReply
	for len(b) > 0 {
		n, err := BinaryPacketLen(b, MagicResponse)
		if err != nil || n == 0 {
			t.Fatalf("client stream broken: % x", b)
		}
		h := DecodeHeader(b)
		body := b[HeaderLen:n]
		out = append(out, binReply{h.Opcode, h.Status, h.Opaque, string(body[h.ExtrasLen : int(h.ExtrasLen)+int(h.KeyLen)]), string(body[int(h.ExtrasLen)+int(h.KeyLen):])})
		b = b[n:]
	}
	return out
}

func runBinary(t *testing.T, stores []map[string]string, in []byte, fail int) []binReply {
	t.Helper()
	c := NewConn(Limits{})
	var out []byte
	var p Plan
	for len(in) > 0 {
		n, err := c.Parse(in, &p, modSharder(len(stores)))
		if err != nil || n == 0 {
			t.Fatalf("parse: %d %v", n, err)
		}
		in = in[n:]
		if len(p.Parts) == 0 {
			out = append(out, p.Local...)
			if p.Close {
				break
			}
			continue
		}
		var replies [][]byte
		for _, pt := range p.Parts {
			var r []byte
			if pt.Shard == fail {
				r = AppendServerError(nil, "Connection timed out")
			} else {
				r = binServer(stores[pt.Shard], pt.Payload)
				if l, err := BinaryReplyLen(r, Limits{}); err != nil || l != len(r) {
					t.Fatalf("part reply framed %d of %d: %v", l, len(r), err)
				}
			}
			replies = append(replies, r)
		}
		out, _ = c.Reply(out, &p, replies)
	}
	return decodeReplies(t, out)
}

func TestConnBinaryMultiGet(t *testing.T) {
	stores := []map[string]string{{"a0": "A", "c0": "C"}, {"b1": "B"}}
	var in []byte
	in = append(in, breq(OpGetKQ, 10, "", "a0", "")...)
	in = append(in, breq(OpGetKQ, 11, "", "x1", "")...) // miss
	in = append(in, breq(OpGetKQ, 12, "", "b1", "")...)
	in = append(in, breq(OpGetKQ, 13, "", "c0", "")...)
	in = append(in, breq(OpNoop, 14, "", "", "")...)
	in = append(in, breq(OpGetQ, 20, "", "b1", "")...)
	in = append(in, breq(OpGetQ, 21, "", "zz0", "")...)
	in = append(in, breq(OpGetK, 22, "", "a0", "")...) // a get terminator
	in = append(in, breq(OpSetQ, 30, "\x00\x00\x00\x00\x00\x00\x00\x00", "n1", "N")...)
	in = append(in, breq(OpAddQ, 31, "\x00\x00\x00\x00\x00\x00\x00\x00", "n1", "M")...) // fails: answered
	in = append(in, breq(OpNoop, 32, "", "", "")...)
	in = append(in, breq(OpVersion, 33, "", "", "")...)
	in = append(in, breq(OpFlush, 34, "", "", "")...)
	in = append(in, breq(OpQuit, 35, "", "", "")...)
	got := runBinary(t, stores, in, -1)
	want := []binReply{
		{OpGetKQ, 0, 10, "a0", "A"}, {OpGetKQ, 0, 12, "b1", "B"}, {OpGetKQ, 0, 13, "c0", "C"}, {OpNoop, 0, 14, "", ""},
		{OpGetQ, 0, 20, "", "B"}, {OpGetK, 0, 22, "a0", "A"},
		{OpAddQ, StatusNotStored, 31, "", ""}, {OpNoop, 0, 32, "", ""},
		{OpVersion, 0, 33, "", "1.6.18"}, {OpFlush, StatusUnknownCommand, 34, "", "Unknown command"},
		{OpQuit, 0, 35, "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if stores[1]["n1"] != "N" {
		t.Fatal("setq not applied")
	}
}

func TestConnBinaryGroupFailureAndIncomplete(t *testing.T) {
	stores := []map[string]string{{"a0": "A"}, {"b1": "B"}}
	var in []byte
	in = append(in, breq(OpGetKQ, 1, "", "a0", "")...)
	in = append(in, breq(OpGetKQ, 2, "", "b1", "")...)
	in = append(in, breq(OpNoop, 3, "", "", "")...)
	got := runBinary(t, stores, in, 1)
	if len(got) != 3 || got[0] != (binReply{OpGetKQ, 0, 1, "a0", "A"}) ||
		got[1] != (binReply{OpGetKQ, StatusInternalError, 2, "", "Connection timed out"}) || got[2].op != OpNoop || got[2].opaque != 3 {
		t.Fatalf("failed shard: %+v", got)
	}
	// Without its terminator yet, a group waits for more bytes.
	c := NewConn(Limits{})
	var p Plan
	if n, err := c.Parse(in[:len(in)-HeaderLen], &p, modSharder(2)); n != 0 || err != nil {
		t.Fatalf("incomplete group: %d %v", n, err)
	}
	// Followed by another command, the group ends without terminator; the command
	// is parsed next.
	run := append(bytes.Clone(in[:2*(HeaderLen+2)]), breq(OpSet, 9, "12345678", "k0", "v")...)
	n, err := c.Parse(run, &p, modSharder(2))
	if err != nil || n != 2*(HeaderLen+2) || p.Terminator || p.Expect != ExpectMaybe || len(p.Parts) != 2 {
		t.Fatalf("unterminated group: %d %v %+v", n, err, p)
	}
	// Each part ends with the proxy's noop.
	for _, pt := range p.Parts {
		tail := pt.Payload[len(pt.Payload)-HeaderLen:]
		if h := DecodeHeader(tail); h.Opcode != OpNoop || h.Opaque != groupOpaque {
			t.Fatalf("part tail %+v", h)
		}
	}
	// Cut at MaxGroup.
	c = NewConn(Limits{MaxGroup: 1})
	if n, err := c.Parse(in, &p, modSharder(2)); err != nil || n != HeaderLen+2 || p.group.Members() != 1 {
		t.Fatalf("cut: %d %v", n, err)
	}
}

func TestDetect(t *testing.T) {
	if Detect(0x80) != Binary || Detect('g') != Text || Detect('m') != Text || Detect(0x81) != Text {
		t.Fatal("detect")
	}
	c := NewConn(Limits{})
	var p Plan
	if _, ok := c.Protocol(); ok {
		t.Fatal("detected before any byte")
	}
	c.Parse(breq(OpNoop, 1, "", "", ""), &p, modSharder(1))
	if pr, ok := c.Protocol(); !ok || pr != Binary || pr.String() != "binary" {
		t.Fatal("binary not detected")
	}
	// Text after binary on the same connection is not text.
	if _, err := c.Parse([]byte("get a\r\n"), &p, modSharder(1)); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("text on binary conn: %v", err)
	}
}

// TestResumeConn: a Conn resumed from another's State parses on as it would have; a
// state no Conn can be in is refused.
func TestResumeConn(t *testing.T) {
	c := NewConn(Limits{MaxValue: 4})
	var p Plan
	if n, err := c.Parse([]byte("set k 0 0 10\r\nabc"), &p, modSharder(1)); err != nil || n != 14 {
		t.Fatalf("oversized set: %d %v", n, err)
	}
	st := c.State()
	if st != (ConnState{Detected: true, Protocol: Text, Discard: 12}) {
		t.Fatalf("state %+v", st)
	}
	r, err := ResumeConn(Limits{MaxValue: 4}, st)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Parse([]byte("abcdefghij\r\nget k\r\n"), &p, modSharder(1)); err != nil || n != 12 || len(p.Parts) != 0 {
		t.Fatalf("resumed skip: %d %v %+v", n, err, p)
	}
	if n, err := r.Parse([]byte("get k\r\n"), &p, modSharder(1)); err != nil || n != 7 || len(p.Parts) != 1 {
		t.Fatalf("resumed get: %d %v", n, err)
	}
	for _, bad := range []ConnState{
		{Protocol: 2, Detected: true},
		{Protocol: Binary},
		{Discard: 1},
		{Detected: true, Discard: -1},
		{Detected: true, Discard: MaxDiscard + 1},
	} {
		if _, err := ResumeConn(Limits{}, bad); !errors.Is(err, ErrBadConnState) {
			t.Errorf("ResumeConn(%+v): %v, want ErrBadConnState", bad, err)
		}
	}
}
