package pgpool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/poolsuite/poolsuite/internal/pglog"
)

// The log lines operators grep for, worded as PgBouncer words them, each behind its
// log_* setting. Records carry the connection's identity (pglog.Client,
// pglog.Server), which the pglog handler prints as PgBouncer's "C-0x...: db/user@addr"
// prefix.

// logConn is the client's identity for log records; its ptr is SHOW CLIENTS' ptr.
func (c *client) logConn() slog.Attr {
	addr := c.remote
	if c.unix {
		addr = "unix" // as PgBouncer shows a unix-socket peer
	}
	return pglog.Client(c.id<<1, c.database, c.user, addr)
}

// logConn is the server connection's identity for log records: the pool's database
// and the user it logs in as, at PostgreSQL's address; its ptr is SHOW SERVERS' ptr.
func (s *server) logConn() slog.Attr {
	return pglog.Server(s.id<<1|1, s.logDB, s.logUser, s.addr)
}

// logLoginAttempt is log_connections' line for a client that has sent its startup
// packet.
func (c *client) logLoginAttempt() {
	if !c.pl.settings().LogConnections {
		return
	}
	c.pl.log.Info(fmt.Sprintf("login attempt: db=%s user=%s tls=%s", c.database, c.user, c.tlsInfo()), c.logConn())
}

// tlsInfo is "no", or the protocol version and cipher suite of a TLS client.
func (c *client) tlsInfo() string {
	tc, ok := c.conn.(*tls.Conn)
	if !c.tls || !ok {
		return "no"
	}
	cs := tc.ConnectionState()
	return tls.VersionName(cs.Version) + "/" + tls.CipherSuiteName(cs.CipherSuite)
}

// refuse sends err to a client that is not logged in. As PgBouncer, it logs why the
// client closes before the client hears it, so whoever reads the log after the
// client's error finds the line.
func (c *client) refuse(err error) {
	reason := clientErrorMessage(err)
	c.logPoolerError(reason)
	c.closeReason = reason
	var uu *unknownUser
	if errors.As(err, &uu) {
		c.closeReason = reasonNoSuchUser // the log's words; the client hears reason
	}
	c.logClosing()
	c.closeReason = "" // logged
	c.sendStartupError(err)
}

// clientErrorMessage is the message a client hears for err.
func clientErrorMessage(err error) string {
	var af *authFailure
	if errors.As(err, &af) {
		return af.resp.Message
	}
	return asClientError(err).Message
}

// logPoolerError is log_pooler_errors' line for an error pgpool sends a client.
func (c *client) logPoolerError(msg string) {
	if c.pl.settings().LogPoolerErrors {
		c.pl.log.Warn("pooler error: "+msg, c.logConn())
	}
}

// runEndReason says why a logged-in client's session ended, from what run returned.
func (c *client) runEndReason(err error) string {
	var pe *Error
	switch {
	case err == nil && c.terminated:
		return "client close request"
	case err == nil:
		return "client unexpected eof"
	case errors.Is(err, errHandedOver):
		return ""
	case errors.As(err, &pe):
		return pe.Message
	}
	return "client connection error: " + err.Error()
}

// logClosing is log_disconnections' line for a client, when its reason is known.
func (c *client) logClosing() {
	if c.closeReason == "" || !c.pl.settings().LogDisconnections {
		return
	}
	c.pl.log.Info(fmt.Sprintf("closing because: %s (age=%ds)", c.closeReason, int64(time.Since(c.connectedAt)/time.Second)), c.logConn())
}

// Server close reasons, in PgBouncer's words where it has them.
const (
	reasonServerIdle     = "server idle timeout"
	reasonServerLifetime = "server lifetime over"
	reasonServerCrashed  = "server conn crashed?"
	reasonServerClosed   = "server connection closed by pgpool"
	reasonConfigChanged  = "database configuration changed"
	reasonConnectTimeout = "connect timeout"
	reasonConnectFailed  = "connect failed"
)

// closeBecause closes the server connection, logging reason when it closes.
func (s *server) closeBecause(reason string) {
	s.reason.CompareAndSwap(nil, &reason)
	s.close()
}

// logClosing is log_disconnections' line for a server connection that has ended.
func (s *server) logClosing(p *pool) {
	if !p.pooler.settings().LogDisconnections {
		return
	}
	reason := reasonServerClosed
	if r := s.reason.Load(); r != nil {
		reason = *r
	} else if s.closeErr != nil {
		reason = reasonServerCrashed
	}
	p.pooler.log.Info(fmt.Sprintf("closing because: %s (age=%ds)", reason, int64(time.Since(s.createdAt)/time.Second)), s.logConn())
}

