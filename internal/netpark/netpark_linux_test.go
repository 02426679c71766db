//go:build linux

package netpark

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns the two ends of a loopback TCP connection: the proxy's side (a) and
// the peer's (b).
func pair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func rawConn(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newParker(t *testing.T) *Parker {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// woken waits (bounded) for a callback's signal.
func woken(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("not woken by %s", what)
	}
}

func signal() (func(), chan struct{}) {
	ch := make(chan struct{}, 16)
	return func() { ch <- struct{}{} }, ch
}

func TestWokenByData(t *testing.T) {
	p := newParker(t)
	a, b := pair(t)
	var pc Conn
	fn, ch := signal()
	if err := p.Park(&pc, rawConn(t, a), fn); err != nil {
		t.Fatal(err)
	}
	if n := p.Parked(); n != 1 {
		t.Fatalf("%d parked, want 1", n)
	}
	select {
	case <-ch:
		t.Fatal("woken with nothing to read")
	default:
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	woken(t, ch, "data")
	if n := p.Parked(); n != 0 {
		t.Fatalf("%d parked after the wake-up, want 0", n)
	}
	buf := make([]byte, 4)
	if n, err := a.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if pc.Wake() {
		t.Fatal("Wake of a connection already woken reported true")
	}
}

func TestWokenByPeerClose(t *testing.T) {
	p := newParker(t)
	a, b := pair(t)
	var pc Conn
	fn, ch := signal()
	if err := p.Park(&pc, rawConn(t, a), fn); err != nil {
		t.Fatal(err)
	}
	b.Close()
	woken(t, ch, "the peer's close")
	if _, err := a.Read(make([]byte, 4)); err != io.EOF {
		t.Fatalf("read after the peer's close: %v, want EOF", err)
	}
}

func TestWakeThenClose(t *testing.T) {
	p := newParker(t)
	a, b := pair(t)
	var pc Conn
	var calls atomic.Int32
	if err := p.Park(&pc, rawConn(t, a), func() { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if !pc.Wake() {
		t.Fatal("Wake of a parked connection reported false")
	}
	if calls.Load() != 1 {
		t.Fatalf("callback called %d times by Wake, want 1 (in Wake's goroutine)", calls.Load())
	}
	if pc.Wake() {
		t.Fatal("second Wake reported true")
	}
	// Deregistered: data and the close no longer reach the callback. Park another
	// connection and wake it by data, to know the watcher has looked at its events.
	b.Write([]byte("late"))
	a.Close()
	a2, b2 := pair(t)
	var pc2 Conn
	fn, ch := signal()
	if err := p.Park(&pc2, rawConn(t, a2), fn); err != nil {
		t.Fatal(err)
	}
	b2.Write([]byte("y"))
	woken(t, ch, "data")
	if calls.Load() != 1 {
		t.Fatalf("callback of a woken connection called %d times, want 1", calls.Load())
	}
}

func TestParkErrors(t *testing.T) {
	p := newParker(t)
	a, _ := pair(t)
	var pc Conn
	rc := rawConn(t, a)
	never := func() { t.Error("callback of a failed Park called") }
	if err := p.Park(&pc, rc, func() {}); err != nil {
		t.Fatal(err)
	}
	if err := p.Park(&pc, rc, never); !errors.Is(err, ErrParked) {
		t.Fatalf("second Park: %v, want ErrParked", err)
	}
	pc.Wake()
	a.Close()
	var pc2 Conn
	if err := p.Park(&pc2, rc, never); err == nil {
		t.Fatal("Park of a closed connection succeeded")
	}
	if n := p.Parked(); n != 0 {
		t.Fatalf("%d parked after failed Parks, want 0", n)
	}
	var nilP *Parker
	if err := nilP.Park(&pc2, rc, never); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Park on a nil Parker: %v, want ErrUnsupported", err)
	}
}

func TestCloseWakesEveryone(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var calls atomic.Int32
	conns := make([]Conn, n)
	for i := range conns {
		a, _ := pair(t)
		if err := p.Park(&conns[i], rawConn(t, a), func() { calls.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if c := calls.Load(); c != n {
		t.Fatalf("Close woke %d of %d parked connections", c, n)
	}
	a, _ := pair(t)
	var pc Conn
	if err := p.Park(&pc, rawConn(t, a), func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Park after Close: %v, want ErrClosed", err)
	}
	p.Close()
}

// TestDescriptorReuse: a connection woken and closed leaves no registration behind,
// so a new connection given the same descriptor number is woken for its own events.
func TestDescriptorReuse(t *testing.T) {
	p := newParker(t)
	fd := func(c net.Conn) (n uintptr) {
		rawConn(t, c).Control(func(f uintptr) { n = f })
		return n
	}
	for i := 0; i < 20; i++ {
		a, b := pair(t)
		var pc Conn
		var stale atomic.Int32
		if err := p.Park(&pc, rawConn(t, a), func() { stale.Add(1) }); err != nil {
			t.Fatal(err)
		}
		old := fd(a)
		pc.Wake()
		a.Close()
		b.Close()
		a2, b2 := pair(t)
		var pc2 Conn
		fn, ch := signal()
		if err := p.Park(&pc2, rawConn(t, a2), fn); err != nil {
			t.Fatal(err)
		}
		b2.Write([]byte("z"))
		woken(t, ch, "data")
		if stale.Load() != 1 {
			t.Fatalf("round %d: the closed connection's callback ran %d times (fd %d, new fd %d)", i, stale.Load(), old, fd(a2))
		}
	}
}

// TestExactlyOnce races the watcher (data and the peer's close) against Wake on the
// same parked connection, over and over: the callback runs once per Park.
func TestExactlyOnce(t *testing.T) {
	p := newParker(t)
	a, b := pair(t)
	rc := rawConn(t, a)
	var pc Conn
	var calls atomic.Int32
	buf := make([]byte, 64)
	for i := 0; i < 500; i++ {
		done := make(chan struct{}, 2)
		fn := func() { calls.Add(1); done <- struct{}{} }
		if err := p.Park(&pc, rc, fn); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); b.Write([]byte("d")) }()
		go func() { defer wg.Done(); pc.Wake() }()
		wg.Wait()
		woken(t, done, "data or Wake")
		if got := calls.Load(); got != int32(i+1) {
			t.Fatalf("round %d: %d callbacks, want %d", i, got, i+1)
		}
		// Take the byte so that the next Park waits again.
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := a.Read(buf[:1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 500 {
		t.Fatalf("%d callbacks for 500 Parks", got)
	}
}

// TestEpollCtlErrors checks that the raw epoll_ctl reports the kernel's refusals as
// their errno, and that Park passes them on with nothing registered.
func TestEpollCtlErrors(t *testing.T) {
	p := newParker(t)
	a, _ := pair(t)
	rc := rawConn(t, a)
	var fd int
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		t.Fatal(err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("DEL of an unregistered descriptor: %v, want ENOENT", err)
	}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		t.Fatal(err)
	}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second ADD: %v, want EEXIST", err)
	}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		t.Fatal(err)
	}

	// A regular file cannot be watched by epoll: Park fails with EPERM.
	f, err := os.CreateTemp(t.TempDir(), "park")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var pc Conn
	if err := p.Park(&pc, frc, func() { t.Error("callback of a failed Park called") }); !errors.Is(err, unix.EPERM) {
		t.Fatalf("Park of a regular file: %v, want EPERM", err)
	}
	if n := p.Parked(); n != 0 {
		t.Fatalf("%d parked after a refused Park, want 0", n)
	}
}

// TestCallbackMayPark: the watcher calls no callback while holding the Parker's lock,
// however many events one epoll_wait returns: each of many connections woken
// together parks its descriptor again from its callback (Park and Parked take the
// lock), and every second callback comes, once.
func TestCallbackMayPark(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2 * batch
	type end struct {
		a, b        net.Conn
		first, then Conn
		calls       atomic.Int32
	}
	ends := make([]*end, n)
	again := make(chan *end, n)
	errs := make(chan error, n)
	for i := range ends {
		a, b := pair(t)
		e := &end{a: a, b: b}
		ends[i] = e
		rc := rawConn(t, a)
		if err := p.Park(&e.first, rc, func() {
			_ = p.Parked()
			// The bytes are still unread: the new registration fires at once.
			if err := p.Park(&e.then, rc, func() { e.calls.Add(1); again <- e }); err != nil {
				errs <- err
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range ends {
		if _, err := e.b.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// A callback run under the lock would leave the watcher stuck: then Close would
	// wait for it forever, so it is called only once every callback came.
	for got := 0; got < n; got++ {
		select {
		case <-again:
		case err := <-errs:
			t.Fatalf("Park from a callback: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d callbacks that park again came", got, n)
		}
	}
	p.Close()
	for i, e := range ends {
		if c := e.calls.Load(); c != 1 {
			t.Fatalf("conn %d: second callback called %d times, want 1", i, c)
		}
	}
	if got := p.Parked(); got != 0 {
		t.Fatalf("%d parked after Close", got)
	}
}
