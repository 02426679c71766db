//go:build linux

package netpark

import (
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// queued waits until a's socket holds bytes to read that the peer sent.
func queued(t *testing.T, a net.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		rawConn(t, a).Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer's bytes never reached the socket")
		}
		runtime.Gosched()
	}
}

// unixPair returns the two ends of a unix stream connection.
func unixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err = net.Dial("unix", ln.Addr().String())
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

// TestQueuedBeforePark: bytes that reached the socket before Park (they came
// between the caller's last read and its Park) wake the connection at once, as does a
// peer's close that came before it, on TCP and unix sockets alike.
func TestQueuedBeforePark(t *testing.T) {
	for _, kind := range []string{"tcp", "unix"} {
		t.Run(kind, func(t *testing.T) {
			p := newParker(t)
			mk := pair
			if kind == "unix" {
				mk = unixPair
			}
			a, b := mk(t)
			if _, err := b.Write([]byte("early")); err != nil {
				t.Fatal(err)
			}
			queued(t, a)
			var pc Conn
			fn, ch := signal()
			if err := p.Park(&pc, rawConn(t, a), fn); err != nil {
				t.Fatal(err)
			}
			woken(t, ch, "bytes queued before Park")

			// The peer's close, seen by a read before Park (a read of EOF leaves
			// it there for the next).
			a2, b2 := mk(t)
			b2.Close()
			buf := make([]byte, 1)
			a2.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := a2.Read(buf); n != 0 || err == nil {
				t.Fatalf("read after the peer's close: %d, %v", n, err)
			}
			var pc2 Conn
			fn2, ch2 := signal()
			if err := p.Park(&pc2, rawConn(t, a2), fn2); err != nil {
				t.Fatal(err)
			}
			woken(t, ch2, "a close before Park")
			if n, err := a2.Read(buf); n != 0 || err == nil {
				t.Fatalf("read after the peer's close: %d, %v", n, err)
			}
		})
	}
}

// TestParkStress parks thousands of connections, TCP and unix, again and again, and
// wakes each by one of the ways a connection wakes, in random order: bytes, the
// peer's close, Wake then close (the descriptor numbers are reused by the next
// round's connections), or the Parker's Close for those left at the end. Every Park
// gets exactly one callback.
func TestParkStress(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	type end struct {
		i     int
		a, b  net.Conn
		pc    Conn
		calls atomic.Int32
		parks int32
		gone  bool // woken by Wake and closed: a new end took its place
	}
	rnd := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	ends := make([]*end, n)
	woke := make(chan *end, 2*n)
	fresh := func(i int) {
		mk := pair
		if i%4 == 0 {
			mk = unixPair
		}
		a, b := mk(t)
		ends[i] = &end{i: i, a: a, b: b}
	}
	park := func(i int) {
		e := ends[i]
		e.parks++
		if err := p.Park(&e.pc, rawConn(t, e.a), func() { e.calls.Add(1); woke <- e }); err != nil {
			t.Fatalf("park %d: %v", i, err)
		}
	}
	for i := range ends {
		fresh(i)
		park(i)
	}
	buf := make([]byte, 16)
	for round := 0; round < 4; round++ {
		order := rnd.Perm(n)[:n/2]
		want := 0
		for _, i := range order {
			e := ends[i]
			switch rnd.IntN(3) {
			case 0:
				e.b.Write([]byte("x"))
				want++
			case 1:
				e.b.Close()
				want++
			case 2:
				if !e.pc.Wake() {
					t.Fatalf("conn %d: Wake of a parked connection reported false", i)
				}
				want++ // its callback's signal, to be taken below
				e.gone = true
				e.a.Close()
				e.b.Close()
				if got := e.calls.Load(); got != e.parks {
					t.Fatalf("conn %d: %d callbacks for %d parks", i, got, e.parks)
				}
				fresh(i)
				park(i)
			}
		}
		for ; want > 0; want-- {
			select {
			case e := <-woke:
				i := e.i
				if got := e.calls.Load(); got != e.parks {
					t.Fatalf("conn %d: %d callbacks for %d parks", i, got, e.parks)
				}
				if e.gone {
					continue
				}
				e.a.SetReadDeadline(time.Now().Add(10 * time.Second))
				if k, err := e.a.Read(buf); k == 1 && err == nil {
					park(i) // bytes: read them and park again
				} else {
					e.a.Close()
					fresh(i)
					park(i)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: %d wake-ups never came", round, want)
			}
		}
		if got := p.Parked(); got != n {
			t.Fatalf("round %d: %d parked, want %d", round, got, n)
		}
	}
	p.Close()
	for i, e := range ends {
		if got := e.calls.Load(); got != e.parks {
			t.Fatalf("conn %d: %d callbacks for %d parks after Close", i, got, e.parks)
		}
	}
	if got := p.Parked(); got != 0 {
		t.Fatalf("%d parked after Close", got)
	}
}
