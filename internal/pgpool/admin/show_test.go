package admin

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// testSnapshot is a pooler with two pools of database "app" (one closing), a
// console client, an active client bound to a server connection and a client
// waiting for 2.5 s.
func testSnapshot() *Snapshot {
	taken := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return &Snapshot{
		Taken:      taken,
		Version:    "PgBouncer 1.18.0 (pgpool test)",
		ListenPort: 6432,
		Clients: []Client{
			{ID: 9, User: "adm", Database: "pgpool", Console: true, Addr: "unix", ConnectedAt: taken, RequestAt: taken},
			{ID: 4, User: "alice", Database: "app", PoolDatabase: "app", PoolUser: "alice", Waiting: true, WaitStart: taken.Add(-2500 * time.Millisecond),
				Addr: "127.0.0.1", Port: 40000, ConnectedAt: taken.Add(-time.Hour), RequestAt: taken.Add(-3 * time.Second)},
			{ID: 3, User: "alice", Database: "app", PoolDatabase: "app", PoolUser: "alice", ServerID: 7, AppName: "psql", Pinned: "advisory_lock",
				Addr: "127.0.0.1", Port: 40001, ConnectedAt: taken.Add(-time.Minute), RequestAt: taken.Add(-time.Second)},
		},
		LoginClients: 1,
		Pools: []Pool{
			{Database: "app", User: "alice", Mode: "transaction", Opening: 1, Pinned: 1,
				Stats: Totals{Xacts: 100, Queries: 300, Received: 5000, Sent: 9000, XactUS: 2000, QueryUS: 1500, WaitUS: 700},
				Servers: []Server{
					{ID: 8, User: "alice", State: ServerIdle, Addr: "127.0.0.1", Port: 5432, PID: 1001},
					{ID: 7, User: "alice", State: ServerActive, Addr: "127.0.0.1", Port: 5432, PID: 1000, ClientID: 3, CloseNeeded: true},
					{ID: 6, User: "alice", State: ServerClosed},
				}},
			{Database: "app", User: "bob", Mode: "session", Closed: true,
				Stats:   Totals{Xacts: 10, Queries: 10},
				Servers: []Server{{ID: 5, User: "bob", State: ServerUsed}}},
		},
		Databases: []Database{{Name: "app", Host: "localhost", Port: 5432, ServerDatabase: "app_real", PoolSize: 20, MaxConnections: 0, CurrentConnections: 3}},
		Users:     []User{{Name: "alice", PoolMode: "session"}, {Name: "bob"}},
		Config:    []Setting{{Key: "max_client_conn", Value: "100", Default: "100", Changeable: true}, {Key: "auth_type", Value: "md5", Default: "md5"}},
		Console:   Totals{Xacts: 4, Queries: 4, Received: 80},
		Since: Sample{At: taken.Add(-10 * time.Second), ByDatabase: map[string]Totals{
			"app": {Xacts: 60, Queries: 210, Received: 4000, Sent: 8000, XactUS: 1200, QueryUS: 600, WaitUS: 200},
		}},
		Sizes: Sizes{User: 10, Database: 20, Pool: 30, Server: 40, Client: 50},
	}
}

func show(t *testing.T, s *Snapshot, name string) *Result {
	t.Helper()
	r, ok := Show(s, name)
	if !ok {
		t.Fatalf("SHOW %s: unknown", name)
	}
	for i, row := range r.Rows {
		if len(row) != len(r.Columns) {
			t.Fatalf("SHOW %s row %d: %d values for %d columns", name, i, len(row), len(r.Columns))
		}
	}
	return r
}

func names(r *Result) string {
	var ns []string
	for _, c := range r.Columns {
		ns = append(ns, c.Name)
	}
	return strings.Join(ns, ",")
}

