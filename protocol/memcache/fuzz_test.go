package memcache

import (
	"bytes"
	"testing"
)

var fuzzLimits = Limits{MaxValue: 1024, MaxLine: 2048, MaxGroup: 16, MaxReply: 1 << 16}

// checkText checks the text parser's invariants on in: no overrun, the same request
// from a longer buffer, keys within the limits, and a server form that parses back to
// the same command and keys without noreply or q.
func checkText(t *testing.T, in []byte) {
	var r TextRequest
	n, err := ParseText(in, &r, fuzzLimits)
	if err != nil || n == 0 {
		return
	}
	if n > len(in) {
		t.Fatalf("n = %d of %d", n, len(in))
	}
	cmd, keys := r.Cmd, bytes.Join(r.Keys, []byte{0})
	for _, k := range r.Keys {
		if len(k) == 0 || len(k) > MaxKeyLen {
			t.Fatalf("key of %d bytes", len(k))
		}
	}
	if r.TooLarge {
		return
	}
	sf := AppendServerForm(nil, &r)
	longer := append(bytes.Clone(in[:n]), "get x\r\n"...)
	if n2, err := ParseText(longer, &r, fuzzLimits); err != nil || n2 != n || r.Cmd != cmd {
		t.Fatalf("longer buffer: %d/%d %v", n2, n, err)
	}
	n3, err := ParseText(sf, &r, fuzzLimits)
	if err != nil || n3 != len(sf) || r.Cmd != cmd || r.NoReply || r.Quiet || !bytes.Equal(bytes.Join(r.Keys, []byte{0}), keys) {
		t.Fatalf("server form %q: %d %v", sf, n3, err)
	}
}

// FuzzParseText fuzzes the ASCII command parser.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"get a b c\r\n", "set k 1 2 3 noreply\r\nabc\r\n", "cas k 0 0 1 5\r\nx\r\n", "delete k 0 noreply\r\n",
		"incr k 5\r\n", "touch k 1\r\n", "gat 1 a b\r\n", "flush_all 0\r\n", "set k 0 0 2\r\n\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkText)
}

// FuzzParseMeta fuzzes the parser on meta commands.
func FuzzParseMeta(f *testing.F) {
	for _, s := range []string{"mg k v q O1 k\r\n", "ms k 2 q T0 MA\r\nhi\r\n", "md Zm9v b q\r\n", "ma k N0 J1 D2 MD v\r\n", "mn\r\n", "me k\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkText)
}

// FuzzTextReplyLen checks the reply scanner never overruns and that a complete reply
// keeps its length with bytes appended.
func FuzzTextReplyLen(f *testing.F) {
	for _, s := range []string{"VALUE a 0 1\r\nx\r\nEND\r\n", "VA 2 f\r\nhi\r\n", "STORED\r\n", "12 \r\n", "STAT a b\r\nEND\r\n", "HD O1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := TextReplyLen(in, fuzzLimits)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		if n2, err := TextReplyLen(append(bytes.Clone(in), "END\r\n"...), fuzzLimits); err != nil || n2 != n {
			t.Fatalf("appended: %d vs %d, %v", n2, n, err)
		}
	})
}

// FuzzTextSplit checks that any multi-get split and answered by memcached-like
// servers merges into VALUE blocks for the hit keys, in request order, and one END.
func FuzzTextSplit(f *testing.F) {
	f.Add([]byte("a0 b1 c2 a0 d3"), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, keys []byte, shards, hitMask uint8) {
		if shards == 0 {
			shards = 1
		}
		line := append([]byte("get "), keys...)
		line = append(line, "\r\n"...)
		var r TextRequest
		if n, err := ParseText(line, &r, fuzzLimits); err != nil || n != len(line) {
			return
		}
		store := map[string]string{}
		want := []byte{}
		for i, k := range r.Keys {
			if hitMask&(1<<(uint(k[0])%8)) != 0 {
				store[string(k)] = string(rune('a' + i%26))
			}
		}
		for _, k := range r.Keys {
			if v, ok := store[string(k)]; ok {
				want = append(want, "VALUE "+string(k)+" 0 "+itoa(len(v))+"\r\n"+v+"\r\n"...)
			}
		}
		want = append(want, "END\r\n"...)
		var s TextSplit
		s.Build(&r, modSharder(shards))
		var replies [][]byte
		for _, p := range s.Parts {
			replies = append(replies, textServer(store, p.Payload))
		}
		out, failed := s.Merge(nil, replies)
		if failed || !bytes.Equal(out, want) {
			t.Fatalf("merged %q, want %q", out, want)
		}
	})
}

