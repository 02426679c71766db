package kv

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"sync/atomic"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/sharding"
)

// poolState is one configuration of a pool: its settings, placement and servers. It is
// immutable once published; a reload publishes a new one. It is the Router clients
// route with.
type poolState struct {
	cfg     *nutyml.Pool
	codec   Codec
	shards  *sharding.Pool
	nodes   [][]*server // [shard][0 = primary, 1.. = replicas]
	all     []*server
	timeout time.Duration
	policy  sharding.ReadPolicy
}

// Shard implements Router.
func (st *poolState) Shard(key []byte) int { return st.shards.Pick(key) }

func (st *poolState) servers() []*server {
	if st == nil {
		return nil
	}
	return st.all
}

// dispatch sends f to the server that serves it, or fails it at once when none can.
func (st *poolState) dispatch(f *Frag) {
	if f.Shard < 0 || f.Shard >= len(st.nodes) {
		f.complete(nil, ErrNoServer)
		return
	}
	nodes := st.nodes[f.Shard]
	node := sharding.NodeID{Shard: f.Shard}
	if f.Replicate && len(nodes) > 1 {
		st.replicate(f, nodes)
		return
	}
	if len(nodes) > 1 {
		if f.ReadOnly && st.policy != sharding.ReadPrimary {
			n, ok := st.shards.PickRead(f.Shard, st.policy)
			if !ok {
				f.complete(nil, ErrNoReplica)
				return
			}
			node = n
		}
		if node.Replica == 0 && !st.shards.Live(node) {
			f.complete(nil, ErrPrimaryDown)
			return
		}
	}
	s := nodes[node.Replica]
	f.srv = s
	s.enqueue(f)
}

// replicate sends a replicated fragment (Frag.Replicate) to every live server of its
// shard. One of them answers: for a write, the primary or, while it is down, the
// first live replica in the file's order; for a read that also writes (ReadOnly as
// well, such as memcached's gat), the server the read policy picks, or the write's
// choice when that one is down. Every other live server gets a copy. A copy has its
// own payload (f's belongs to the client again as soon as f completes) and f's lane
// and read time, so it travels on the connection the client's own requests to that
// server use, in order, and expires with f's deadline. Servers that are down get no
// copy: they miss the write. With no live server at all f fails with ErrNoServer.
func (st *poolState) replicate(f *Frag, nodes []*server) {
	answer := -1
	if f.ReadOnly && st.policy != sharding.ReadPrimary {
		n, ok := st.shards.PickRead(f.Shard, st.policy)
		if !ok {
			f.complete(nil, ErrNoReplica)
			return
		}
		if st.shards.Live(n) {
			answer = n.Replica
		}
	}
	for j := 0; answer < 0 && j < len(nodes); j++ {
		if st.shards.Live(sharding.NodeID{Shard: f.Shard, Replica: j}) {
			answer = j
		}
	}
	if answer < 0 {
		f.complete(nil, ErrNoServer)
		return
	}
	// The copies take their payload before f is queued: once f completes, the client
	// may reuse it.
	var buf [4]*Frag
	copies := buf[:0]
	for j := range nodes {
		if j == answer || !st.shards.Live(sharding.NodeID{Shard: f.Shard, Replica: j}) {
			continue
		}
		copies = append(copies, &Frag{Shard: f.Shard, Class: f.Class, Payload: append([]byte(nil), f.Payload...),
			lane: f.lane, readAt: f.readAt, copy: true, srv: nodes[j]})
	}
	f.srv = nodes[answer]
	nodes[answer].enqueue(f)
	for _, c := range copies {
		c.srv.enqueue(c)
	}
}

// pool is one pool of the configuration: a listener and the clients it accepted.
type pool struct {
	p     *Proxy
	name  string
	state atomic.Pointer[poolState]
	stats poolStats
	lanes atomic.Uint32 // lanes handed to clients, in turn (see server.enqueue)
	// replyMean is the mean reply size a busy client of the pool saw last: a new
	// client's estimate until it has seen replies of its own (see client.roomLocked).
	replyMean atomic.Int64

	ln        net.Listener
	listenKey string
	acceptWG  sync.WaitGroup

	mu      sync.Mutex
	clients map[*client]struct{}
	closing atomic.Bool
	// handover: a new process took over; clients are handed to it between requests.
	handover atomic.Bool
	wg       sync.WaitGroup // client goroutines
}