// rowOf returns the row whose column key has value val, by column name.
func rowOf(t *testing.T, r *Result, key, val string) map[string]string {
	t.Helper()
	keys := r.Column(key)
	for i, k := range keys {
		if k == val {
			m := make(map[string]string)
			for j, c := range r.Columns {
				if v := r.Rows[i][j]; v == nil {
					m[c.Name] = "NULL"
				} else {
					m[c.Name] = string(v)
				}
			}
			return m
		}
	}
	t.Fatalf("no row with %s = %s in %v", key, val, keys)
	return nil
}

func TestShowPools(t *testing.T) {
	r := show(t, testSnapshot(), "POOLS")
	if got, want := names(r), "database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,sv_active,sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,sv_login,maxwait,maxwait_us,pool_mode"; got != want {
		t.Fatalf("columns %s, want %s", got, want)
	}
	if got := strings.Join(r.Column("user"), ","); got != "alice,pgbouncer" {
		t.Fatalf("pools %s: the closing pool is listed or the console's missing", got)
	}
	want := map[string]string{
		"database": "app", "user": "alice", "cl_active": "1", "cl_waiting": "1", "sv_active": "1", "sv_idle": "1",
		"sv_used": "0", "sv_login": "1", "maxwait": "2", "maxwait_us": "500000", "pool_mode": "transaction",
	}
	got := rowOf(t, r, "user", "alice")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if c := rowOf(t, r, "user", "pgbouncer"); c["cl_active"] != "1" || c["pool_mode"] != "statement" {
		t.Errorf("console's pool: %v", c)
	}
	if r.Columns[2].OID != OIDInt4 || r.Columns[0].OID != OIDText {
		t.Errorf("column types %v", r.Columns)
	}
}

func TestShowClientsAndServersLinked(t *testing.T) {
	s := testSnapshot()
	cl := show(t, s, "clients")
	sv := show(t, s, "servers")
	if got := strings.Join(cl.Column("ptr"), ","); got != ClientPtr(3)+","+ClientPtr(4)+","+ClientPtr(9) {
		t.Errorf("client order %s: want the pool's active, then waiting, then the console's", got)
	}
	active := rowOf(t, cl, "ptr", ClientPtr(3))
	server := rowOf(t, sv, "ptr", ServerPtr(7))
	if active["link"] != server["ptr"] || server["link"] != active["ptr"] {
		t.Errorf("client %v and server %v not linked", active, server)
	}
	if active["pinned"] != "advisory_lock" || active["application_name"] != "psql" || active["request_time"] != "2024-05-01 11:59:59 UTC" {
		t.Errorf("active client: %v", active)
	}
	waiting := rowOf(t, cl, "ptr", ClientPtr(4))
	if waiting["state"] != "waiting" || waiting["wait"] != "2" || waiting["wait_us"] != "500000" || waiting["link"] != "" {
		t.Errorf("waiting client: %v", waiting)
	}
	if console := rowOf(t, cl, "ptr", ClientPtr(9)); console["database"] != "pgbouncer" {
		t.Errorf("console client: %v", console)
	}
	// Closed connections and those of closing pools are not listed; active first.
	if got := strings.Join(sv.Column("state"), ","); got != "active,idle" {
		t.Errorf("servers %s", got)
	}
	if server["close_needed"] != "1" || server["remote_pid"] != "1000" || server["database"] != "app" {
		t.Errorf("server: %v", server)
	}
	if names(sv)+",pinned" != names(cl) {
		t.Errorf("SHOW CLIENTS %s is not SHOW SERVERS' columns and pinned", names(cl))
	}
}

