package pgpool

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// serveClient owns a client connection from accept until it has logged in; then it
// hands the connection to a fresh goroutine (runClient) and ends. Login (TLS, SCRAM)
// grows a goroutine's stack; the goroutine that waits on an idle client for hours
// starts small instead, which keeps idle clients cheap.
func (pl *Pooler) serveClient(c *client, g *Config) {
	defer pl.wg.Done()
	handedOff := false
	pl.nclients.Add(1)
	defer func() {
		if r := recover(); r != nil {
			pl.log.Error("panic in client connection", "client", c.id, "user", c.user,
				"database", c.database, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
		}
		if !handedOff {
			pl.endClient(c)
		}
	}()
	if !pl.loginClient(c, g) {
		return
	}
	handedOff = true
	pl.wg.Add(1)
	go pl.runClient(c, g, false)
}

// endClient cleans up after a client connection.
func (pl *Pooler) endClient(c *client) {
	c.logClosing()
	c.unbind()
	c.closedNow()
	pl.unregister(c)
	c.close()
	c.rd.Free()
	pl.nclients.Add(-1)
}

// loginClient runs startup and authentication; it reports whether the client may go on.
func (pl *Pooler) loginClient(c *client, g *Config) bool {
	if g.ClientLoginTimeout > 0 {
		c.conn.SetDeadline(time.Now().Add(g.ClientLoginTimeout))
	}
	if err := c.startup(); err != nil {
		if !errors.Is(err, errCancelRequest) {
			pl.logStartupError(c, err)
			var pe *Error
			var tl *wire.TooLargeError
			switch {
			case errors.As(err, &pe):
				c.refuse(err)
			case errors.As(err, &tl), errors.Is(err, wire.ErrMalformed):
				// The client hears why before the connection closes, as from PostgreSQL.
				c.sendStartupError(fatalf(CodeProtocolViolation, "invalid startup packet: %s", startupProblem(err)))
			}
		}
		return false
	}
	if n := pl.nclients.Load(); g.MaxClientConn > 0 && int(n) > g.MaxClientConn {
		pl.log.Warn("max_client_conn reached", "remote", c.remote, "max_client_conn", g.MaxClientConn)
		c.refuse(fatalf(CodeTooManyConnections, "no more connections allowed (max_client_conn)"))
		return false
	}
	select {
	case <-pl.done:
		c.refuse(fatalf(CodeCannotConnectNow, "pgpool is shutting down"))
		return false
	default:
	}
	c.pid, c.secret = newCancelKey()
	pl.register(c)
	c.logLoginAttempt()
	if err := c.login(); err != nil {
		pl.log.Debug("client login failed", "client", c.id, "user", c.user, "database", c.database, "remote", c.remote, "err", err)
		c.refuse(err)
		return false
	}
	c.conn.SetDeadline(time.Time{})
	c.rd.SetMaxMessageSize(g.MaxPacketSize)
	return true
}

// runClient serves a logged-in client until it leaves; resumed: the client was
// parked (park.go), and this goroutine takes over from the one that parked it.
func (pl *Pooler) runClient(c *client, g *Config, resumed bool) {
	parked := false
	defer func() {
		if !parked {
			pl.wg.Done()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			pl.log.Error("panic in client connection", "client", c.id, "user", c.user,
				"database", c.database, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
		}
		if !parked {
			pl.endClient(c)
		}
	}()
	if c.admin {
		err := c.runAdmin()
		pl.handoverEnded(c)
		if err != nil {
			pl.log.Debug("admin connection closed", "client", c.id, "err", err)
		}
		c.closeReason = "client close request"
		if err != nil {
			c.closeReason = c.runEndReason(err)
		}
		return
	}
	var err error
	if resumed {
		c.resumed()
		err = c.loop()
	} else {
		err = c.run()
	}
	if err == errParked {
		parked = true // the client lives on, without a goroutine
		return
	}
	var pe *Error
	if errors.As(err, &pe) {
		c.logPoolerError(pe.Message)
	}
	c.closeReason = c.runEndReason(err)
}

// startupProblem says what is wrong with a startup packet, without the package prefix.
func startupProblem(err error) string {
	var tl *wire.TooLargeError
	var me *wire.MalformedError
	switch {
	case errors.As(err, &tl):
		return fmt.Sprintf("length %d exceeds the limit of %d", tl.Size, tl.Limit)
	case errors.As(err, &me):
		return me.Reason
	}
	return "malformed"
}

func (pl *Pooler) logStartupError(c *client, err error) {
	var tl *wire.TooLargeError
	switch {
	case errors.As(err, &tl), errors.Is(err, wire.ErrMalformed):
		pl.log.Warn("bad startup packet", "remote", c.remote, "err", err)
	default:
		pl.log.Debug("startup failed", "remote", c.remote, "err", err)
	}
}

func (pl *Pooler) clientList() []*client {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	cs := make([]*client, 0, len(pl.clients))
	for c := range pl.clients {
		cs = append(cs, c)
	}
	return cs
}
