package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/netpark"
	"github.com/poolsuite/poolsuite/sharding"
)

// DefaultTimeout is the server timeout of a pool whose file has no timeout: key
// (twemproxy waits forever then). One second: far above a healthy Redis' latency, short
// enough that a frozen server does not hang its clients.
const DefaultTimeout = time.Second

// Options configure a Proxy. The zero value of every field but NewCodec is usable.
type Options struct {
	// NewCodec returns the wire protocol of a pool (Redis or memcached by
	// pool.Redis). Required.
	NewCodec func(pool *nutyml.Pool) (Codec, error)
	// Logger receives structured logs (nil: slog.Default()).
	Logger *slog.Logger
	// DefaultTimeout applies to pools without timeout: (0: DefaultTimeout).
	DefaultTimeout time.Duration
	// StatsAddr is where twemproxy's JSON stats are served over TCP ("" for none).
	StatsAddr string
	// MetricsAddr is where Prometheus metrics are served over HTTP at /metrics; ""
	// takes the file's metrics_listen, and if that is empty too there is none.
	MetricsAddr string
	// Registry receives the metrics (nil: a registry of the Proxy's own; never the
	// global one).
	Registry *prometheus.Registry
	// ReloadGrace bounds how long a server or pool removed by a reload keeps serving
	// the requests routed to it before the reload (0: the pool's timeout plus 2 s, or
	// 10 s without timeout). A removed server's connections do not wait for it: each
	// closes as soon as nothing is queued or in flight on it, and a request in flight
	// is bounded by the timeout anyway. At the end of ReloadGrace the server is
	// stopped (a request still pending then fails with ErrServerRemoved) and a removed
	// pool's remaining clients are closed.
	ReloadGrace time.Duration
	// Takeover, when set, holds the listeners received from a running kvproxy (see
	// DialTakeover): pools, stats and metrics whose addresses match serve on them
	// instead of opening their own.
	Takeover *Takeover
}

// Proxy runs the pools of one configuration. Its methods are safe for concurrent use.
type Proxy struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	closed  chan struct{}
	reg     *prometheus.Registry
	metrics *metrics

	totalConns, currConns atomic.Int64

	mu      sync.Mutex // serialises Reload and Shutdown; guards pools and servers
	pools   map[string]*pool
	servers map[string]*server // by key
	down    bool

	statsLn   net.Listener
	metricsLn net.Listener
	httpSrv   *http.Server
	up        upgrade        // the upgrade socket (upgrade.go)
	wg        sync.WaitGroup // stats, metrics, retiring servers, removed pools, idle sweep
	// parker holds idle clients' connections without a goroutine (park.go); nil
	// where parking is unavailable.
	parker *netpark.Parker
	hotGap atomic.Int64 // netpark.HotGap, in nanoseconds; tests change it
	parks  atomic.Int64 // connections parked so far (tests read it)
	// sweepPaused stops the periodic idle sweep (tests run it themselves).
	sweepPaused atomic.Bool
}

// Start opens every pool's listener and the stats and metrics listeners, and starts
// serving. On error nothing is left running.
func Start(cfg *nutyml.Config, opts Options) (*Proxy, error) {
	if opts.NewCodec == nil {
		return nil, errors.New("kv: Options.NewCodec is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	if opts.Registry == nil {
		// A registry of the proxy's own, with the Go runtime's and the process's
		// metrics beside kvproxy's (a caller's registry gets only kvproxy's).
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		opts.Registry = reg
	}
	p := &Proxy{
		opts: opts, log: opts.Logger, started: time.Now(), closed: make(chan struct{}),
		reg: opts.Registry, pools: map[string]*pool{}, servers: map[string]*server{},
	}
	m, err := newMetrics(p, p.reg)
	if err != nil {
		return nil, err
	}
	p.metrics = m
	p.hotGap.Store(int64(netpark.HotGap))
	if p.parker = newParker(); p.parker != nil {
		p.wg.Add(1)
		go p.sweepIdle()
	}
	if err := p.apply(cfg); err != nil {
		close(p.closed)
		p.wg.Wait()
		p.parker.Close()
		return nil, err
	}
	if opts.StatsAddr != "" {
		ln, err := p.listenTCP(kindStats, opts.StatsAddr)
		if err != nil {
			p.Shutdown(context.Background())
			return nil, fmt.Errorf("kv: stats listener: %w", err)
		}
		p.statsLn = ln
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.serveStats(ln) }()
	}
	maddr := opts.MetricsAddr
	if maddr == "" {
		maddr = cfg.MetricsListen
	}
	if maddr != "" {
		ln, err := p.listenTCP(kindMetrics, maddr)
		if err != nil {
			p.Shutdown(context.Background())
			return nil, fmt.Errorf("kv: metrics listener: %w", err)
		}
		p.metricsLn = ln
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
		p.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); _ = p.httpSrv.Serve(ln) }()
	}
	return p, nil
}

