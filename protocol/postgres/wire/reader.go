package wire

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"sync/atomic"
	"syscall"
)

const (
	// HeaderSize is the size of a regular message's header: type byte and length.
	HeaderSize = 5
	// MaxStartupPacketSize bounds a startup packet (StartupMessage, SSLRequest,
	// CancelRequest, GSSENCRequest), as PostgreSQL does.
	MaxStartupPacketSize = 10000
	// DefaultMaxMessageSize bounds a regular message unless SetMaxMessageSize says
	// otherwise: 2147483647, PgBouncer's default max_packet_size.
	DefaultMaxMessageSize = math.MaxInt32
	// StreamSize is the largest message NextPart returns whole. A larger one is
	// returned in parts of at most this size, so a Reader never holds more than
	// about StreamSize bytes of it.
	StreamSize = maxPooledSize

	smallSize = 512
)

// Reader reads PostgreSQL messages from an io.Reader. It is not safe for concurrent
// use.
type Reader struct {
	rd io.Reader
	// raw is rd's file descriptor when it has one (TCP and unix connections): an
	// idle Reader then waits for it to become readable holding no buffer at all, and
	// takes a pooled one only for the read that finds bytes. small is the buffer
	// an idle Reader without one reads into.
	raw     syscall.RawConn
	rawRead func(fd uintptr) bool // r.readRaw, bound once
	rawN    int                   // what the last readRaw read
	rawErr  error
	small   []byte
	buf     []byte  // small or *pooled
	pooled  *[]byte // non-nil while buf comes from the pool
	r, w    int     // buf[r:w] is read but not yet returned
	max     int

	// nonblock: raw's descriptor is in non-blocking mode, so readRaw reads it with
	// a raw system call (rawio.go).
	nonblock bool

	// A message NextPart streams: rem bytes of it are not yet returned; head is
	// its first part while Rest may still read it whole.
	rem    int
	head   []byte
	stream int // StreamSize; smaller in tests

	// recv counts the bytes read from rd so far; Received reads it from any
	// goroutine.
	recv atomic.Int64
}

// ErrNotStreaming reports a call to Rest that does not directly follow a NextPart
// that began streaming a message.
var ErrNotStreaming = errors.New("wire: no streamed message to read whole")

// NewReader returns a Reader on rd with the default message size limit.
func NewReader(rd io.Reader) *Reader {
	r := &Reader{rd: rd, max: DefaultMaxMessageSize, stream: StreamSize}
	if sc, ok := rd.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
			r.rawRead = r.readRaw
			r.nonblock = nonBlocking(raw)
		}
	}
	if r.raw == nil {
		r.small = make([]byte, smallSize)
	}
	r.buf = r.small
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

// Received reports how many bytes the Reader has read from its underlying reader so
// far. Unlike the Reader's other methods it may be called from any goroutine: with
// the byte count of the connection's receive queue (read after it) it bounds the
// bytes the peer had sent at that moment.
func (r *Reader) Received() int64 { return r.recv.Load() }

// Consumed reports the stream offset just past what the Reader has returned: between
// messages, where the next one starts. Offsets count from the same origin as
// Received.
func (r *Reader) Consumed() int64 { return r.recv.Load() - int64(r.w-r.r) }

