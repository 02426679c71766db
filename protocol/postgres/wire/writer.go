package wire

import (
	"encoding/binary"
	"io"
)

// Writer buffers outgoing messages and writes them with one call to Flush. It is not
// safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Send appends an encoded message.
func (w *Writer) Send(m interface {
	Encode(dst []byte) ([]byte, error)
}) error {
	b, err := m.Encode(w.buf)
	if err != nil {
		return err
	}
	w.buf = b
	return nil
}

// Raw appends a message exactly as given (type byte, length and body).
func (w *Writer) Raw(msg []byte) { w.buf = append(w.buf, msg...) }

// Buffered reports how many bytes wait for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes what is buffered. Buffers grown beyond 64 KiB are dropped afterwards
// so one large result does not pin memory for the life of the connection.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > 64<<10 {
		w.buf = nil
	} else {
		w.buf = w.buf[:0]
	}
	return err
}

// WriteThrough writes what is buffered and then p, without copying p into the
// buffer: for the parts of a message too large to buffer.
func (w *Writer) WriteThrough(p []byte) error {
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := w.w.Write(p)
	return err
}

// Reset discards what is buffered.
func (w *Writer) Reset() { w.buf = w.buf[:0] }

// AppendMessage appends a message of type typ whose body is given, and returns the
// extended slice.
func AppendMessage(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(body)+4))
	return append(dst, body...)
}
