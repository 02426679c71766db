package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		a.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

// TestRawIOOnSockets: on a TCP connection (non-blocking, as every Go socket) the
// Reader and the Writer use raw system calls, and messages go through whole both
// ways.
func TestRawIOOnSockets(t *testing.T) {
	a, b := tcpPair(t)
	w, r := NewWriter(a), NewReader(b)
	if w.raw == nil || !r.nonblock {
		t.Fatalf("on TCP: writer raw %v, reader nonblock %v; want both", w.raw != nil, r.nonblock)
	}
	for i := 0; i < 3; i++ {
		msg := AppendMessage(nil, 'Q', []byte("SELECT 1\x00"))
		w.Raw(msg)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		typ, got, err := r.Next()
		if err != nil || typ != 'Q' || !bytes.Equal(got, msg) {
			t.Fatalf("Next = %q %q %v", typ, got, err)
		}
	}
}

// TestRawWriteWaitsForRoom: a write larger than the socket buffers can take at once
// waits for the peer to read (the raw write meets EAGAIN and waits for the
// descriptor), and every byte arrives in order.
func TestRawWriteWaitsForRoom(t *testing.T) {
	a, b := tcpPair(t)
	w := NewWriter(a)
	p := make([]byte, 32<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() { done <- w.WriteThrough(p) }()
	got := make([]byte, len(p))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p) {
		t.Fatal("bytes written raw arrived changed")
	}
}

// TestRawWriteDeadline: a raw write the peer does not read fails at the write
// deadline with the error net.Conn.Write gives: a timeout.
func TestRawWriteDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	w := NewWriter(a)
	if err := a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	err := w.WriteThrough(make([]byte, 64<<20))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write past the deadline: %v; want a timeout", err)
	}
}

// TestRawWritePeerGone: writes to a peer that has closed fail with the system
// call's error, not silently.
func TestRawWritePeerGone(t *testing.T) {
	a, b := tcpPair(t)
	w := NewWriter(a)
	b.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		w.Raw(AppendMessage(nil, 'Q', make([]byte, 4096)))
		err = w.Flush()
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("writing to a closed peer: %v; want EPIPE or ECONNRESET", err)
	}
}

// TestBlockingDescriptorNotRaw: a descriptor in blocking mode keeps ordinary system
// calls (a raw one could block the thread without the scheduler knowing), and
// messages still go through it.
func TestBlockingDescriptorNotRaw(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	pr, pw := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer pr.Close()
	defer pw.Close()
	w, r := NewWriter(pw), NewReader(pr)
	if w.raw != nil || r.nonblock {
		t.Fatalf("on a blocking pipe: writer raw %v, reader nonblock %v; want neither", w.raw != nil, r.nonblock)
	}
	msg := AppendMessage(nil, 'Q', []byte("SELECT 1\x00"))
	w.Raw(msg)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := r.Next()
	if err != nil || typ != 'Q' || !bytes.Equal(got, msg) {
		t.Fatalf("Next = %q %q %v", typ, got, err)
	}
}
