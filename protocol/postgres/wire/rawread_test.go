package wire

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// unixPair returns both ends of a unix stream connection.
func unixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestRawReadErrors: an idle Reader's raw read (nothing buffered) fails as
// net.Conn.Read does, so that callers' checks hold: a passed read deadline is
// os.ErrDeadlineExceeded and a timeout net.Error, the connection closed under a
// waiting read is net.ErrClosed, the peer's close is io.EOF, and its reset is
// ECONNRESET; on TCP and unix sockets alike.
func TestRawReadErrors(t *testing.T) {
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			mk := tcpPair
			if kind == "unix" {
				mk = unixPair
			}
			a, _ := mk(t)
			r := NewReader(a)
			if !r.nonblock {
				t.Fatal("the reader does not read raw")
			}
			a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, _, err := r.Next()
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read past the deadline: %v; want a timeout", err)
			}
			// The deadline moved on: the Reader reads again.
			a.SetReadDeadline(time.Time{})

			done := make(chan error, 1)
			go func() { _, _, err := r.Next(); done <- err }()
			// The read waits for bytes: close the connection under it (a
			// close before the read started fails it the same way).
			a.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read of a connection closed: %v; want net.ErrClosed", err)
			}

			c, d := mk(t)
			rc := NewReader(c)
			d.Close()
			if _, _, err := rc.Next(); err != io.EOF {
				t.Fatalf("read after the peer's close: %v; want io.EOF", err)
			}
		})
	}
	a, b := tcpPair(t)
	if err := b.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	b.Close() // with linger 0: a reset
	r := NewReader(a)
	if _, _, err := r.Next(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's reset: %v; want ECONNRESET", err)
	}
}
