package wire

import (
	"encoding/binary"
	"io"
)

// Writer buffers outgoing messages and writes them with one call to Flush. Its
// buffer is taken from a pool when something is buffered and given back by Flush, so
// an idle Writer holds none. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	buf    []byte
	pooled *[]byte // the pooled buffer buf was taken from, while it is
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Send appends an encoded message.
func (w *Writer) Send(m interface {
	Encode(dst []byte) ([]byte, error)
}) error {
	w.take(0)
	b, err := m.Encode(w.buf)
	if err != nil {
		return err
	}
	w.buf = b
	return nil
}

// Raw appends a message exactly as given (type byte, length and body).
func (w *Writer) Raw(msg []byte) {
	w.take(len(msg))
	w.buf = append(w.buf, msg...)
}

// take makes room for n more bytes in a pooled buffer, taking one if the Writer has
// none and moving to a larger one when n does not fit (up to the largest pooled size;
// beyond it append grows an unpooled buffer).
func (w *Writer) take(n int) {
	if w.buf == nil {
		w.pooled = getBuf(max(n, minPooledSize))
		w.buf = (*w.pooled)[:0]
		return
	}
	if need := len(w.buf) + n; need > cap(w.buf) && need <= maxPooledSize {
		nb := getBuf(need)
		b := append((*nb)[:0], w.buf...)
		w.give()
		w.pooled, w.buf = nb, b
	}
}

// give returns the pooled buffer, if the Writer took one.
func (w *Writer) give() {
	if w.pooled != nil {
		putBuf(w.pooled)
		w.pooled = nil
	}
}

// Buffered reports how many bytes wait for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes what is buffered and gives the buffer back, so an idle connection
// holds none.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = nil
	w.give()
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

// Reset discards what is buffered and gives the buffer back.
func (w *Writer) Reset() {
	w.buf = nil
	w.give()
}

// AppendMessage appends a message of type typ whose body is given, and returns the
// extended slice.
func AppendMessage(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(body)+4))
	return append(dst, body...)
}