func listenKey(l nutyml.Listen) string { return l.Network() + " " + l.Raw }

// listen opens the pool's listener: TCP host:port or a unix socket (a stale socket
// file is replaced; permissions applied when given), with the pool's backlog.
// Keepalive is not set here but on each accepted connection (keepAlive), so that a
// reload that keeps the listener can change it.
func listen(pc *nutyml.Pool) (net.Listener, error) {
	ln, err := openListener(pc.Listen, pc.ReusePort)
	if err != nil {
		return nil, err
	}
	if err := setBacklog(ln, pc.Backlog); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func openListener(l nutyml.Listen, reusePort bool) (net.Listener, error) {
	if l.Unix {
		if fi, err := os.Lstat(l.Host); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", l.Host, 100*time.Millisecond); err == nil {
				c.Close()
				return nil, &net.OpError{Op: "listen", Net: "unix", Err: syscall.EADDRINUSE}
			}
			_ = os.Remove(l.Host)
		}
		ln, err := net.Listen("unix", l.Host)
		if err != nil {
			return nil, err
		}
		if l.Perm != 0 {
			if err := os.Chmod(l.Host, l.Perm); err != nil {
				ln.Close()
				return nil, err
			}
		}
		return ln, nil
	}
	lc := net.ListenConfig{KeepAlive: -1}
	if reusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(context.Background(), "tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port)))
}

// setBacklog applies backlog: to a listening socket. The standard library listens with
// the kernel's somaxconn; calling listen(2) again on a listening socket changes its
// backlog on Linux (and BSDs), which the kernel still caps at somaxconn, as it does
// twemproxy's. Listeners without a file descriptor are left as they are.
func setBacklog(ln net.Listener, backlog int) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	if lerr != nil {
		return &net.OpError{Op: "listen", Net: ln.Addr().Network(), Addr: ln.Addr(), Err: os.NewSyscallError("listen", lerr)}
	}
	return nil
}

// keepAlive applies tcpkeepalive: to a TCP connection: on, with Go's default probe
// timing (15 s idle, 15 s between probes, 9 probes), or off, as twemproxy leaves it.
func keepAlive(tc *net.TCPConn, on bool) {
	if on {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// serveListener accepts clients until ln is closed. Accept errors back off.
func (pl *pool) serveListener(ln net.Listener) {
	defer pl.acceptWG.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if isClosed(err) {
				return
			}
			pl.p.log.Warn("accept failed", "pool", pl.name, "err", err)
			if !pl.p.pause(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
			keepAlive(tc, pl.state.Load().cfg.TCPKeepalive)
		}
		pl.admit(newClient(pl, nc))
	}
}

// admit serves c, an accepted or adopted client, unless the pool is closing, when it
// closes c's connection instead. It reports whether c is served.
func (pl *pool) admit(c *client) bool {
	pl.mu.Lock()
	if pl.closing.Load() {
		pl.mu.Unlock()
		c.nc.Close()
		return false
	}
	pl.clients[c] = struct{}{}
	pl.wg.Add(1)
	pl.mu.Unlock()
	pl.p.totalConns.Add(1)
	pl.p.currConns.Add(1)
	pl.stats.clientConnections.Add(1)
	go c.serve()
	return true
}

func (pl *pool) forget(c *client) {
	pl.mu.Lock()
	delete(pl.clients, c)
	pl.mu.Unlock()
	pl.p.currConns.Add(-1)
	pl.stats.clientConnections.Add(-1)
	pl.wg.Done()
}

// closeListener stops accepting and waits for the accept loop to end.
func (pl *pool) closeListener() {
	if pl.ln != nil {
		pl.ln.Close()
		pl.acceptWG.Wait()
	}
}

// drain closes the listener, then closes idle clients at once and the others after
// their current batch; it waits for them until ctx is done, then closes the rest.
func (pl *pool) drain(ctx context.Context) error {
	pl.closeListener()
	pl.closing.Store(true)
	pl.mu.Lock()
	for c := range pl.clients {
		c.closeIfIdle()
	}
	pl.mu.Unlock()
	done := make(chan struct{})
	go func() { pl.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	pl.mu.Lock()
	for c := range pl.clients {
		c.closeConn()
	}
	pl.mu.Unlock()
	return ctx.Err()
}

// waitClients waits for every client goroutine to end.
func (pl *pool) waitClients() { pl.wg.Wait() }

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