func TestShowStatsFromSample(t *testing.T) {
	s := testSnapshot()
	r := show(t, s, "stats")
	app := rowOf(t, r, "database", "app")
	// Both pools of app count, the closing one too; averages are over the 10 s since
	// the sample: (110-60)/10 transactions a second, (2000-1200)/50 us a transaction.
	want := map[string]string{
		"total_xact_count": "110", "total_query_count": "310", "total_received": "5000",
		"avg_xact_count": "5", "avg_query_count": "10", "avg_recv": "100", "avg_sent": "100",
		"avg_xact_time": "16", "avg_query_time": "9", "avg_wait_time": "50", "pinned_clients": "1",
	}
	for k, v := range want {
		if app[k] != v {
			t.Errorf("%s = %s, want %s", k, app[k], v)
		}
	}
	if c := rowOf(t, r, "database", "pgbouncer"); c["total_query_count"] != "4" {
		t.Errorf("console's stats: %v", c)
	}
	if r.Columns[1].OID != OIDNumeric {
		t.Errorf("stat columns are %d", r.Columns[1].OID)
	}
	totals := show(t, s, "totals")
	if got := rowOf(t, totals, "name", "total_query_count")["value"]; got != "314" {
		t.Errorf("total_query_count %s", got)
	}
	avg := show(t, s, "stats_averages")
	if got := rowOf(t, avg, "database", "app")["xact_count"]; got != "5" {
		t.Errorf("stats_averages xact_count %s", got)
	}
}

func TestShowStatsPreparedCounts(t *testing.T) {
	s := testSnapshot()
	s.Pools[0].Stats.ClientParses, s.Pools[0].Stats.ServerParses, s.Pools[0].Stats.Binds = 30, 20, 150
	s.Since.ByDatabase["app"] = Totals{ClientParses: 10, ServerParses: 10, Binds: 50}
	cols := func(r *Result) string {
		var names []string
		for _, c := range r.Columns {
			names = append(names, c.Name)
		}
		return strings.Join(names, ",")
	}
	// PgBouncer 1.24 puts them after the wait time, in totals and in averages.
	want := map[string]string{
		"stats": "database,total_xact_count,total_query_count,total_received,total_sent,total_xact_time,total_query_time,total_wait_time," +
			"total_client_parse_count,total_server_parse_count,total_bind_count," +
			"avg_xact_count,avg_query_count,avg_recv,avg_sent,avg_xact_time,avg_query_time,avg_wait_time," +
			"avg_client_parse_count,avg_server_parse_count,avg_bind_count,pinned_clients",
		"stats_totals": "database,xact_count,query_count,bytes_received,bytes_sent,xact_time,query_time,wait_time," +
			"client_parse_count,server_parse_count,bind_count",
		"stats_averages": "database,xact_count,query_count,bytes_received,bytes_sent,xact_time,query_time,wait_time," +
			"avg_client_parse_count,avg_server_parse_count,avg_bind_count",
	}
	for name, w := range want {
		if got := cols(show(t, s, name)); got != w {
			t.Errorf("SHOW %s columns:\n got  %s\n want %s", name, got, w)
		}
	}
	// Averages are per second over the 10 s since the sample.
	app := rowOf(t, show(t, s, "stats"), "database", "app")
	for k, v := range map[string]string{
		"total_client_parse_count": "30", "total_server_parse_count": "20", "total_bind_count": "150",
		"avg_client_parse_count": "2", "avg_server_parse_count": "1", "avg_bind_count": "10",
	} {
		if app[k] != v {
			t.Errorf("SHOW STATS %s = %s, want %s", k, app[k], v)
		}
	}
	if got := rowOf(t, show(t, s, "stats_totals"), "database", "app")["bind_count"]; got != "150" {
		t.Errorf("SHOW STATS_TOTALS bind_count %s", got)
	}
	if got := rowOf(t, show(t, s, "stats_averages"), "database", "app")["avg_bind_count"]; got != "10" {
		t.Errorf("SHOW STATS_AVERAGES avg_bind_count %s", got)
	}
	totals := show(t, s, "totals")
	for k, v := range map[string]string{"total_ps_client_parse_count": "30", "total_ps_bind_count": "150", "avg_ps_server_parse_count": "1"} {
		if got := rowOf(t, totals, "name", k)["value"]; got != v {
			t.Errorf("SHOW TOTALS %s = %s, want %s", k, got, v)
		}
	}
}