// Registry returns the registry the Proxy's metrics are on.
func (p *Proxy) Registry() *prometheus.Registry { return p.reg }

// PoolAddr returns the address pool listens on, or nil if there is no such pool.
func (p *Proxy) PoolAddr(name string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl := p.pools[name]; pl != nil && pl.ln != nil {
		return pl.ln.Addr()
	}
	return nil
}

// StatsAddr returns the stats listener's address, or nil.
func (p *Proxy) StatsAddr() net.Addr {
	if p.statsLn == nil {
		return nil
	}
	return p.statsLn.Addr()
}

// MetricsAddr returns the metrics listener's address, or nil.
func (p *Proxy) MetricsAddr() net.Addr {
	if p.metricsLn == nil {
		return nil
	}
	return p.metricsLn.Addr()
}

// Reload switches to cfg without dropping clients: pools and servers are added,
// removed or changed; unchanged servers keep their connections and requests in flight
// complete. If cfg cannot be applied (a listener cannot be opened, a pool is invalid),
// Reload returns the reason and the running configuration stays.
func (p *Proxy) Reload(cfg *nutyml.Config) error {
	return p.apply(cfg)
}

// plan is a configuration prepared but not yet in effect.
type plan struct {
	states    map[string]*poolState
	listeners map[string]net.Listener // new listeners by pool
	fresh     []*server               // servers to start
}

func (pn *plan) abandon() {
	for _, ln := range pn.listeners {
		ln.Close()
	}
}

func (p *Proxy) apply(cfg *nutyml.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return ErrClosed
	}
	if p.up.busy {
		return ErrUpgrading
	}
	pn, err := p.prepare(cfg)
	if err != nil {
		return err
	}
	p.commit(cfg, pn)
	return nil
}

// prepare builds every pool state and opens new listeners; nothing changes yet.
func (p *Proxy) prepare(cfg *nutyml.Config) (*plan, error) {
	pn := &plan{states: map[string]*poolState{}, listeners: map[string]net.Listener{}}
	seen := map[string]bool{}
	for _, pc := range cfg.Pools {
		if seen[pc.Name] {
			pn.abandon()
			return nil, &ConfigError{Pool: pc.Name, Err: errors.New("duplicate pool")}
		}
		seen[pc.Name] = true
		st, fresh, err := p.buildState(pc)
		if err != nil {
			pn.abandon()
			return nil, &ConfigError{Pool: pc.Name, Err: err}
		}
		pn.states[pc.Name] = st
		pn.fresh = append(pn.fresh, fresh...)
		old := p.pools[pc.Name]
		if old == nil || old.listenKey != listenKey(pc.Listen) {
			ln, err := p.listenPool(pc)
			if err != nil {
				pn.abandon()
				return nil, &ConfigError{Pool: pc.Name, Err: fmt.Errorf("listen %s: %w", pc.Listen.Raw, err)}
			}
			pn.listeners[pc.Name] = ln
		}
	}
	return pn, nil
}

// serverKey is what must stay the same for a reload to keep a server's connections.
func serverKey(pool string, pc *nutyml.Pool, name, network, addr, password string, timeout time.Duration) string {
	return pool + "\x00" + name + "\x00" + network + "\x00" + addr + "\x00" + password + "\x00" +
		strconv.Itoa(pc.RedisDB) + "\x00" + strconv.Itoa(pc.ServerConnections) + "\x00" +
		timeout.String() + "\x00" + strconv.FormatBool(pc.Redis) + "\x00" + strconv.FormatBool(pc.TCPKeepalive)
}

func (p *Proxy) buildState(pc *nutyml.Pool) (*poolState, []*server, error) {
	codec, err := p.opts.NewCodec(pc)
	if err != nil {
		return nil, nil, err
	}
	scfg, err := pc.ShardingConfig()
	if err != nil {
		return nil, nil, err
	}
	shards, err := sharding.NewPool(scfg, pc.Shards())
	if err != nil {
		return nil, nil, err
	}
	timeout := p.opts.DefaultTimeout
	if pc.TimeoutSet {
		timeout = pc.Timeout
	}
	st := &poolState{cfg: pc, codec: codec, shards: shards, timeout: timeout, policy: pc.ReadPolicy}
	nconns := max(pc.ServerConnections, 1)
	var fresh []*server
	get := func(name, network, addr, password string) *server {
		key := serverKey(pc.Name, pc, name, network, addr, password, timeout)
		if s := p.servers[key]; s != nil {
			return s
		}
		for _, s := range fresh {
			if s.key == key {
				return s
			}
		}
		info := ServerInfo{Name: name, Password: password, DB: pc.RedisDB}
		log := p.log.With("pool", pc.Name)
		s := newServer(key, name, network, addr, info, nconns, timeout, codec, log, p.metrics.forServer(pc.Name, name))
		s.pool, s.preconnect, s.keepAlive = pc.Name, pc.Preconnect, pc.TCPKeepalive
		fresh = append(fresh, s)
		return s
	}
	for _, sv := range pc.Servers {
		password := sv.Password
		if password == "" {
			password = pc.ServerAuth()
		}
		row := []*server{get(sv.Name, sv.Network(), sv.Addr(), password)}
		for _, r := range sv.Replicas {
			row = append(row, get(sv.Name+"/"+r.Addr, r.Network(), r.Addr, password))
		}
		st.nodes = append(st.nodes, row)
		st.all = append(st.all, row...)
	}
	return st, fresh, nil
}

