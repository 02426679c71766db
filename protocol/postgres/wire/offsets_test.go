package wire

import (
	"bytes"
	"net"
	"testing"
)

// TestReaderOffsets: Received counts every byte read from the underlying reader, and
// Consumed, between messages, is the stream offset where the next message starts,
// through whole, streamed (More) and whole-after-all (Rest) messages, over a plain
// reader and over a socket (the raw read path).
func TestReaderOffsets(t *testing.T) {
	var stream bytes.Buffer
	var starts []int64
	add := func(typ byte, n int) {
		starts = append(starts, int64(stream.Len()))
		stream.Write(header(typ, n))
		stream.Write(bytes.Repeat([]byte{'x'}, n))
	}
	add('Q', 10)
	add('P', 3000) // streamed, read whole with Rest
	add('d', 5000) // streamed, read with More
	add('S', 0)
	starts = append(starts, int64(stream.Len()))
	total := int64(stream.Len())

	run := func(t *testing.T, r *Reader) {
		r.stream = 1024
		for i := 0; i < 4; i++ {
			if got := r.Consumed(); got != starts[i] {
				t.Fatalf("message %d: Consumed = %d, want %d", i, got, starts[i])
			}
			typ, _, err := r.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if r.Received() < r.Consumed() {
				t.Fatalf("Received %d below Consumed %d", r.Received(), r.Consumed())
			}
			switch typ {
			case 'P':
				if _, err := r.Rest(); err != nil {
					t.Fatal(err)
				}
			case 'd':
				for r.Remaining() > 0 {
					if _, err := r.More(); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if r.Consumed() != total || r.Received() != total {
			t.Fatalf("at the end Consumed %d, Received %d, want %d", r.Consumed(), r.Received(), total)
		}
	}
	t.Run("reader", func(t *testing.T) { run(t, NewReader(bytes.NewReader(stream.Bytes()))) })
	t.Run("socket", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		sv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sv.Close()
		if _, err := cl.Write(stream.Bytes()); err != nil {
			t.Fatal(err)
		}
		run(t, NewReader(sv))
	})
}