// logNewServer is log_connections' line for a server connection that has logged in.
func (s *server) logNewServer(p *pool) {
	if !p.pooler.settings().LogConnections {
		return
	}
	msg := "new connection to server"
	if la := s.conn.LocalAddr(); la != nil && la.Network() == "tcp" {
		msg += " (from " + la.String() + ")"
	}
	p.pooler.log.Info(msg, s.logConn())
}

// logServerLoginFailed is the line for PostgreSQL refusing a server login, or for a
// connect that failed before it.
func (p *pool) logServerLoginFailed(err error) {
	var se *ServerError
	var pe *Error
	switch {
	case errors.As(err, &se):
		p.pooler.log.Warn(fmt.Sprintf("server login failed: %s %s", se.Response.Severity, se.Response.Message),
			"database", p.database, "user", p.user)
	case errors.As(err, &pe) && pe.Code != CodeConnectionFailure:
		p.pooler.log.Warn("server login failed: "+pe.Message, "database", p.database, "user", p.user, "err", err)
	default:
		p.pooler.log.Warn("server connect failed", "database", p.database, "user", p.user, "err", err)
	}
}

// logReserve is the line for a client whose wait opens a reserve_pool connection.
func (c *client) logReserve() {
	c.pl.log.Warn("taking connection from reserve_pool", c.logConn())
}

// logAutoDatabase is the line for the first client of a database served by the "*"
// entry.
func (c *client) logAutoDatabase() {
	c.pl.log.Info("registered new auto-database: db="+c.database, c.logConn())
}

// statsLogger writes log_stats' line every stats_period until Shutdown: averages
// over all pools (the admin console excluded) since the previous line.
func (pl *Pooler) statsLogger() {
	defer pl.wg.Done()
	last, lastAt := pl.poolTotals(), time.Now()
	for {
		period := pl.settings().StatsPeriod
		if period <= 0 {
			period = 60 * time.Second
		}
		t := time.NewTimer(period)
		select {
		case <-pl.done:
			t.Stop()
			return
		case <-t.C:
		}
		cur, now := pl.poolTotals(), time.Now()
		if pl.settings().LogStats {
			pl.log.Info(statsLine(cur, last, now.Sub(lastAt)))
		}
		last, lastAt = cur, now
	}
}

// logTotals are the counters the stats line averages.
type logTotals struct {
	xacts, queries, received, sent, xactUS, queryUS, waitUS int64
}

// poolTotals sums the counters of every pool.
func (pl *Pooler) poolTotals() logTotals {
	var t logTotals
	for _, p := range pl.poolList() {
		st := &p.stats
		t.xacts += st.xactCount.Load()
		t.queries += st.queryCount.Load()
		t.received += st.received.Load()
		t.sent += st.sent.Load()
		t.xactUS += st.xactTime.Load()
		t.queryUS += st.queryTime.Load()
		t.waitUS += st.waitTimeUS.Load()
	}
	return t
}

// statsLine is the stats line for the counters cur and old, taken d apart: rates per
// second, the average transaction and query times, and the wait time per second, as
// PgBouncer computes them.
func statsLine(cur, old logTotals, d time.Duration) string {
	us := d.Microseconds()
	if us <= 0 {
		us = 1
	}
	per := func(n int64) int64 { return max(n, 0) * 1e6 / us }
	dx, dq := max(cur.xacts-old.xacts, 0), max(cur.queries-old.queries, 0)
	var xactUS, queryUS int64
	if dx > 0 {
		xactUS = max(cur.xactUS-old.xactUS, 0) / dx
	}
	if dq > 0 {
		queryUS = max(cur.queryUS-old.queryUS, 0) / dq
	}
	return fmt.Sprintf("stats: %d xacts/s, %d queries/s, in %d B/s, out %d B/s, xact %d us, query %d us, wait %d us",
		per(dx), per(dq), per(cur.received-old.received), per(cur.sent-old.sent), xactUS, queryUS, per(cur.waitUS-old.waitUS))
}

func ptrTo(s string) *string { return &s }

// databaseSeen reports whether a pool of the database has been made before.
func (pl *Pooler) databaseSeen(name string) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	_, ok := pl.dbLimits[name]
	return ok
}
