package kv

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/poolsuite/poolsuite/internal/sysio"
)

// A server connection's socket is non-blocking, so its reads and writes are raw system
// calls made through its syscall.RawConn: the Go scheduler then neither hands the
// goroutine's P to another thread for the call nor wakes its monitor thread for it, as
// it does for net.Conn's own Read and Write when a call on a busy machine outlasts its
// tick. A connection that is no syscall.Conn keeps net.Conn's Read and Write.

// rawConnOf returns nc's syscall.RawConn, or nil when it has none.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWriter writes a server connection's batches with raw system calls.
type rawWriter struct {
	rc  syscall.RawConn
	b   []byte // what is left to write
	err error
	fn  func(uintptr) bool
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

// writeAll writes all of b, waiting for the socket while it is full; the connection's
// write deadline applies.
func (w *rawWriter) writeAll(b []byte) error {
	w.b, w.err = b, nil
	err := w.rc.Write(w.fn)
	if err == nil {
		err = w.err
	}
	w.b, w.err = nil, nil
	return err
}

// write is writeAll's callback: it writes until b is written (true), the socket is
// full (false: wait for it) or the write fails (true, err set).
func (w *rawWriter) write(fd uintptr) bool {
	for len(w.b) > 0 {
		n, e := sysio.Write(fd, w.b)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false
		case e != 0:
			w.err = os.NewSyscallError("write", e)
			return true
		}
		w.b = w.b[n:]
	}
	return true
}

// readRaw runs the reader's loop within one RawConn.Read: its callback reads and
// answers replies until a read finds the socket empty (EAGAIN), then returns false to
// wait for it. A read that did not fill the buffer is no proof that the next finds
// nothing: the peer's close may have come with the last bytes, in the same wake-up.
// It returns the read error, or nil when the replies broke the protocol (rd.perr set).
func (rd *serverReader) readRaw(rc syscall.RawConn) error {
	var ioErr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			if rd.perr = rd.grow(); rd.perr != nil {
				return true
			}
			n, e := sysio.Read(fd, rd.buf[rd.w:])
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != 0:
				ioErr = os.NewSyscallError("read", e)
				return true
			case n == 0:
				ioErr = io.EOF
				return true
			}
			if rd.perr = rd.consume(n); rd.perr != nil {
				return true
			}
		}
	})
	if err == nil {
		err = ioErr
	}
	return err
}
