package pgpool

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/internal/netpark"
	"github.com/poolsuite/poolsuite/internal/version"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Version is pgpool's version, the suite's (kvproxy reports the same), reported by
// SHOW VERSION and `pgpool version`.
const Version = version.Version

// VersionString is what SHOW VERSION and `pgpool version` print: the PgBouncer release
// whose console pgpool imitates first, so tools that parse PgBouncer's version read
// it, then pgpool's own.
const VersionString = "PgBouncer " + compatVersion + " (pgpool " + Version + ")"

// Pooler is a PostgreSQL connection pooler: it accepts client connections on the
// listeners given to Serve and shares server connections among them per (database,
// user) pool. It is safe for concurrent use.
type Pooler struct {
	log *slog.Logger
	cfg atomic.Pointer[Config]
	// mock caches mockSCRAMWork's choice for the configuration in cfg.
	mock atomic.Pointer[mockChoice]

	mu       sync.Mutex
	pools    map[poolKey]*pool
	dbLimits map[string]*limiter
	usLimits map[string]*limiter
	clients  map[*client]struct{}
	cancels  map[uint64]*client
	paused   map[string]bool // database -> paused ("" = all)
	susp     suspendGate     // SUSPEND (suspend.go)
	lns      []net.Listener

	ho atomic.Pointer[handover] // an online restart under way (handover.go)

	nextServerID atomic.Uint64
	nextClientID atomic.Uint64
	// stmtEpoch is raised at every schema change pgpool sees (DDL passing through, or
	// PostgreSQL reporting a shared statement stale); it is part of every server-side
	// statement name, so a fresh Parse after the change is prepared anew (prepared.go).
	stmtEpoch atomic.Uint64
	nclients  atomic.Int64
	startedAt time.Time
	// inflightMax bounds the requests an untracked client may have in flight on its
	// server connection (waitRoomUntracked): maxQueuedGroups, the bound of tracked
	// clients, set in New (tests lower it).
	inflightMax int

	admin adminState // admin console state: DISABLE, RECONNECT, callbacks (admin_state.go)
	// metrics serves Config.MetricsListen (metrics.go); nil without. Set in New.
	metrics *metricsServer

	done     chan struct{} // closed by Shutdown
	doneOnce sync.Once
	wg       sync.WaitGroup // client goroutines (and parked clients), the janitor, listeners
	// parker holds idle clients' connections without a goroutine (park.go); nil
	// where parking is unavailable. Set in New, closed by Shutdown.
	parker *netpark.Parker
	// hotGap: clients whose requests start within it of each other wait in Read
	// when idle, not parked (park.go), in nanoseconds; set in New, tests change it.
	// parks counts the clients parked, and sweepPaused stops the janitor's idle
	// sweeps, for tests.
	hotGap      atomic.Int64
	parks       atomic.Int64
	sweepPaused atomic.Bool
	// hooks: test hooks on the client path (cancel.go); nil outside tests.
	hooks atomic.Pointer[cancelHooks]
}

type poolKey struct{ database, user string }

// loginMaxMessageSize bounds the messages a client may send before it has logged in.
const loginMaxMessageSize = 64 << 10

// New returns a Pooler with the given configuration.
func New(cfg *Config, log *slog.Logger) *Pooler {
	if log == nil {
		log = slog.Default()
	}
	pl := &Pooler{
		log:       log,
		pools:     make(map[poolKey]*pool),
		dbLimits:  make(map[string]*limiter),
		usLimits:  make(map[string]*limiter),
		clients:   make(map[*client]struct{}),
		cancels:   make(map[uint64]*client),
		paused:    make(map[string]bool),
		startedAt: time.Now(),
		done:      make(chan struct{}),

		inflightMax: maxQueuedGroups,
		parker:      newParker(),
	}
	pl.cfg.Store(cfg)
	pl.hotGap.Store(int64(netpark.HotGap))
	if cfg.MetricsListen != "" {
		pl.startMetrics(cfg.MetricsListen)
	}
	pl.wg.Add(1)
	go pl.janitor()
	pl.wg.Add(1)
	go pl.statsLogger()
	return pl
}

func (pl *Pooler) settings() *Config { return pl.cfg.Load() }

// Serve accepts connections on ln until Shutdown. It returns nil after Shutdown.
func (pl *Pooler) Serve(ln net.Listener) error {
	pl.mu.Lock()
	select {
	case <-pl.done:
		pl.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	pl.lns = append(pl.lns, ln)
	pl.wg.Add(1)
	pl.mu.Unlock()
	defer pl.wg.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if pl.holdAccept(ln) {
				continue
			}
			select {
			case <-pl.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: back off instead of spinning.
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				pl.log.Warn("accept failed", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-pl.done:
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		pl.handle(conn)
	}
}

// handle starts the goroutine of a new client connection.
func (pl *Pooler) handle(conn net.Conn) {
	g := pl.settings()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &client{
		pl: pl, id: pl.nextClientID.Add(1), conn: conn,
		rd: wire.NewReader(conn), remote: remoteAddr(conn),
		connectedAt: time.Now(),
	}
	c.w = wire.NewWriter(conn)
	if la := conn.LocalAddr(); la != nil && la.Network() == "unix" {
		c.unix = true
	}
	c.ref.s = c
	c.rd.SetMaxMessageSize(loginMaxMessageSize) // until the client has logged in
	c.state.Store(int32(clientLogin))
	pl.wg.Add(1)
	go pl.serveClient(c, g)
}
