package admin

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// showCommands maps SHOW's subcommands to the functions building their results.
var showCommands = map[string]func(s *Snapshot) *Result{
	"pools":          showPools,
	"clients":        showClients,
	"servers":        showServers,
	"sockets":        func(s *Snapshot) *Result { return showSockets(s, false) },
	"active_sockets": func(s *Snapshot) *Result { return showSockets(s, true) },
	"databases":      showDatabases,
	"users":          showUsers,
	"lists":          showLists,
	"mem":            showMem,
	"version":        showVersion,
	"state":          showState,
	"config":         func(s *Snapshot) *Result { return showConfig(s, false) },
	"stats":          showStats,
	"stats_totals":   showStatsTotals,
	"stats_averages": showStatsAverages,
	"totals":         showTotals,
	"dns_hosts":      showDNSHosts,
	"dns_zones":      showDNSZones,
}

// Show builds the result of SHOW name (case-insensitive) from s; false if there is no
// such list.
func Show(s *Snapshot, name string) (*Result, bool) {
	f, ok := showCommands[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return f(s), true
}

// fakeParams answer SHOW and SET of a few session parameters that some clients query
// or set right after connecting, with PgBouncer's values.
var fakeParams = map[string]string{
	"client_encoding":               "UTF-8",
	"default_transaction_isolation": "read committed",
	"standard_conforming_strings":   "on",
	"datestyle":                     "ISO",
	"timezone":                      "GMT",
}

// PoolCounts are one row of SHOW POOLS.
type PoolCounts struct {
	Database, User                    string
	ClActive, ClWaiting               int
	SvActive, SvIdle, SvUsed, SvLogin int
	MaxWait                           time.Duration
	Mode                              string
}

// openPools returns the pools not being closed, ordered by database and user.
func (s *Snapshot) openPools() []*Pool {
	var ps []*Pool
	for i := range s.Pools {
		if !s.Pools[i].Closed {
			ps = append(ps, &s.Pools[i])
		}
	}
	slices.SortFunc(ps, func(a, b *Pool) int {
		return cmp.Or(cmp.Compare(a.Database, b.Database), cmp.Compare(a.User, b.User))
	})
	return ps
}

// PoolRows returns the rows of SHOW POOLS in order, the console's own first among
// its peers by name.
func (s *Snapshot) PoolRows() []PoolCounts {
	type key struct{ db, user string }
	admins := 0
	byPool := make(map[key][]*Client)
	for i := range s.Clients {
		c := &s.Clients[i]
		if c.Console {
			admins++
			continue
		}
		k := key{c.PoolDatabase, c.PoolUser}
		byPool[k] = append(byPool[k], c)
	}
	rows := []PoolCounts{{Database: ConsoleDatabase, User: ConsoleDatabase, ClActive: admins, Mode: "statement"}}
	for _, p := range s.openPools() {
		pc := PoolCounts{Database: p.Database, User: p.User, SvLogin: p.Opening, Mode: p.Mode}
		for _, sv := range p.Servers {
			switch sv.State {
			case ServerActive:
				pc.SvActive++
			case ServerIdle:
				pc.SvIdle++
			case ServerUsed:
				pc.SvUsed++
			case ServerLogin:
				pc.SvLogin++
			}
		}
		for _, c := range byPool[key{p.Database, p.User}] {
			if c.Waiting {
				pc.ClWaiting++
				if !c.WaitStart.IsZero() {
					pc.MaxWait = max(pc.MaxWait, s.Taken.Sub(c.WaitStart))
				}
			} else {
				pc.ClActive++
			}
		}
		rows = append(rows, pc)
	}
	slices.SortStableFunc(rows, func(a, b PoolCounts) int {
		return cmp.Or(cmp.Compare(a.Database, b.Database), cmp.Compare(a.User, b.User))
	})
	return rows
}

func showPools(s *Snapshot) *Result {
	r := newResult(
		textCol("database"), textCol("user"),
		int4Col("cl_active"), int4Col("cl_waiting"),
		int4Col("cl_active_cancel_req"), int4Col("cl_waiting_cancel_req"),
		int4Col("sv_active"), int4Col("sv_active_cancel"), int4Col("sv_being_canceled"),
		int4Col("sv_idle"), int4Col("sv_used"), int4Col("sv_tested"), int4Col("sv_login"),
		int4Col("maxwait"), int4Col("maxwait_us"), textCol("pool_mode"))
	for _, pc := range s.PoolRows() {
		us := pc.MaxWait.Microseconds()
		r.add(pc.Database, pc.User, pc.ClActive, pc.ClWaiting, 0, 0,
			pc.SvActive, 0, 0, pc.SvIdle, pc.SvUsed, 0, pc.SvLogin,
			us/1e6, us%1e6, pc.Mode)
	}
	return r
}

// socketCols are the columns of SHOW CLIENTS and SHOW SERVERS.
func socketCols() *Result {
	return newResult(
		textCol("type"), textCol("user"), textCol("database"), textCol("state"),
		textCol("addr"), int4Col("port"), textCol("local_addr"), int4Col("local_port"),
		textCol("connect_time"), textCol("request_time"),
		int4Col("wait"), int4Col("wait_us"), int4Col("close_needed"),
		textCol("ptr"), textCol("link"), int4Col("remote_pid"), textCol("tls"),
		textCol("application_name"))
}

// formatTime formats a time as PgBouncer's console does.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// ClientPtr and ServerPtr are the ptr and link columns: unique per connection, so a
// client's link is its server's ptr and the other way round.
func ClientPtr(id uint64) string { return fmt.Sprintf("0x%x", id<<1) }

// ServerPtr is the ptr column of a server connection; see ClientPtr.
func ServerPtr(id uint64) string { return fmt.Sprintf("0x%x", id<<1|1) }

func showClients(s *Snapshot) *Result {
	type row struct {
		db, user string
		order    int
		c        *Client
	}
	rows := make([]row, 0, len(s.Clients))
	for i := range s.Clients {
		c := &s.Clients[i]
		rw := row{db: ConsoleDatabase, user: ConsoleDatabase, c: c}
		if !c.Console {
			rw.db, rw.user = c.PoolDatabase, c.PoolUser
		}
		if c.Waiting {
			rw.order = 1
		}
		rows = append(rows, rw)
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.db, b.db), cmp.Compare(a.user, b.user),
			cmp.Compare(a.order, b.order), cmp.Compare(a.c.ID, b.c.ID))
	})
	r := socketCols()
	r.Columns = append(r.Columns, textCol("pinned")) // pgpool's addition: why the client keeps its server connection
	for _, rw := range rows {
		c := rw.c
		state := "active"
		var wait time.Duration
		if c.Waiting {
			state = "waiting"
			if !c.WaitStart.IsZero() {
				wait = s.Taken.Sub(c.WaitStart)
			}
		}
		link := ""
		if c.ServerID != 0 {
			link = ServerPtr(c.ServerID)
		}
		dbName := rw.db
		if !c.Console {
			dbName = c.Database
		}
		us := wait.Microseconds()
		r.add("C", c.User, dbName, state, c.Addr, c.Port, c.LocalAddr, c.LocalPort,
			formatTime(c.ConnectedAt), formatTime(c.RequestAt),
			us/1e6, us%1e6, 0, ClientPtr(c.ID), link, 0, c.TLS, c.AppName, c.Pinned)
	}
	return r
}

