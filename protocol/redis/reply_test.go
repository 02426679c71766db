package redis

import (
	"errors"
	"testing"
)

func TestReplyLen(t *testing.T) {
	tests := []struct {
		in string
		n  int
	}{
		{"+OK\r\n", 5},
		{"-ERR x\r\n", 8},
		{":42\r\n", 5},
		{"$3\r\nabc\r\n", 9},
		{"$-1\r\n", 5},
		{"*-1\r\n", 5},
		{"*0\r\n", 4},
		{"*2\r\n$1\r\na\r\n$-1\r\n", 16},
		{"*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n+x\r\n", 24},
		{"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 20},
		{"%1\r\n+a\r\n:1\r\n", 12},
		{"_\r\n", 3},
		{"|1\r\n+a\r\n+b\r\n:1\r\n", 16},
		{"+OK\r\n+OK\r\n", 5},
		// Incomplete.
		{"+OK\r", 0},
		{"$3\r\nab", 0},
		{"*2\r\n:1\r\n", 0},
		{"*2\r\n*2\r\n:1\r\n:2\r\n", 0},
		{"", 0},
	}
	for _, tt := range tests {
		n, err := ReplyLen([]byte(tt.in), 0)
		if err != nil || n != tt.n {
			t.Errorf("ReplyLen(%q) = %d, %v; want %d", tt.in, n, err, tt.n)
		}
	}
	for _, bad := range []string{"?x\r\n", "+OK\n", "$3\r\nabcde", "*x\r\n"} {
		if _, err := ReplyLen([]byte(bad), 0); !errors.Is(err, ErrProtocol) {
			t.Errorf("ReplyLen(%q) err = %v, want ErrProtocol", bad, err)
		}
	}
	if _, err := ReplyLen([]byte("$100\r\n"), 50); !errors.Is(err, ErrReplyTooLarge) {
		t.Errorf("limit: err = %v", err)
	}
}

func TestReplyLenDeepNesting(t *testing.T) {
	var b []byte
	for i := 0; i < 100000; i++ {
		b = append(b, "*1\r\n"...)
	}
	b = append(b, ":1\r\n"...)
	n, err := ReplyLen(b, 0)
	if err != nil || n != len(b) {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestArrayElementsAndInt(t *testing.T) {
	el, ok := ArrayElements(nil, []byte("*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:5\r\n"))
	if !ok || len(el) != 3 || string(el[0]) != "$1\r\na\r\n" || string(el[1]) != "$-1\r\n" || string(el[2]) != "*1\r\n:5\r\n" {
		t.Fatalf("elements = %q ok=%v", el, ok)
	}
	if _, ok := ArrayElements(nil, []byte(":1\r\n")); ok {
		t.Fatal("non-array accepted")
	}
	if v, ok := ReplyInt([]byte(":-12\r\n")); !ok || v != -12 {
		t.Fatalf("ReplyInt = %d %v", v, ok)
	}
	if _, ok := ReplyInt([]byte("+12\r\n")); ok {
		t.Fatal("ReplyInt accepted a simple string")
	}
}

func BenchmarkReplyLen(b *testing.B) {
	var r []byte
	r = AppendArrayLen(r, 100)
	for i := 0; i < 100; i++ {
		r = AppendBulkString(r, "value-of-some-length-0123456789")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(r)))
	for i := 0; i < b.N; i++ {
		if n, err := ReplyLen(r, 0); n != len(r) || err != nil {
			b.Fatal(n, err)
		}
	}
}

// TestClassifyAuthError: the replies Redis 5 to 7 give to a wrong AUTH and to AUTH on a
// server without a password, and replies of other commands.
func TestClassifyAuthError(t *testing.T) {
	for _, tc := range []struct {
		text string
		want AuthError
	}{
		{"WRONGPASS invalid username-password pair or user is disabled.", AuthErrRefused},
		{"ERR invalid password", AuthErrRefused},
		{"NOAUTH Authentication required.", AuthErrRefused},
		{"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?", AuthErrNoPassword},
		{"ERR Client sent AUTH, but no password is set", AuthErrNoPassword},
		{"ERR DB index is out of range", AuthErrOther},
		{"ERR invalid password!", AuthErrOther},
		{"ERR AUTH failed", AuthErrOther},
		{"", AuthErrOther},
	} {
		if got := ClassifyAuthError([]byte(tc.text)); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.text, got, tc.want)
		}
	}
}
