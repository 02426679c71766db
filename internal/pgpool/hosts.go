package pgpool

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// endpoint is one address a database's server connections may be opened to.
type endpoint struct {
	network string // "tcp" or "unix"
	addr    string // host:port, or the path of the unix socket
}

// maxHosts bounds the length of a host list.
const maxHosts = 64

// errHostList: a [databases] host list is empty or too long.
var errHostList = errors.New("pgpool: invalid host list")

// parseHosts reads the host setting of a [databases] entry: one host name, IP
// address or unix socket directory ("/..."), or a comma-separated list of them,
// all on port. Empty elements are skipped; an empty setting means localhost.
func parseHosts(host string, port int) ([]endpoint, error) {
	if port == 0 {
		port = 5432
	}
	if strings.TrimSpace(host) == "" {
		host = "localhost"
	}
	var eps []endpoint
	for _, h := range strings.Split(host, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if len(eps) == maxHosts {
			return nil, fmt.Errorf("%w: more than %d hosts", errHostList, maxHosts)
		}
		if h[0] == '/' {
			eps = append(eps, endpoint{"unix", fmt.Sprintf("%s/.s.PGSQL.%d", h, port)})
			continue
		}
		eps = append(eps, endpoint{"tcp", net.JoinHostPort(h, strconv.Itoa(port))})
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: no host in %q", errHostList, host)
	}
	return eps, nil
}

// hasAddr reports whether addr is one of the addresses o connects to.
func (o *serverOptions) hasAddr(addr string) bool {
	if len(o.hosts) == 0 {
		return addr == o.addr
	}
	for _, e := range o.hosts {
		if e.addr == addr {
			return true
		}
	}
	return false
}

// hostState is how a pool chooses among the hosts of a list: the next one in turn
// (round-robin) or the current one (load_balance_hosts=disable), skipping for
// server_login_retry a host whose last connect failed. The zero value is ready.
type hostState struct {
	mu   sync.Mutex
	next uint64               // round-robin counter, or the index of the current host
	down map[string]time.Time // address -> until when it is tried only after the others
}

// order returns the indexes of o.hosts in the order a new connection tries them:
// from the next (or current) host on, hosts that failed recently last.
func (h *hostState) order(o *serverOptions, now time.Time) []int {
	n := len(o.hosts)
	h.mu.Lock()
	defer h.mu.Unlock()
	start := int(h.next % uint64(n))
	if !o.stickyHost {
		h.next++
	}
	idx := make([]int, 0, n)
	var late []int
	for i := 0; i < n; i++ {
		k := (start + i) % n
		if until, ok := h.down[o.hosts[k].addr]; ok && now.Before(until) {
			late = append(late, k)
			continue
		}
		idx = append(idx, k)
	}
	return append(idx, late...)
}

// result records the outcome of a connect to o.hosts[k].
func (h *hostState) result(o *serverOptions, k int, ok bool, now time.Time, retry time.Duration) {
	addr := o.hosts[k].addr
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		delete(h.down, addr)
		if o.stickyHost {
			h.next = uint64(k)
		}
		return
	}
	if retry <= 0 {
		return
	}
	if h.down == nil {
		h.down = make(map[string]time.Time)
	}
	h.down[addr] = now.Add(retry)
	if len(h.down) > len(o.hosts) {
		// Addresses of an older configuration.
		for a := range h.down {
			if !o.hasAddr(a) {
				delete(h.down, a)
			}
		}
	}
}

// hostRefused reports whether a connect error says the host is unusable now (not
// reachable, shutting down, out of connections), so that another host of the list
// should be tried; an authentication failure or an unknown database is not.
func hostRefused(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		code := se.Response.Code
		return strings.HasPrefix(code, "57") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "08")
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code == CodeConnectionFailure
	}
	return true
}

// errConnectQueryTx: connect_query left the server connection inside a transaction.
var errConnectQueryTx = errors.New("pgpool: connect_query left the server connection inside a transaction")

// dialServer opens a server connection for p (nil for an auth_query lookup) to one of
// o's hosts and runs o.connectQuery on it. With a host list it tries the hosts in
// hs's order until one works; hs nil tries them in list order. A host that refuses
// goes to the end of the order for retry (server_login_retry).
func dialServer(p *pool, hs *hostState, id uint64, o *serverOptions, retry time.Duration, log *slog.Logger) (*server, error) {
	if len(o.hosts) <= 1 {
		return connectOne(p, id, o, log)
	}
	var order []int
	if hs != nil {
		order = hs.order(o, time.Now())
	} else {
		order = make([]int, len(o.hosts))
		for i := range order {
			order[i] = i
		}
	}
	var lastErr error
	for n, k := range order {
		oo := *o
		oo.network, oo.addr = o.hosts[k].network, o.hosts[k].addr
		s, err := connectOne(p, id, &oo, log)
		if hs != nil {
			hs.result(o, k, err == nil, time.Now(), retry)
		}
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !hostRefused(err) {
			break
		}
		if n < len(order)-1 {
			log.Warn("server connect failed; trying the next host", "database", o.database, "user", o.user, "addr", oo.addr, "err", err)
		}
	}
	return nil, lastErr
}

// connectOne is connectServer followed by connect_query.
func connectOne(p *pool, id uint64, o *serverOptions, log *slog.Logger) (*server, error) {
	s, err := connectServer(p, id, o)
	if err != nil || o.connectQuery == "" {
		return s, err
	}
	err = s.exec(o.connectQuery, o.connectTimeout)
	var se *ServerError
	switch {
	case errors.As(err, &se):
		// As PgBouncer: logged, and the connection is used all the same.
		log.Warn("connect_query failed", "database", o.database, "user", o.user, "server", s.String(),
			"sqlstate", se.Response.Code, "err", se.Response.Message)
	case err != nil:
		s.close()
		<-s.done
		return nil, err
	}
	if !s.txIdle() {
		s.close()
		<-s.done
		return nil, &Error{Severity: "FATAL", Code: CodeInternalError, Message: errConnectQueryTx.Error(), Err: errConnectQueryTx}
	}
	return s, nil
}
