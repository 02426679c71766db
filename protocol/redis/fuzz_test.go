package redis

import (
	"bytes"
	"testing"
)

// FuzzParseRequest checks that the request parser never panics, never reports more
// bytes than it was given, and parses the same request from a longer buffer.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "GET k\r\n", "*0\r\n", "SET k \"a b\"\n", "*1\r\n$-1\r\n"} {
		f.Add([]byte(s))
	}
	l := Limits{MaxArgs: 64, MaxBulk: 1024, MaxInline: 1024, MaxRequest: 4096}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req Request
		n, err := ParseRequest(in, &req, l)
		if err != nil {
			return
		}
		if n < 0 || n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		if n == 0 {
			return
		}
		if len(req.Args) > 64 {
			t.Fatalf("%d args", len(req.Args))
		}
		args := make([][]byte, len(req.Args))
		for i, a := range req.Args {
			args[i] = bytes.Clone(a)
		}
		longer := append(bytes.Clone(in), "*1\r\n$4\r\nPING\r\n"...)
		n2, err := ParseRequest(longer, &req, l)
		if err != nil || n2 != n || len(req.Args) != len(args) {
			t.Fatalf("longer buffer: n=%d/%d err=%v", n2, n, err)
		}
		if !req.Inline {
			// A multi-bulk request re-encodes to itself when it has arguments.
			if len(args) > 0 && !bytes.Equal(AppendCommand(nil, args...), in[:n]) && in[1] != '0' && bytes.IndexByte(in[:n], '-') < 0 {
				// Leading zeros in lengths ("$03") are accepted; compare the args only.
				var again Request
				if m, err := ParseRequest(AppendCommand(nil, args...), &again, l); err != nil || m == 0 || len(again.Args) != len(args) {
					t.Fatalf("re-encoding does not parse: %v", err)
				}
			}
		}
	})
}

// FuzzReplyLen checks the reply scanner never panics and never overruns, and that a
// complete reply stays complete (same length) with bytes appended.
func FuzzReplyLen(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "*2\r\n$1\r\na\r\n$-1\r\n", "%1\r\n+a\r\n:1\r\n", "*1\r\n*1\r\n:1\r\n", "|1\r\n+a\r\n+b\r\n:1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := ReplyLen(in, 1<<16)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		n2, err := ReplyLen(append(bytes.Clone(in), "+x\r\n"...), 1<<16)
		if err != nil || n2 != n {
			t.Fatalf("appended: %d vs %d, %v", n2, n, err)
		}
	})
}

// FuzzSplit checks that splitting any MGET and merging well-formed replies gives one
// array element per key, and that a failed part makes the merged reply its error alone.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("a b c d e f"), uint8(3))
	f.Fuzz(func(t *testing.T, keys []byte, shards uint8) {
		if shards == 0 {
			shards = 1
		}
		args := [][]byte{[]byte("MGET")}
		args = append(args, bytes.Fields(keys)...)
		if len(args) < 2 {
			return
		}
		var s Split
		s.Build(Lookup(args[0]), args, modSharder(shards))
		var replies [][]byte
		for _, p := range s.Parts {
			var req Request
			n, err := ParseRequest(p.Payload, &req, Limits{})
			if err != nil || n != len(p.Payload) {
				t.Fatalf("part does not parse: %v", err)
			}
			r := AppendArrayLen(nil, len(req.Args)-1)
			for _, k := range req.Args[1:] {
				r = AppendBulk(r, k)
			}
			replies = append(replies, r)
		}
		merged := s.Merge(nil, replies)
		el, ok := ArrayElements(nil, merged)
		if !ok || len(el) != len(args)-1 {
			t.Fatalf("merged %q", merged)
		}
		for i, e := range el {
			if !bytes.Equal(e, AppendBulk(nil, args[i+1])) {
				t.Fatalf("element %d = %q, want key %q", i, e, args[i+1])
			}
		}
		failed := []byte("-ERR Connection refused\r\n")
		replies[len(replies)-1] = failed
		if merged := s.Merge(nil, replies); !bytes.Equal(merged, failed) {
			t.Fatalf("merged with a failed part: %q", merged)
		}
	})
}

// FuzzClassifyAuthError checks the AUTH error classifier never panics, gives one of
// its kinds, and that an error with a prefix Redis never sends to AUTH is AuthErrOther.
func FuzzClassifyAuthError(f *testing.F) {
	for _, s := range []string{"WRONGPASS invalid username-password pair or user is disabled.",
		"ERR invalid password", "NOAUTH Authentication required.",
		"ERR Client sent AUTH, but no password is set",
		"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
		"ERR DB index is out of range", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		k := ClassifyAuthError(text)
		if k < AuthErrOther || k > AuthErrNoPassword {
			t.Fatalf("kind %d", k)
		}
		if k2 := ClassifyAuthError(append([]byte("X"), text...)); k2 != AuthErrOther {
			t.Fatalf("X%q: kind %d", text, k2)
		}
	})
}
