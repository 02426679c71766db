//go:build linux

package netpark

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parkEvents are the events a parked descriptor waits for: bytes to read, the peer's
// shutdown or close; errors and hang-ups are reported without asking. One-shot: the
// descriptor is disabled once it fires, and the watcher then deregisters it.
const parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// Parker owns an epoll instance and the watcher goroutine that wakes the connections
// parked on it. Its methods are safe for concurrent use.
type Parker struct {
	epfd int // the epoll instance
	evfd int // an eventfd registered as id 0: written by Close to end the watcher
	done chan struct{}

	mu     sync.Mutex
	conns  map[uint64]*Conn // parked, by registration id
	next   uint64           // the last registration id handed out
	closed bool
	once   sync.Once
}

// Conn is one connection's registration with a Parker. The zero value is ready for
// use; a Conn is parked at most once at a time, and may be parked again once woken.
type Conn struct {
	mu    sync.Mutex
	p     *Parker
	rc    syscall.RawConn
	fn    func()
	id    uint64
	armed bool // registered, fn not yet called
}

// New opens an epoll instance and starts its watcher goroutine, which runs until
// Close.
func New() (*Parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, err
	}
	p := &Parker{epfd: epfd, evfd: evfd, done: make(chan struct{}), conns: map[uint64]*Conn{}}
	go p.watch()
	return p, nil
}

// Park registers the descriptor of rc with p and arranges for fn to be called once,
// without blocking, when the descriptor is readable or its peer closed or reset the
// connection, or when c.Wake or p.Close is called, whichever comes first; the
// descriptor is deregistered before fn is called. fn may be called before Park
// returns. On error nothing is registered and fn is never called: the connection is
// closed (rc.Control fails), p is closed (ErrClosed), c is parked already
// (ErrParked), or the kernel refused the registration.
func (p *Parker) Park(c *Conn, rc syscall.RawConn, fn func()) error {
	if p == nil {
		return ErrUnsupported
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		return ErrParked
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.next++
	id := p.next
	p.conns[id] = c
	p.mu.Unlock()
	// An event may come before c is armed: the watcher then waits for c.mu.
	var cerr error
	err := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: parkEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		cerr = epollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.mu.Lock()
		delete(p.conns, id)
		p.mu.Unlock()
		return err
	}
	c.p, c.rc, c.fn, c.id, c.armed = p, rc, fn, id, true
	return nil
}

// Wake deregisters a parked c and calls its callback in the caller's goroutine. It
// reports false, and does nothing, when c is not parked (never was, or was woken
// already). Call it before closing a connection that may be parked.
func (c *Conn) Wake() bool {
	c.mu.Lock()
	if !c.armed {
		c.mu.Unlock()
		return false
	}
	p := c.p
	p.mu.Lock()
	delete(p.conns, c.id)
	p.mu.Unlock()
	fn := c.disarmLocked()
	c.mu.Unlock()
	fn()
	return true
}

// fire wakes c for the event of registration id, unless it was woken meanwhile.
func (c *Conn) fire(id uint64) {
	c.mu.Lock()
	if !c.armed || c.id != id {
		c.mu.Unlock()
		return
	}
	fn := c.disarmLocked()
	c.mu.Unlock()
	fn()
}

// disarmLocked deregisters c's descriptor and returns its callback. A closed
// connection's descriptor needs none: closing it left the epoll set. c.mu is held.
func (c *Conn) disarmLocked() func() {
	epfd := c.p.epfd
	_ = c.rc.Control(func(fd uintptr) {
		_ = epollCtl(epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	fn := c.fn
	c.armed, c.fn, c.rc, c.p = false, nil, nil, nil
	return fn
}

// epollCtl is epoll_ctl(2) made as a raw system call: it never blocks, so the Go
// scheduler need not hand the goroutine's P to another thread for it nor wake its
// monitor thread, as it does for an ordinary system call (unix.EpollCtl) on a busy
// machine. The watcher's epoll_wait, which blocks, stays an ordinary call.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// toWake is a connection the watcher is to wake for the event of registration id.
type toWake struct {
	c  *Conn
	id uint64
}

// watch waits for events and wakes their connections until Close. The registrations
// of one batch of events are taken from conns under one hold of p.mu; the callbacks
// run after it is released, in the order of the events.
func (p *Parker) watch() {
	defer close(p.done)
	evs := make([]unix.EpollEvent, batch)
	wake := make([]toWake, 0, batch)
	for {
		n, err := unix.EpollWait(p.epfd, evs, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// The epoll instance failed: nothing parked would ever wake, so
			// every connection is woken now and no more are parked.
			p.shut()
			return
		}
		closing := false
		p.mu.Lock()
		for _, ev := range evs[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				// Close: the events after it are left registered, for Close to
				// wake.
				closing = true
				break
			}
			if c := p.conns[id]; c != nil {
				delete(p.conns, id)
				wake = append(wake, toWake{c, id})
			}
		}
		p.mu.Unlock()
		for _, w := range wake {
			w.c.fire(w.id)
		}
		clear(wake)
		wake = wake[:0]
		if closing {
			return
		}
	}
}

// shut refuses further parking and wakes every parked connection.
func (p *Parker) shut() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Wake()
	}
}

// Close ends the watcher, wakes every connection still parked (their callbacks run
// in Close's goroutine) and closes the epoll instance. Park fails with ErrClosed
// from then on. Close may be called more than once.
func (p *Parker) Close() error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		one := [8]byte{1}
		_, _ = unix.Write(p.evfd, one[:])
		<-p.done
		// A Park under way when closed was set holds its Conn's lock, and Wake
		// waits for it: once every Conn is woken, no one uses epfd any more.
		p.shut()
		unix.Close(p.epfd)
		unix.Close(p.evfd)
	})
	return nil
}

// Parked returns how many connections are parked now.
func (p *Parker) Parked() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
