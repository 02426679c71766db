package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// chunkReader returns data in reads of the sizes it cycles through, as a socket
// might.
type chunkReader struct {
	data  []byte
	sizes []int
	k     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), c.sizes[c.k%len(c.sizes)])
	c.k++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzReader reads arbitrary input with NextPart, reading each message whole, in
// parts with More, with Rest, or skipping it, through a small stream size and reads
// of varying size, and checks every message against a plain framing of the input.
func FuzzReader(f *testing.F) {
	f.Add([]byte{3, 7, 'Q', 0, 0, 0, 9, 's', 'e', 'l', 'e', 'c', 't', 'S', 0, 0, 0, 4})
	f.Add(append(append([]byte{1, 1}, header(CopyData, 300)...), bytes.Repeat([]byte{'x'}, 300)...))
	f.Add([]byte{0, 2, 'd', 0, 0, 0, 3})
	f.Add([]byte{5, 9, 'd', 0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		const limit = 4096
		stream := 16 + int(data[0])%200
		sizes := []int{1 + int(data[1])%13, 1 + int(data[1])%701, 3}
		input := data[2:]
		r := NewReader(&chunkReader{data: input, sizes: sizes})
		r.stream = stream
		r.SetMaxMessageSize(limit)

		off := 0
		for i := 0; ; i++ {
			// The reference framing of the next message.
			var wantErr error
			var want []byte
			switch rest := input[off:]; {
			case len(rest) == 0:
				wantErr = io.EOF
			case len(rest) < HeaderSize:
				wantErr = io.ErrUnexpectedEOF
			default:
				n := int(binary.BigEndian.Uint32(rest[1:]))
				switch {
				case n < 4:
					wantErr = ErrMalformed
				case n > limit:
					wantErr = &TooLargeError{}
				case len(rest) < n+1:
					wantErr = io.ErrUnexpectedEOF
				default:
					want = rest[:n+1]
				}
			}

			typ, msg, err := r.NextPart()
			if err != nil {
				var tl *TooLargeError
				if errors.As(wantErr, &tl) {
					if !errors.As(err, &tl) {
						t.Fatalf("message %d: %v, want too large", i, err)
					}
				} else if wantErr == nil || !errors.Is(err, wantErr) {
					t.Fatalf("message %d: %v, want %v (% x)", i, err, wantErr, want)
				}
				return
			}
			if wantErr != nil && wantErr != io.ErrUnexpectedEOF {
				t.Fatalf("message %d: got % x, want %v", i, msg, wantErr)
			}
			if len(msg) < HeaderSize || typ != msg[0] || typ != input[off] {
				t.Fatalf("message %d: type %q, % x", i, typ, msg)
			}
			declared := int(binary.BigEndian.Uint32(msg[1:])) + 1
			if r.Remaining() == 0 {
				if declared > stream || len(msg) != declared {
					t.Fatalf("message %d of %d bytes returned whole with %d bytes (stream %d)", i, declared, len(msg), stream)
				}
			} else if len(msg) != stream || len(msg)+r.Remaining() != declared {
				t.Fatalf("message %d of %d bytes: part of %d, %d remaining", i, declared, len(msg), r.Remaining())
			}
			whole := append([]byte(nil), msg...)
			var rerr error
			if r.Remaining() > 0 {
				switch i % 3 {
				case 0:
					for left := r.Remaining(); left > 0; left = r.Remaining() {
						part, err := r.More()
						if err != nil {
							rerr = err
							break
						}
						if len(part) == 0 || len(part) > left || r.Remaining() != left-len(part) {
							t.Fatalf("message %d: part of %d bytes of %d left", i, len(part), left)
						}
						whole = append(whole, part...)
					}
				case 1:
					var m []byte
					if m, rerr = r.Rest(); rerr == nil {
						whole = m
					}
				case 2:
					rerr = r.Discard()
					whole = nil
				}
			}
			if rerr != nil {
				if wantErr != io.ErrUnexpectedEOF || rerr != io.ErrUnexpectedEOF {
					t.Fatalf("message %d: %v reading the rest, want %v", i, rerr, wantErr)
				}
				return
			}
			if wantErr != nil {
				t.Fatalf("message %d read whole, want %v", i, wantErr)
			}
			if whole != nil && !bytes.Equal(whole, want) {
				t.Fatalf("message %d: got % x, want % x", i, whole, want)
			}
			off += len(want)
		}
	})
}
