package redis

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

func argStrings(req *Request) []string {
	out := make([]string, len(req.Args))
	for i, a := range req.Args {
		out[i] = string(a)
	}
	return out
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		n      int
		args   []string
		inline bool
		err    error
	}{
		{"get", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20, []string{"GET", "k"}, false, nil},
		{"pipeline takes first", "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", 14, []string{"PING"}, false, nil},
		{"empty bulk", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", 19, []string{"GET", ""}, false, nil},
		{"binary bulk", "*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n", 23, []string{"GET", "a\r\nb"}, false, nil},
		{"zero args", "*0\r\n", 4, []string{}, false, nil},
		{"negative args", "*-1\r\n", 5, []string{}, false, nil},
		{"incomplete header", "*2\r", 0, []string{}, false, nil},
		{"incomplete bulk", "*2\r\n$3\r\nGET\r\n$5\r\nab", 0, []string{}, false, nil},
		{"incomplete crlf", "*1\r\n$4\r\nPING\r", 0, []string{}, false, nil},
		{"inline", "GET k\r\n", 7, []string{"GET", "k"}, true, nil},
		{"inline lf", "set  a   b\n", 11, []string{"set", "a", "b"}, true, nil},
		{"inline quotes", "SET k \"a b\"\r\n", 13, []string{"SET", "k", "a b"}, true, nil},
		{"inline empty", "\r\n", 2, []string{}, true, nil},
		{"inline incomplete", "GET k", 0, []string{}, false, nil},
		{"bad bulk marker", "*1\r\n+PING\r\n", 0, nil, false, ErrProtocol},
		{"bad count", "*x\r\n", 0, nil, false, ErrProtocol},
		{"bad terminator", "*1\r\n$4\r\nPINGxx", 0, nil, false, ErrProtocol},
		{"negative bulk", "*1\r\n$-1\r\n", 0, nil, false, ErrProtocol},
		{"unbalanced quote", "SET \"a\r\n", 0, nil, false, ErrProtocol},
		{"huge count", "*99999999999999999999\r\n", 0, nil, false, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			n, err := ParseRequest([]byte(tt.in), &req, Limits{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("err %T is not a *ProtocolError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if n != tt.n {
				t.Fatalf("n = %d, want %d", n, tt.n)
			}
			if n == 0 {
				return
			}
			if got := strings.Join(argStrings(&req), "|"); got != strings.Join(tt.args, "|") {
				t.Fatalf("args = %q, want %q", got, tt.args)
			}
			if req.Inline != tt.inline {
				t.Fatalf("inline = %v", req.Inline)
			}
			if string(req.Raw) != tt.in[:n] {
				t.Fatalf("raw = %q", req.Raw)
			}
		})
	}
}

func TestParseRequestLimits(t *testing.T) {
	var req Request
	l := Limits{MaxArgs: 3, MaxBulk: 10, MaxInline: 16, MaxRequest: 50}
	cases := []struct {
		in  string
		err error
	}{
		{"*4\r\n", ErrTooManyArgs},
		{"*2\r\n$3\r\nGET\r\n$11\r\n", ErrBulkTooLarge},
		{"a b c d\r\n", ErrTooManyArgs},
		{strings.Repeat("a", 17), ErrInlineTooLong},
		{strings.Repeat("a", 20) + "\n", ErrInlineTooLong},
		{"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n", ErrRequestTooLarge},
		{"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n01234", ErrRequestTooLarge},
	}
	for _, c := range cases {
		if _, err := ParseRequest([]byte(c.in), &req, l); !errors.Is(err, c.err) {
			t.Errorf("%q: err = %v, want %v", c.in, err, c.err)
		}
	}
	// Within limits.
	if n, err := ParseRequest([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n"), &req, l); err != nil || n == 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

// TestParseRequestByteByByte feeds a pipeline one byte at a time, as a slow client
// would, and checks every request comes out whole and in order.
func TestParseRequestByteByByte(t *testing.T) {
	var in []byte
	for i := 0; i < 50; i++ {
		in = AppendCommandStrings(in, "SET", "key"+strings.Repeat("x", i), strings.Repeat("v", i*3))
		in = append(in, "GET k\r\n"...)
	}
	var req Request
	var buf []byte
	got := 0
	for _, b := range in {
		buf = append(buf, b)
		for {
			n, err := ParseRequest(buf, &req, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			got++
			buf = buf[n:]
		}
	}
	if got != 100 || len(buf) != 0 {
		t.Fatalf("got %d requests, %d bytes left", got, len(buf))
	}
}

func pipelineOfSets(n int) []byte {
	var in []byte
	for i := 0; i < n; i++ {
		in = AppendCommandStrings(in, "SET", "key:000000000001", "value-of-some-length-0123456789")
	}
	return in
}

// BenchmarkParseRequest parses a pipeline of 1,000 SET commands.
func BenchmarkParseRequest(b *testing.B) {
	in := pipelineOfSets(1000)
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		buf := in
		for len(buf) > 0 {
			n, err := ParseRequest(buf, &req, Limits{})
			if err != nil || n == 0 {
				b.Fatal(err)
			}
			buf = buf[n:]
		}
	}
}

// BenchmarkRedconReader parses the same pipeline with redcon's Reader, for the
// comparison quoted on ParseRequest.
func BenchmarkRedconReader(b *testing.B) {
	in := pipelineOfSets(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		rd := redcon.NewReader(bufio.NewReaderSize(bytes.NewReader(in), len(in)))
		for n := 0; n < 1000; {
			cmds, err := rd.ReadCommands()
			if err != nil {
				b.Fatal(err)
			}
			n += len(cmds)
		}
	}
}
