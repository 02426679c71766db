package wire

import (
	"encoding/binary"
	"io"
)

const (
	// HeaderSize is the size of a regular message's header: type byte and length.
	HeaderSize = 5
	// MaxStartupPacketSize bounds a startup packet (StartupMessage, SSLRequest,
	// CancelRequest, GSSENCRequest), as PostgreSQL does.
	MaxStartupPacketSize = 10000
	// DefaultMaxMessageSize bounds a regular message unless SetMaxMessageSize says
	// otherwise.
	DefaultMaxMessageSize = 256 << 20

	smallSize = 512
)

// Reader reads PostgreSQL messages from an io.Reader. It is not safe for concurrent
// use.
type Reader struct {
	rd     io.Reader
	small  [smallSize]byte
	buf    []byte  // small[:] or *pooled
	pooled *[]byte // non-nil while buf comes from the pool
	r, w   int     // buf[r:w] is read but not yet returned
	max    int
}

// NewReader returns a Reader on rd with the default message size limit.
func NewReader(rd io.Reader) *Reader {
	r := &Reader{rd: rd, max: DefaultMaxMessageSize}
	r.buf = r.small[:]
	return r
}

// SetMaxMessageSize sets the largest regular message, in bytes including the length
// field, that Next accepts. n <= 0 restores the default.
func (r *Reader) SetMaxMessageSize(n int) {
	if n <= 0 {
		n = DefaultMaxMessageSize
	}
	r.max = n
}

// Buffered reports how many bytes have been read from the underlying reader and not
// yet returned.
func (r *Reader) Buffered() int { return r.w - r.r }

// HasMessage reports whether a whole message is buffered, so that Next will return
// without reading from the underlying reader.
func (r *Reader) HasMessage() bool {
	if r.w-r.r < HeaderSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	return r.w-r.r >= n+1
}

// Next returns the next regular message: its type byte and the whole message as it
// arrived (type byte, 4-byte length, body). The slice is valid until the next call to
// Next, ReadStartup or Release.
func (r *Reader) Next() (typ byte, msg []byte, err error) {
	for {
		if r.w-r.r >= HeaderSize {
			typ = r.buf[r.r]
			n := int(binary.BigEndian.Uint32(r.buf[r.r+1:]))
			if n < 4 {
				return 0, nil, &MalformedError{Reason: "length below 4"}
			}
			if n > r.max {
				return 0, nil, &TooLargeError{Type: typ, Size: n, Limit: r.max}
			}
			total := n + 1
			if r.w-r.r >= total {
				msg = r.buf[r.r : r.r+total]
				r.r += total
				return typ, msg, nil
			}
			r.reserve(total)
		}
		if err := r.fill(); err != nil {
			return 0, nil, err
		}
	}
}

// ReadStartup reads a startup packet (length-prefixed, no type byte) and returns it
// whole, length included. The slice is valid until the next call to Next, ReadStartup
// or Release.
func (r *Reader) ReadStartup() ([]byte, error) {
	for {
		if r.w-r.r >= 4 {
			n := int(binary.BigEndian.Uint32(r.buf[r.r:]))
			if n < 8 {
				return nil, &MalformedError{Reason: "startup packet length below 8"}
			}
			if n > MaxStartupPacketSize {
				return nil, &TooLargeError{Size: n, Limit: MaxStartupPacketSize}
			}
			if r.w-r.r >= n {
				msg := r.buf[r.r : r.r+n]
				r.r += n
				return msg, nil
			}
			r.reserve(n)
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// Release gives back any pooled buffer when nothing is buffered. Call it when the
// connection goes idle; Next and ReadStartup do it themselves before they block.
func (r *Reader) Release() {
	if r.r == r.w {
		r.r, r.w = 0, 0
		if r.pooled != nil {
			putBuf(r.pooled)
			r.pooled = nil
			r.buf = r.small[:]
		}
	}
}

// reserve makes room for a message of total bytes starting at r.r.
func (r *Reader) reserve(total int) {
	if total <= len(r.buf)-r.r {
		return
	}
	if total <= len(r.buf) {
		r.compact()
		return
	}
	nb := getBuf(total)
	copy(*nb, r.buf[r.r:r.w])
	r.w -= r.r
	r.r = 0
	if r.pooled != nil {
		putBuf(r.pooled)
	}
	r.pooled = nb
	r.buf = *nb
}

func (r *Reader) compact() {
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
}

// fill reads once from the underlying reader. An idle Reader reads into its small
// inline array; when a read fills that array, more is probably coming, so the data
// moves to a pooled buffer.
func (r *Reader) fill() error {
	if r.r == r.w {
		r.Release()
	} else if r.w == len(r.buf) {
		if r.r > 0 {
			r.compact()
		} else {
			r.reserve(len(r.buf) * 2)
		}
	}
	if r.pooled == nil && r.w == len(r.buf) {
		r.reserve(minPooledSize)
	}
	n, err := r.rd.Read(r.buf[r.w:])
	r.w += n
	if n > 0 {
		if r.pooled == nil && r.w == len(r.buf) {
			r.reserve(minPooledSize)
		}
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF && r.w > r.r {
		err = io.ErrUnexpectedEOF
	}
	return err
}
