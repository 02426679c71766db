package kv

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/prometheus/client_golang/prometheus"
)

// socketPair returns both ends of a loopback connection of network ("tcp" or "unix").
func socketPair(t *testing.T, network string) (a, b net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
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
	a, err = net.Dial(network, ln.Addr().String())
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

// TestServerRawIOOnSockets: server connections over TCP and Unix sockets are read and
// written with raw system calls; a connection that is no socket keeps net.Conn's.
func TestServerRawIOOnSockets(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		a, _ := socketPair(t, network)
		if rawConnOf(a) == nil {
			t.Errorf("%s: no raw connection", network)
		}
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if rawConnOf(p) != nil {
		t.Error("net.Pipe: raw connection, want none")
	}
}

// TestRawWriterWaitsForRoom: a batch larger than the socket buffers take at once waits
// for the peer to read (the raw write meets EAGAIN and waits for the descriptor), and
// every byte arrives in order.
func TestRawWriterWaitsForRoom(t *testing.T) {
	a, b := socketPair(t, "tcp")
	w := newRawWriter(rawConnOf(a))
	p := make([]byte, 32<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() { done <- w.writeAll(p) }()
	got := make([]byte, len(p))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p) {
		t.Fatal("bytes differ")
	}
}

// TestRawWriterDeadline: a batch the peer does not read fails at the connection's
// write deadline, as net.Conn's Write does.
func TestRawWriterDeadline(t *testing.T) {
	a, _ := socketPair(t, "tcp")
	w := newRawWriter(rawConnOf(a))
	_ = a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	err := w.writeAll(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writeAll = %v, want a deadline error", err)
	}
}

// lineConn returns a server connection whose replies are lines, with n requests in
// flight, and those requests.
func lineConn(n int) (*serverConn, []*Frag) {
	s := &server{name: "fake", log: slog.Default(), metrics: &serverMetrics{latency: prometheus.ObserverFunc(func(float64) {})}}
	c := &serverConn{srv: s, wake: make(chan struct{}, 1), replyLen: func(b []byte) (int, error) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return i + 1, nil
		}
		return 0, nil
	}}
	var fs []*Frag
	for i := 0; i < n; i++ {
		f := &Frag{sentAt: time.Now()}
		c.inflight = append(c.inflight, f)
		fs = append(fs, f)
	}
	return c, fs
}

// TestServerReaderLastRepliesThenClose: replies the server sends just before it closes
// (they may reach the proxy in one wake-up with the close) are all answered, and the
// reader then reports the close instead of waiting for more.
func TestServerReaderLastRepliesThenClose(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		a, b := socketPair(t, network)
		c, fs := lineConn(3)
		if _, err := b.Write([]byte("one\ntwo\nthree\n")); err != nil {
			t.Fatal(err)
		}
		b.Close()
		out := make(chan error, 1)
		go c.read(a, out)
		select {
		case err := <-out:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("%s: reader ended with %v, want ErrServerClosed", network, err)
			}
		case <-time.After(10 * time.Second):
			a.Close() // the reader waits on a closed peer: end it, then fail
			<-out
			t.Fatalf("%s: the reader did not see the server close", network)
		}
		for i, want := range []string{"one\n", "two\n", "three\n"} {
			if !fs[i].done.Load() || string(fs[i].reply) != want {
				t.Errorf("%s: request %d: done %v reply %q, want %q", network, i, fs[i].done.Load(), fs[i].reply, want)
			}
		}
	}
}

// TestServerReaderBadReply: a reply with no request in flight for it ends the reader
// with ErrBadReply, after the requests before it are answered.
func TestServerReaderBadReply(t *testing.T) {
	a, b := socketPair(t, "tcp")
	c, fs := lineConn(1)
	if _, err := b.Write([]byte("one\nextra\n")); err != nil {
		t.Fatal(err)
	}
	out := make(chan error, 1)
	go c.read(a, out)
	if err := <-out; !errors.Is(err, ErrBadReply) {
		t.Fatalf("reader ended with %v, want ErrBadReply", err)
	}
	if string(fs[0].reply) != "one\n" {
		t.Fatalf("reply %q", fs[0].reply)
	}
}

// TestSocketWritesAllocateNothing: a reply written to a client, a batch written to a
// server and a read of a server's replies allocate nothing.
func TestSocketWritesAllocateNothing(t *testing.T) {
	a, b := socketPair(t, "tcp")
	cl := &client{nc: a, rc: rawConnOf(a)}
	st := &poolState{cfg: &nutyml.Pool{}}
	msg := []byte("VALUE k 0 1\r\nv\r\nEND\r\n")
	sink := make([]byte, 1<<16)
	drain := func(n int) {
		if _, err := io.ReadFull(b, sink[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if n, err := cl.tryWrite(st, msg); err != nil || n != len(msg) {
			t.Fatalf("tryWrite = %d, %v", n, err)
		}
		drain(len(msg))
	}); n != 0 {
		t.Errorf("client write: %v allocations, want 0", n)
	}
	w := newRawWriter(rawConnOf(a))
	if n := testing.AllocsPerRun(100, func() {
		if err := w.writeAll(msg); err != nil {
			t.Fatal(err)
		}
		drain(len(msg))
	}); n != 0 {
		t.Errorf("server write: %v allocations, want 0", n)
	}
}
