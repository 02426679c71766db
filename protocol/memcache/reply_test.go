package memcache

import (
	"encoding/base64"
	"errors"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestTextReplyLen(t *testing.T) {
	for _, r := range []string{
		"END\r\n",
		"VALUE a 0 1\r\nx\r\nEND\r\n",
		"VALUE a 5 4 99\r\na\r\nb\r\nVALUE b 0 0\r\n\r\nEND\r\n",
		"VALUE a 0 5\r\nEND\r\n\r\nEND\r\n",
		"STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n", "DELETED\r\n",
		"TOUCHED\r\n", "OK\r\n", "42\r\n", "42  \r\n", "18446744073709551615\r\n",
		"VERSION 1.6.18\r\n", "ERROR\r\n", "CLIENT_ERROR bad command line format\r\n",
		"SERVER_ERROR object too large for cache\r\n",
		"VA 2 f5 t-1\r\nhi\r\n", "VA 0\r\n\r\n", "VA 4\r\n\r\n\r\n\r\n", "HD\r\n", "HD O12 kfoo c9\r\n", "EN\r\n", "EN kfoo O7\r\n",
		"NS\r\n", "EX\r\n", "NF\r\n", "MN\r\n", "ME k exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n",
		"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n",
	} {
		n, err := TextReplyLen([]byte(r+"STORED\r\n"), Limits{})
		if err != nil || n != len(r) {
			t.Errorf("%q: n=%d err=%v", r, n, err)
		}
		for i := 0; i < len(r); i++ {
			if n, err := TextReplyLen([]byte(r[:i]), Limits{}); n != 0 || err != nil {
				t.Errorf("%q prefix %d: n=%d err=%v", r, i, n, err)
				break
			}
		}
	}
	for _, r := range []string{
		"FOO\r\n", "STORED\n", "VALUE a 0 1\r\nx\r\nSTORED\r\n", "VALUE a 0 1\r\nxy\r\n", "VALUE a x 1\r\nx\r\nEND\r\n",
		"VA x\r\n", "HDX\r\n", "-1\r\n", "STAT a\r\nSTORED\r\n", "VALUE a 0\r\n",
	} {
		if _, err := TextReplyLen([]byte(r+"END\r\n"), Limits{}); !errors.Is(err, ErrBadReply) {
			t.Errorf("%q: err=%v", r, err)
		}
	}
	if _, err := TextReplyLen([]byte("VALUE a 0 100\r\n"), Limits{MaxReply: 64}); !errors.Is(err, ErrReplyTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := TextReplyLen([]byte("STORED STORED STORED"), Limits{MaxLine: 8}); !errors.Is(err, ErrReplyTooLarge) {
		t.Errorf("long line: %v", err)
	}
}

// TestTextReplyLenNoAlloc: framing the replies a proxy sees most (a get's VALUE
// block, a meta VA, single lines) allocates nothing, so a server connection's reader
// costs no garbage per reply.
func TestTextReplyLenNoAlloc(t *testing.T) {
	for _, r := range []string{
		"VALUE mc:1234 0 32\r\n01234567890123456789012345678901\r\nEND\r\n",
		"VALUE a 5 4 99\r\nabcd\r\nVALUE b 0 0\r\n\r\nEND\r\n",
		"VA 2 f5 t-1\r\nhi\r\n", "STORED\r\n", "END\r\n", "HD O12 kfoo c9\r\n",
	} {
		buf := []byte(r)
		if n := testing.AllocsPerRun(100, func() {
			if n, err := TextReplyLen(buf, Limits{}); n != len(buf) || err != nil {
				t.Fatalf("%q: n=%d err=%v", r, n, err)
			}
		}); n != 0 {
			t.Errorf("%q: %v allocations per reply, want 0", r, n)
		}
	}
}
