package wire

import (
	"encoding/binary"
	"io"
	"os"
	"syscall"
)

// Writer buffers outgoing messages and writes them with one call to Flush. Its
// buffer is taken from a pool when something is buffered and given back by Flush, so
// an idle Writer holds none. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	buf    []byte
	pooled *[]byte // the pooled buffer buf was taken from, while it is

	// raw is w's file descriptor when it is one in non-blocking mode (TCP and unix
	// connections): writes are then raw system calls (rawio.go), waiting for the
	// descriptor to be writable as net.Conn.Write does, deadlines included. out is
	// what writeRaw has still to write, outErr what it met.
	raw      syscall.RawConn
	rawWrite func(fd uintptr) bool // w.writeRaw, bound once
	out      []byte
	outErr   error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w}
	if sc, ok := w.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil && nonBlocking(raw) {
			wr.raw = raw
			wr.rawWrite = wr.writeRaw
		}
	}
	return wr
}

// write writes p whole, through the descriptor when the Writer has one.
func (w *Writer) write(p []byte) error {
	if w.raw == nil {
		_, err := w.w.Write(p)
		return err
	}
	w.out, w.outErr = p, nil
	err := w.raw.Write(w.rawWrite)
	w.out = nil
	if err != nil {
		return err
	}
	if w.outErr != nil {
		return os.NewSyscallError("write", w.outErr)
	}
	return nil
}

// writeRaw is write's attempt: false when the descriptor cannot take more yet.
func (w *Writer) writeRaw(fd uintptr) bool {
	for len(w.out) > 0 {
		n, err := sysWrite(fd, w.out, true)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			w.outErr = err
			return true
		case n == 0:
			w.outErr = io.ErrShortWrite
			return true
		}
		w.out = w.out[n:]
	}
	return true
}

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
	err := w.write(w.buf)
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
	return w.write(p)
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