// FuzzParseBinary checks the binary request parser: no overrun, a packet length that
// matches its header, and a server form of the same length with no quiet opcode.
func FuzzParseBinary(f *testing.F) {
	f.Add(breq(OpGetKQ, 1, "", "k", ""))
	f.Add(breq(OpSetQ, 1, "12345678", "k", "v\r\n"))
	f.Add(breq(OpIncrement, 1, "12345678901234567890", "k", ""))
	f.Add(breq(OpNoop, 1, "", "", ""))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r BinaryRequest
		n, err := ParseBinary(in, &r, fuzzLimits)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) || (!r.TooLarge && n != HeaderLen+int(r.BodyLen)) {
			t.Fatalf("n = %d of %d, body %d", n, len(in), r.BodyLen)
		}
		if r.TooLarge || r.Local || r.Unsupported {
			return
		}
		sf := AppendBinaryServerForm(nil, &r)
		if len(sf) != n || IsQuietOpcode(sf[1]) {
			t.Fatalf("server form % x", sf[:2])
		}
	})
}

// FuzzBinaryReplyLen checks the binary reply scanner never overruns and is stable
// under appended bytes.
func FuzzBinaryReplyLen(f *testing.F) {
	f.Add(cat(bresp(OpGetKQ, 0, 1, "\x00\x00\x00\x00", "k", "v"), bresp(OpNoop, 0, 2, "", "", "")))
	f.Add(bresp(OpGet, 1, 3, "", "", "Not found"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := BinaryReplyLen(in, fuzzLimits)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		if n2, err := BinaryReplyLen(append(bytes.Clone(in), bresp(OpNoop, 0, 0, "", "", "")...), fuzzLimits); err != nil || n2 != n {
			t.Fatalf("appended: %d vs %d %v", n2, n, err)
		}
	})
}

// FuzzBinaryGroup drives a binary client stream through a Conn and memcached-like
// servers: the client's answers must be well-formed packets, and every hit must carry
// the opaque of a client request.
func FuzzBinaryGroup(f *testing.F) {
	f.Add([]byte("a0 b1 c2 x0"), uint8(3), uint8(0x0f))
	f.Fuzz(func(t *testing.T, keys []byte, shards, kinds uint8) {
		if shards == 0 {
			shards = 1
		}
		store := map[string]string{"a0": "A", "b1": "B", "c2": "C"}
		stores := make([]map[string]string, shards)
		for i := range stores {
			stores[i] = store
		}
		var in []byte
		opaques := map[uint32]bool{}
		for i, k := range bytes.Fields(keys) {
			if len(k) > MaxKeyLen {
				return
			}
			op := []byte{OpGetKQ, OpGetQ, OpGetK, OpNoop}[(int(kinds)>>(2*(i%4)))&3]
			if op == OpNoop {
				in = append(in, breq(op, uint32(i), "", "", "")...)
			} else {
				in = append(in, breq(op, uint32(i), "", string(k), "")...)
			}
			opaques[uint32(i)] = true
		}
		if len(in) == 0 {
			return
		}
		in = append(in, breq(OpNoop, 999, "", "", "")...)
		opaques[999] = true
		for _, r := range runBinary(t, stores, in, -1) {
			if !opaques[r.opaque] {
				t.Fatalf("answer with opaque %d nobody sent", r.opaque)
			}
		}
	})
}
