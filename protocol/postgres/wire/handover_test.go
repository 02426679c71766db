package wire

import (
	"bytes"
	"io"
	"testing"
)

// TestUnreadPreload: what one Reader had read and not returned, preloaded into a new
// Reader on the rest of the stream, gives the same messages, none lost or repeated.
func TestUnreadPreload(t *testing.T) {
	var stream []byte
	for i := 0; i < 50; i++ {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, i*37)
		stream = append(stream, 'Q', 0, 0, 0, 0)
		n := len(body) + 4
		stream[len(stream)-4] = byte(n >> 24)
		stream[len(stream)-3] = byte(n >> 16)
		stream[len(stream)-2] = byte(n >> 8)
		stream[len(stream)-1] = byte(n)
		stream = append(stream, body...)
	}
	var want [][]byte
	all := NewReader(bytes.NewReader(stream))
	for {
		_, msg, err := all.Next()
		if err != nil {
			break
		}
		want = append(want, append([]byte(nil), msg...))
	}
	for cut := 0; cut <= len(stream); cut += 97 {
		// The first reader sees the stream up to cut, returns some messages and keeps
		// the rest buffered.
		sock := bytes.NewReader(stream) // the connection both readers read in turn
		first := NewReader(&limitedReader{r: sock, n: cut})
		var got [][]byte
		for k := 0; k < 3; k++ {
			_, msg, err := first.Next()
			if err != nil {
				break
			}
			got = append(got, append([]byte(nil), msg...))
		}
		left, ok := first.Unread()
		if !ok {
			t.Fatalf("cut %d: Unread not ok outside a streamed message", cut)
		}
		second := NewReader(sock)
		second.Preload(left)
		for {
			_, msg, err := second.Next()
			if err != nil {
				break
			}
			got = append(got, append([]byte(nil), msg...))
		}
		if len(got) != len(want) {
			t.Fatalf("cut %d: %d messages, want %d", cut, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("cut %d: message %d differs", cut, i)
			}
		}
	}
}

// limitedReader reads at most n bytes from r.
type limitedReader struct {
	r *bytes.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// TestUnreadStreaming: while a long message is streamed, Unread refuses.
func TestUnreadStreaming(t *testing.T) {
	body := bytes.Repeat([]byte{'x'}, 100)
	n := len(body) + 4
	msg := append([]byte{'d', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
	r := NewReader(bytes.NewReader(msg))
	r.stream = 32
	if _, _, err := r.NextPart(); err != nil {
		t.Fatal(err)
	}
	if r.Remaining() == 0 {
		t.Fatal("message not streamed")
	}
	if _, ok := r.Unread(); ok {
		t.Fatal("Unread ok mid-message")
	}
}
