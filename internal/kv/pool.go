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

// pool is one pool of the configuration: a listener and the clients it accepted.
type pool struct {
	p     *Proxy
	name  string
	state atomic.Pointer[poolState]
	stats poolStats

	ln        net.Listener
	listenKey string
	acceptWG  sync.WaitGroup

	mu      sync.Mutex
	clients map[*client]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // client goroutines
}

func listenKey(l nutyml.Listen) string { return l.Network() + " " + l.Raw }

// listen opens the pool's listener: TCP host:port or a unix socket (a stale socket
// file is replaced; permissions applied when given).
func listen(l nutyml.Listen, reusePort bool) (net.Listener, error) {
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
	lc := net.ListenConfig{}
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
		}
		c := newClient(pl, nc)
		pl.mu.Lock()
		if pl.closing.Load() {
			pl.mu.Unlock()
			nc.Close()
			continue
		}
		pl.clients[c] = struct{}{}
		pl.wg.Add(1)
		pl.mu.Unlock()
		pl.p.totalConns.Add(1)
		pl.p.currConns.Add(1)
		pl.stats.clientConnections.Add(1)
		go c.serve()
	}
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
		c.nc.Close()
	}
	pl.mu.Unlock()
	return ctx.Err()
}

// waitClients waits for every client goroutine to end.
func (pl *pool) waitClients() { pl.wg.Wait() }

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