// commit puts a prepared plan into effect. It cannot fail.
func (p *Proxy) commit(cfg *nutyml.Config, pn *plan) {
	for _, s := range pn.fresh {
		p.servers[s.key] = s
	}
	live := map[string]bool{}
	for _, pc := range cfg.Pools {
		st := pn.states[pc.Name]
		pl := p.pools[pc.Name]
		if pl == nil {
			pl = &pool{p: p, name: pc.Name, clients: map[*client]struct{}{}}
			p.pools[pc.Name] = pl
		}
		for i, row := range st.nodes {
			for j, s := range row {
				s.health.Store(&health{shards: st.shards, node: sharding.NodeID{Shard: i, Replica: j}, pool: pl})
			}
		}
		for _, s := range st.all {
			live[s.key] = true
		}
		pl.state.Store(st)
		if ln := pn.listeners[pc.Name]; ln != nil {
			pl.closeListener()
			pl.ln, pl.listenKey = ln, listenKey(pc.Listen)
			pl.acceptWG.Add(1)
			go pl.serveListener(ln)
		} else if pl.ln != nil {
			if err := setBacklog(pl.ln, pc.Backlog); err != nil {
				p.log.Warn("backlog not changed", "pool", pc.Name, "err", err)
			}
		}
	}
	for _, s := range pn.fresh {
		s.start(s.preconnect)
	}
	// Pools that left: stop accepting now, drain their clients in the background.
	for name, pl := range p.pools {
		if _, ok := pn.states[name]; ok {
			continue
		}
		delete(p.pools, name)
		pl.closeListener()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), p.grace(pl.state.Load()))
			defer cancel()
			_ = pl.drain(ctx)
		}()
	}
	// Servers that left: no state routes to them any more; their connections close
	// once drained, and the servers stop after the grace period.
	for key, s := range p.servers {
		if live[key] {
			continue
		}
		delete(p.servers, key)
		s.retire()
		p.wg.Add(1)
		go p.stopRetired(s)
	}
}

func (p *Proxy) grace(st *poolState) time.Duration {
	if st == nil {
		return p.graceFor(-1)
	}
	return p.graceFor(st.timeout)
}

// graceFor returns ReloadGrace, or its default for a pool with that timeout.
func (p *Proxy) graceFor(timeout time.Duration) time.Duration {
	if p.opts.ReloadGrace > 0 {
		return p.opts.ReloadGrace
	}
	if timeout <= 0 {
		return 10 * time.Second
	}
	return timeout + 2*time.Second
}

// stopRetired stops a server that left the configuration at the end of the grace
// period (or at shutdown). Its connections have closed by then unless requests were
// still routed to it: retire drains them as soon as their requests are answered; the
// grace period only bounds how long a client that routed by the previous configuration
// can still reach the server.
func (p *Proxy) stopRetired(s *server) {
	defer p.wg.Done()
	t := time.NewTimer(p.graceFor(s.timeout))
	select {
	case <-t.C:
	case <-p.closed:
		t.Stop()
	}
	s.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.servers {
		if o.pool == s.pool && o.name == s.name {
			return // the label now belongs to its successor
		}
	}
	p.metrics.forget(s.pool, s.name)
}

// pause waits d, or returns false at once when the proxy is closing.
func (p *Proxy) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closed:
		return false
	}
}

// Shutdown stops accepting clients, lets requests being served complete until ctx is
// done, then closes every client and server connection. It returns ctx.Err() if
// clients had to be cut off.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		return ErrClosed
	}
	p.down = true
	close(p.closed)
	pools := make([]*pool, 0, len(p.pools))
	for _, pl := range p.pools {
		pools = append(pools, pl)
	}
	servers := make([]*server, 0, len(p.servers))
	for _, s := range p.servers {
		servers = append(servers, s)
	}
	p.mu.Unlock()
	p.stopUpgrades()

	if p.statsLn != nil {
		p.statsLn.Close()
	}
	if p.httpSrv != nil {
		_ = p.httpSrv.Close()
	}
	errs := make(chan error, len(pools))
	for _, pl := range pools {
		go func() { errs <- pl.drain(ctx) }()
	}
	var first error
	for range pools {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	for _, s := range servers {
		s.stop()
	}
	for _, pl := range pools {
		pl.waitClients()
	}
	p.wg.Wait()
	p.parker.Close() // every client has ended: nothing is parked
	return first
}