// HasMessage reports whether a whole message is buffered, so that Next will return
// without reading from the underlying reader.
func (r *Reader) HasMessage() bool {
	if r.rem > 0 || r.w-r.r < HeaderSize {
		return false
	}
	n := int(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	return r.w-r.r >= n+1
}

// Next returns the next regular message: its type byte and the whole message as it
// arrived (type byte, 4-byte length, body). The slice is valid until the next call to
// Next, ReadStartup or Release. The message is buffered whole, however large (up to
// the maximum): for messages that need not be, use NextPart.
func (r *Reader) Next() (typ byte, msg []byte, err error) {
	if err := r.Discard(); err != nil {
		return 0, nil, err
	}
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

// NextPart returns the next regular message like Next when it is at most StreamSize
// bytes long. A longer one is not buffered whole: msg is then its first StreamSize
// bytes (header included), Remaining reports how many bytes follow, and the caller
// reads them with More (or Discard, or reads the message whole after all with Rest)
// before it calls NextPart again; a NextPart or Next that finds bytes of the message
// unread discards them. The limit on the message size applies before anything is
// read. The slice is valid until the next call on the Reader.
func (r *Reader) NextPart() (typ byte, msg []byte, err error) {
	if err := r.Discard(); err != nil {
		return 0, nil, err
	}
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
			if total > r.stream {
				msg, err = r.startStream(total)
				return typ, msg, err
			}
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

// startStream returns the first part of a message of total bytes that starts at r.r
// and sets it up to be read in parts.
func (r *Reader) startStream(total int) ([]byte, error) {
	r.reserve(max(r.stream, minPooledSize))
	for r.w-r.r < r.stream {
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
	msg := r.buf[r.r : r.r+r.stream]
	r.r += r.stream
	r.rem = total - r.stream
	r.head = msg
	return msg, nil
}

// Remaining reports how many bytes of the message NextPart began streaming are still
// to be read.
func (r *Reader) Remaining() int { return r.rem }

// More returns the next part of the message NextPart began streaming: at least one
// byte and at most what the Reader's buffer holds. It returns io.EOF when nothing of
// the message is left. The slice is valid until the next call on the Reader.
func (r *Reader) More() ([]byte, error) {
	if r.rem == 0 {
		return nil, io.EOF
	}
	r.head = nil
	if r.r == r.w {
		r.r, r.w = 0, 0
		if len(r.buf) < minPooledSize {
			r.reserve(minPooledSize)
		}
		n, err := r.rd.Read(r.buf)
		r.w = n
		r.recv.Add(int64(n))
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	n := min(r.rem, r.w-r.r)
	chunk := r.buf[r.r : r.r+n]
	r.r += n
	r.rem -= n
	return chunk, nil
}

// Discard skips what is left of the message NextPart began streaming.
func (r *Reader) Discard() error {
	for r.rem > 0 {
		if _, err := r.More(); err != nil {
			return err
		}
	}
	return nil
}

// Rest reads the rest of the message NextPart just began streaming and returns the
// message whole, header included, in a buffer of its own that is not pooled and not
// kept (so the caller bounds what this costs by the maximum message size). It must
// directly follow that NextPart; otherwise it returns ErrNotStreaming.
func (r *Reader) Rest() ([]byte, error) {
	if r.rem == 0 || r.head == nil {
		return nil, ErrNotStreaming
	}
	msg := make([]byte, len(r.head)+r.rem)
	k := copy(msg, r.head)
	n := min(r.rem, r.w-r.r)
	k += copy(msg[k:], r.buf[r.r:r.r+n])
	r.r += n
	r.rem -= n
	r.head = nil
	if r.rem > 0 {
		m, err := io.ReadFull(r.rd, msg[k:])
		r.recv.Add(int64(m))
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			r.rem = 0
			return nil, err
		}
		r.rem = 0
	}
	return msg, nil
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
	if r.r == r.w && r.rem == 0 {
		r.r, r.w = 0, 0
		if r.pooled != nil {
			putBuf(r.pooled)
			r.pooled = nil
			r.buf = r.small
		}
	}
}

// Free gives back the Reader's buffer whatever it holds, when its connection is done
// with. The Reader starts afresh if it is used again.
func (r *Reader) Free() {
	r.r, r.w, r.rem, r.head = 0, 0, 0, nil
	r.Release()
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

// fillRaw reads once from the file descriptor of an idle Reader: it takes a pooled
// buffer for each attempt and gives it back when nothing is there to read, so the
// Reader holds none while it waits.
func (r *Reader) fillRaw() error {
	r.rawN, r.rawErr = 0, nil
	if err := r.raw.Read(r.rawRead); err != nil {
		return err
	}
	if r.rawErr != nil {
		return os.NewSyscallError("read", r.rawErr)
	}
	if r.rawN == 0 {
		return io.EOF
	}
	r.r, r.w = 0, r.rawN
	r.recv.Add(int64(r.rawN))
	return nil
}

// readRaw is fillRaw's attempt at a read: false when nothing is there yet.
func (r *Reader) readRaw(fd uintptr) bool {
	b := getBuf(minPooledSize)
	var n int
	var err error
	for {
		n, err = sysRead(fd, *b, r.nonblock)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		putBuf(b)
		return false
	}
	if n <= 0 {
		putBuf(b)
		n = 0
	} else {
		r.pooled = b
		r.buf = *b
	}
	r.rawN, r.rawErr = n, err
	return true
}

// fill reads once from the underlying reader. An idle Reader reads into its small
// inline array; when a read fills that array, more is probably coming, so the data
// moves to a pooled buffer.
func (r *Reader) fill() error {
	if r.r == r.w {
		r.Release()
		if r.raw != nil && r.pooled == nil {
			return r.fillRaw()
		}
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
	r.recv.Add(int64(n))
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