// serverStateOrder orders SHOW SERVERS rows within a pool as PgBouncer lists them.
func serverStateOrder(st string) int {
	switch st {
	case ServerActive:
		return 0
	case ServerIdle:
		return 1
	case ServerUsed:
		return 2
	}
	return 3
}

func showServers(s *Snapshot) *Result {
	r := socketCols()
	for _, p := range s.openPools() {
		ss := slices.Clone(p.Servers)
		slices.SortFunc(ss, func(a, b Server) int {
			return cmp.Or(cmp.Compare(serverStateOrder(a.State), serverStateOrder(b.State)), cmp.Compare(a.ID, b.ID))
		})
		for _, sv := range ss {
			if sv.State == ServerClosed {
				continue
			}
			link := ""
			if sv.ClientID != 0 {
				link = ClientPtr(sv.ClientID)
			}
			r.add("S", sv.User, p.Database, sv.State, sv.Addr, sv.Port, sv.LocalAddr, sv.LocalPort,
				formatTime(sv.CreatedAt), formatTime(sv.LastUsed),
				0, 0, sv.CloseNeeded, ServerPtr(sv.ID), link, sv.PID, sv.TLS, sv.AppName)
		}
	}
	return r
}

func showDatabases(s *Snapshot) *Result {
	r := newResult(
		textCol("name"), textCol("host"), int4Col("port"), textCol("database"),
		textCol("force_user"), int4Col("pool_size"), int4Col("min_pool_size"),
		int4Col("reserve_pool"), textCol("pool_mode"), int4Col("max_connections"),
		int4Col("current_connections"), int4Col("paused"), int4Col("disabled"))
	type dbRow struct {
		name string
		vals []any
	}
	rows := []dbRow{{ConsoleDatabase, []any{ConsoleDatabase, nil, s.ListenPort, ConsoleDatabase, ConsoleDatabase,
		2, 0, 0, "statement", 0, 0, false, false}}}
	for _, db := range s.Databases {
		rows = append(rows, dbRow{db.Name, []any{db.Name, db.Host, db.Port, db.ServerDatabase, nullable(db.ForceUser),
			db.PoolSize, db.MinPoolSize, db.ReservePool, nullable(db.PoolMode), db.MaxConnections, db.CurrentConnections,
			db.Paused, db.Disabled}})
	}
	slices.SortStableFunc(rows, func(a, b dbRow) int { return cmp.Compare(a.name, b.name) })
	for _, row := range rows {
		r.add(row.vals...)
	}
	return r
}

