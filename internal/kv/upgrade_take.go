package kv

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
)

// Takeover is the new process' side of an upgrade: the listeners received from the
// running kvproxy, used by Start (Options.Takeover), then the clients it hands over.
type Takeover struct {
	conn   *net.UnixConn
	oldPid int

	mu  sync.Mutex
	lns []*inherited

	done chan struct{}
	err  error // why the handover ended early; read after done
	n    int   // clients adopted; read after done
}

type inherited struct {
	kind, listen string
	ln           net.Listener
	taken        bool
}

// maxInherited bounds the listeners one takeover may pass.
const maxInherited = 4096

// DialTakeover connects to a running kvproxy's upgrade socket at path and receives its
// listening sockets. Nothing changes in the running process until Ready; Abort (or
// this process' exit) leaves it serving.
func DialTakeover(path string) (*Takeover, error) {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("kv: takeover %s: %w", path, err)
	}
	t := &Takeover{conn: conn, done: make(chan struct{})}
	if err := t.receiveListeners(); err != nil {
		t.Abort()
		return nil, fmt.Errorf("kv: takeover %s: %w", path, err)
	}
	return t, nil
}

func (t *Takeover) receiveListeners() error {
	_ = t.conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	if err := sendCtl(t.conn, ctlMsg{Op: opHello, Version: upgradeVersion, Pid: os.Getpid()}, nil); err != nil {
		return err
	}
	for {
		m, f, err := recvCtl(t.conn)
		if err != nil {
			return err
		}
		switch m.Op {
		case opListener:
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return err
			}
			t.lns = append(t.lns, &inherited{kind: m.Kind, listen: m.Listen, ln: ln})
			if len(t.lns) > maxInherited {
				return fmt.Errorf("%w: more than %d listeners", ErrBadControl, maxInherited)
			}
		case opListeners:
			t.oldPid = m.Pid
			return nil
		default:
			if f != nil {
				f.Close()
			}
			return fmt.Errorf("%w: %q while listeners were expected", ErrBadControl, m.Op)
		}
	}
}

// OldPid returns the process id of the kvproxy being taken over.
func (t *Takeover) OldPid() int { return t.oldPid }

// Abort gives the takeover up before Ready: the received listeners are closed here
// (the running process keeps its own) and it goes on serving.
func (t *Takeover) Abort() {
	t.conn.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lns {
		l.ln.Close()
	}
	t.lns = nil
}

// take returns the received listener of that kind whose address is listen (a pool's
// listen key, or a stats or metrics address), or nil.
func (t *Takeover) take(kind, listen string) net.Listener {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lns {
		if l.taken || l.kind != kind {
			continue
		}
		if l.listen == listen || (kind != kindPool && sameTCPAddr(listen, l.ln.Addr())) {
			l.taken = true
			return l.ln
		}
	}
	return nil
}

// sameTCPAddr reports whether a listener bound at got is what listening on want
// (host:port, possibly a name or an empty host) would give.
func sameTCPAddr(want string, got net.Addr) bool {
	ga, ok := got.(*net.TCPAddr)
	if !ok {
		return false
	}
	wa, err := net.ResolveTCPAddr("tcp", want)
	if err != nil || wa.Port != ga.Port {
		return false
	}
	if wa.IP == nil || wa.IP.IsUnspecified() {
		return ga.IP == nil || ga.IP.IsUnspecified()
	}
	return wa.IP.Equal(ga.IP)
}

// Ready tells the running kvproxy that p (started with this Takeover) serves: it
// stops accepting and hands its clients over, which p adopts in the background until
// Done. Received listeners p does not use are closed. wait bounds the handover (0:
// none). If Ready fails, the old process goes on serving and p should be shut down.
func (t *Takeover) Ready(p *Proxy, wait time.Duration) error {
	t.mu.Lock()
	for _, l := range t.lns {
		if !l.taken {
			l.ln.Close()
		} else if ul, ok := l.ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(true) // this process owns the socket file now
		}
	}
	t.lns = nil
	t.mu.Unlock()
	_ = t.conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	if err := sendCtl(t.conn, ctlMsg{Op: opReady}, nil); err != nil {
		t.conn.Close()
		return fmt.Errorf("kv: takeover: %w", err)
	}
	dl := time.Time{}
	if wait > 0 {
		dl = time.Now().Add(wait)
	}
	_ = t.conn.SetDeadline(dl)
	go t.adoptClients(p)
	return nil
}

// Done is closed when the old process has handed every client over (or closed it),
// or the control connection failed (Err says why).
func (t *Takeover) Done() <-chan struct{} { return t.done }

// Err returns, after Done, why the handover ended before the old process said it was
// done, or nil.
func (t *Takeover) Err() error { return t.err }

// Adopted returns, after Done, how many clients were handed over.
func (t *Takeover) Adopted() int { return t.n }

func (t *Takeover) adoptClients(p *Proxy) {
	defer close(t.done)
	defer t.conn.Close()
	for {
		m, f, err := recvCtl(t.conn)
		if err != nil {
			t.err = err
			return
		}
		switch m.Op {
		case opClient:
			if p.adopt(m.Pool, f, m.State) {
				t.n++
			}
		case opDone:
			return
		default:
			if f != nil {
				f.Close()
			}
			t.err = fmt.Errorf("%w: %q during the handover", ErrBadControl, m.Op)
			return
		}
	}
}

// adopt serves a client connection handed over by the old process, with its session
// state, in pool name. It reports whether the client is served.
func (p *Proxy) adopt(name string, f *os.File, state []byte) bool {
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("upgrade: client not adopted", "err", err)
		return false
	}
	p.mu.Lock()
	pl := p.pools[name]
	down := p.down
	p.mu.Unlock()
	if pl == nil || down {
		p.log.Info("upgrade: client of a pool this process does not run closed", "pool", name)
		nc.Close()
		return false
	}
	c := newClient(pl, nc)
	if imp, ok := c.codec.(SessionImporter); ok && state != nil {
		sess, err := imp.ImportSession(state)
		if err != nil {
			p.log.Warn("upgrade: client with an invalid session state closed", "pool", name, "err", err)
			nc.Close()
			return false
		}
		c.sess = sess
	}
	return pl.admit(c)
}

// listenPool opens a pool's listener, or takes the one received for its address.
func (p *Proxy) listenPool(pc *nutyml.Pool) (net.Listener, error) {
	if ln := p.opts.Takeover.take(kindPool, listenKey(pc.Listen)); ln != nil {
		if err := setBacklog(ln, pc.Backlog); err != nil {
			p.log.Warn("backlog not changed", "pool", pc.Name, "err", err)
		}
		return ln, nil
	}
	return listen(pc)
}

// listenTCP opens the stats or metrics listener, or takes the one received for addr.
func (p *Proxy) listenTCP(kind, addr string) (net.Listener, error) {
	if ln := p.opts.Takeover.take(kind, addr); ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}