func TestShowListsDatabasesUsers(t *testing.T) {
	s := testSnapshot()
	lists := show(t, s, "lists")
	want := map[string]string{"databases": "2", "users": "3", "pools": "2", "used_clients": "4", "login_clients": "1", "used_servers": "4"}
	for k, v := range want {
		if got := rowOf(t, lists, "list", k)["items"]; got != v {
			t.Errorf("SHOW LISTS %s = %s, want %s", k, got, v)
		}
	}
	dbs := show(t, s, "databases")
	app := rowOf(t, dbs, "name", "app")
	if app["force_user"] != "NULL" || app["pool_mode"] != "NULL" || app["database"] != "app_real" || app["current_connections"] != "3" {
		t.Errorf("SHOW DATABASES app: %v", app)
	}
	if c := rowOf(t, dbs, "name", "pgbouncer"); c["port"] != "6432" || c["host"] != "NULL" {
		t.Errorf("console's database: %v", c)
	}
	users := show(t, s, "users")
	if got := strings.Join(users.Column("name"), ","); got != "alice,bob,pgbouncer" {
		t.Errorf("users %s", got)
	}
	if got := rowOf(t, users, "name", "alice")["pool_mode"]; got != "session" {
		t.Errorf("alice's pool_mode %s", got)
	}
	mem := show(t, s, "mem")
	if got := rowOf(t, mem, "name", "client_cache"); got["used"] != "4" || got["memtotal"] != "200" {
		t.Errorf("client_cache %v", got)
	}
	cfg := show(t, s, "config")
	if got := rowOf(t, cfg, "key", "auth_type")["changeable"]; got != "no" {
		t.Errorf("auth_type changeable %s", got)
	}
	if got := show(t, s, "version").Column("version"); !reflect.DeepEqual(got, []string{s.Version}) {
		t.Errorf("version %v", got)
	}
	s.Paused = true
	if got := strings.Join(show(t, s, "state").Column("value"), ","); got != "no,yes,no" {
		t.Errorf("SHOW STATE paused: %s", got)
	}
}

func TestSamplerMovesOnAfterPeriod(t *testing.T) {
	var sm Sampler
	start := time.Unix(1000, 0)
	a := map[string]Totals{"db": {Xacts: 1}}
	if got := sm.Observe(start, start.Add(time.Second), a); !got.At.Equal(start) || len(got.ByDatabase) != 0 {
		t.Fatalf("first sample: %+v, want the start with zero counters", got)
	}
	b := map[string]Totals{"db": {Xacts: 2}}
	if got := sm.Observe(start, start.Add(30*time.Second), b); !got.At.Equal(start) {
		t.Fatalf("within the period: %+v", got)
	}
	if got := sm.Observe(start, start.Add(61*time.Second), b); !got.At.Equal(start.Add(time.Second)) || got.ByDatabase["db"].Xacts != 1 {
		t.Fatalf("after the period: %+v, want the first observation", got)
	}
}

// TestShowSockets: SHOW SOCKETS is the clients and the servers in one result with
// PgBouncer's columns (states prefixed cl_ and sv_, buffer columns after
// application_name); ACTIVE_SOCKETS only the linked ones.
func TestShowSockets(t *testing.T) {
	s := testSnapshot()
	all := show(t, s, "sockets")
	want := names(show(t, s, "servers")) + ",recv_pos,pkt_pos,pkt_remain,send_pos,send_remain,pkt_avail,send_avail"
	if names(all) != want {
		t.Fatalf("columns %s, want %s", names(all), want)
	}
	if got := strings.Join(all.Column("state"), ","); got != "cl_active,cl_waiting,cl_active,sv_active,sv_idle" {
		t.Errorf("states %s", got)
	}
	if rowOf(t, all, "ptr", ClientPtr(3))["link"] != ServerPtr(7) || rowOf(t, all, "ptr", ServerPtr(7))["recv_pos"] != "0" {
		t.Errorf("sockets rows: %v", all.Rows)
	}
	active := show(t, s, "active_sockets")
	if got := strings.Join(active.Column("ptr"), ","); got != ClientPtr(3)+","+ServerPtr(7) {
		t.Errorf("active sockets %s, want the linked client and server", got)
	}
}