// userRows returns the users SHOW USERS lists, the console's own included, sorted,
// with their pool modes.
func (s *Snapshot) userRows() []User {
	seen := make(map[string]bool, len(s.Users)+1)
	us := make([]User, 0, len(s.Users)+1)
	for _, u := range s.Users {
		if !seen[u.Name] {
			seen[u.Name] = true
			us = append(us, u)
		}
	}
	if !seen[ConsoleDatabase] {
		us = append(us, User{Name: ConsoleDatabase})
	}
	slices.SortFunc(us, func(a, b User) int { return cmp.Compare(a.Name, b.Name) })
	return us
}

func showUsers(s *Snapshot) *Result {
	r := newResult(textCol("name"), textCol("pool_mode"))
	for _, u := range s.userRows() {
		r.add(u.Name, nullable(u.PoolMode))
	}
	return r
}

// serverCount returns the number of open server connections, of closing pools too.
func (s *Snapshot) serverCount() int {
	n := 0
	for _, p := range s.Pools {
		n += len(p.Servers)
	}
	return n
}

func showLists(s *Snapshot) *Result {
	r := newResult(textCol("list"), int4Col("items"))
	r.add("databases", len(s.Databases)+1)
	r.add("users", len(s.userRows()))
	r.add("pools", len(s.openPools())+1)
	r.add("free_clients", 0)
	r.add("used_clients", len(s.Clients)+s.LoginClients)
	r.add("login_clients", s.LoginClients)
	r.add("free_servers", 0)
	r.add("used_servers", s.serverCount())
	r.add("dns_names", 0)
	r.add("dns_zones", 0)
	r.add("dns_queries", 0)
	r.add("dns_pending", 0)
	return r
}

// showMem estimates memory by object kind: pgpool has no slab caches, so size is the
// size of the Go struct (buffers for iobuf), used the number of live objects and free
// always 0.
func showMem(s *Snapshot) *Result {
	nclients := len(s.Clients) + s.LoginClients
	nservers := s.serverCount()
	r := newResult(textCol("name"), int4Col("size"), int4Col("used"), int4Col("free"), int4Col("memtotal"))
	add := func(name string, size, used int) {
		r.add(name, size, used, 0, size*used)
	}
	add("user_cache", s.Sizes.User, len(s.userRows()))
	add("db_cache", s.Sizes.Database, len(s.Databases)+1)
	add("pool_cache", s.Sizes.Pool, len(s.openPools())+1)
	add("server_cache", s.Sizes.Server, nservers)
	add("client_cache", s.Sizes.Client, nclients)
	add("iobuf_cache", 8<<10, nclients+nservers)
	return r
}

func showVersion(s *Snapshot) *Result {
	r := newResult(textCol("version"))
	r.add(s.Version)
	return r
}

func showState(s *Snapshot) *Result {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	r := newResult(textCol("key"), textCol("value"))
	r.add("active", yesNo(!s.Paused))
	r.add("paused", yesNo(s.Paused))
	r.add("suspended", yesNo(s.Suspended))
	return r
}

// showConfig is SHOW CONFIG; owner says the caller is pgpool's own OS user, who may
// change the settings deciding who may log in.
func showConfig(s *Snapshot, owner bool) *Result {
	r := newResult(textCol("key"), textCol("value"), textCol("default"), textCol("changeable"))
	for _, c := range s.Config {
		changeable := "yes"
		if !c.Changeable || (c.OwnerOnly && !owner) {
			changeable = "no"
		}
		r.add(c.Key, c.Value, c.Default, changeable)
	}
	return r
}

func showDNSHosts(*Snapshot) *Result {
	return newResult(textCol("hostname"), int8Col("ttl"), textCol("addrs"))
}

func showDNSZones(*Snapshot) *Result {
	return newResult(textCol("zonename"), int8Col("serial"), int4Col("count"))
}
