package pgini

import (
	"math"
	"net"
	"sort"
	"strings"
	"time"
)

// setting is one [pgbouncer] key: its PgBouncer default and how its value
// is stored. Defaults live only here; Default applies them.
type setting struct {
	name string
	def  string
	// set parses v into c; nil for settings pgpool does not implement.
	set func(c *Config, v string) error
	// check validates the value of an unimplemented setting.
	check func(v string) error
}

const (
	maxCInt = math.MaxInt32 // PgBouncer's CF_INT is a C int
)

func strSetting(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func listSetting(f func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = splitList(v); return nil }
}

func intSetting(lo, hi int64, f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseCInt(v, lo, hi)
		if err != nil {
			return err
		}
		*f(c) = int(n)
		return nil
	}
}

// addrSetting is a host:port address to listen on (the host may be empty: every
// address); empty: none.
func addrSetting(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return invalidf("an address is host:port")
			}
		}
		*f(c) = v
		return nil
	}
}

// boolSetting parses PgBouncer's integer flags: 0 is false, any other
// integer true.
func boolSetting(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseCInt(v, math.MinInt32, maxCInt)
		if err != nil {
			return invalidf("a flag is an integer, 0 or 1")
		}
		*f(c) = n != 0
		return nil
	}
}

// secondsSetting parses a CF_TIME_USEC setting: fractional seconds.
func secondsSetting(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseSeconds(v)
		if err != nil {
			return err
		}
		*f(c) = d
		return nil
	}
}

// intDurationSetting parses a CF_INT setting counted in whole units.
func intDurationSetting(unit time.Duration, f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseCInt(v, 0, maxCInt)
		if err != nil {
			return err
		}
		*f(c) = time.Duration(n) * unit
		return nil
	}
}

func enumSetting[T ~int](parse func(string) (T, error), f func(*Config) *T) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := parse(v)
		if err != nil {
			return err
		}
		*f(c) = x
		return nil
	}
}

func checkInt(v string) error     { _, err := parseCInt(v, math.MinInt32, maxCInt); return err }
func checkSeconds(v string) error { _, err := parseSeconds(v); return err }
func checkAny(string) error       { return nil }

// settings lists every [pgbouncer] key of PgBouncer 1.18 through 1.25, in
// alphabetical order as in PgBouncer's SHOW CONFIG.
var settings = []setting{
	{name: "admin_users", set: listSetting(func(c *Config) *[]string { return &c.AdminUsers })},
	{name: "application_name_add_host", def: "0", set: boolSetting(func(c *Config) *bool { return &c.ApplicationNameAddHost })},
	{name: "auth_dbname", set: strSetting(func(c *Config) *string { return &c.AuthDBName })},
	{name: "auth_file", set: strSetting(func(c *Config) *string { return &c.AuthFile })},
	{name: "auth_hba_file", set: strSetting(func(c *Config) *string { return &c.AuthHBAFile })},
	{name: "auth_ident_file", set: strSetting(func(c *Config) *string { return &c.AuthIdentFile })},
	{name: "auth_ldap_options", check: checkAny},
	{name: "auth_query", def: "SELECT usename, passwd FROM pg_shadow WHERE usename=$1", set: strSetting(func(c *Config) *string { return &c.AuthQuery })},
	{name: "auth_type", def: "md5", set: enumSetting(ParseAuthType, func(c *Config) *AuthType { return &c.AuthType })},
	{name: "auth_user", set: strSetting(func(c *Config) *string { return &c.AuthUser })},
	{name: "autodb_idle_timeout", def: "3600", set: secondsSetting(func(c *Config) *time.Duration { return &c.AutodbIdleTimeout })},
	{name: "cancel_wait_timeout", def: "10", set: secondsSetting(func(c *Config) *time.Duration { return &c.CancelWaitTimeout })},
	{name: "client_idle_timeout", def: "0", set: secondsSetting(func(c *Config) *time.Duration { return &c.ClientIdleTimeout })},
	{name: "client_login_timeout", def: "60", set: secondsSetting(func(c *Config) *time.Duration { return &c.ClientLoginTimeout })},
	{name: "client_tls13_ciphers", set: strSetting(func(c *Config) *string { return &c.ClientTLS.TLS13Ciphers })},
	{name: "client_tls_ca_file", set: strSetting(func(c *Config) *string { return &c.ClientTLS.CAFile })},
	{name: "client_tls_cert_file", set: strSetting(func(c *Config) *string { return &c.ClientTLS.CertFile })},
	{name: "client_tls_ciphers", def: "fast", set: strSetting(func(c *Config) *string { return &c.ClientTLS.Ciphers })},
	{name: "client_tls_dheparams", def: "auto", check: checkAny},
	{name: "client_tls_ecdhcurve", def: "auto", check: checkAny},
	{name: "client_tls_key_file", set: strSetting(func(c *Config) *string { return &c.ClientTLS.KeyFile })},
	{name: "client_tls_protocols", def: "secure", set: strSetting(func(c *Config) *string { return &c.ClientTLS.Protocols })},
	{name: "client_tls_sslmode", def: "disable", set: enumSetting(ParseSSLMode, func(c *Config) *SSLMode { return &c.ClientTLS.SSLMode })},
	{name: "conffile", check: checkAny},
	{name: "default_pool_size", def: "20", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.DefaultPoolSize })},
	{name: "disable_pqexec", def: "0", check: checkInt},
	{name: "dns_max_ttl", def: "15", set: secondsSetting(func(c *Config) *time.Duration { return &c.DNSMaxTTL })},
	{name: "dns_nxdomain_ttl", def: "15", set: secondsSetting(func(c *Config) *time.Duration { return &c.DNSNXDomainTTL })},
	{name: "dns_zone_check_period", def: "0", check: checkSeconds},
	{name: "idle_transaction_timeout", def: "0", set: secondsSetting(func(c *Config) *time.Duration { return &c.IdleTransactionTimeout })},
	{name: "ignore_startup_parameters", set: listSetting(func(c *Config) *[]string { return &c.IgnoreStartupParameters })},
	{name: "job_name", def: "pgbouncer", check: checkAny},
	{name: "listen_addr", set: listSetting(func(c *Config) *[]string { return &c.ListenAddr })},
	{name: "listen_backlog", def: "128", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.ListenBacklog })},
	{name: "listen_port", def: "6432", set: intSetting(0, 65535, func(c *Config) *int { return &c.ListenPort })},
	{name: "log_connections", def: "1", set: boolSetting(func(c *Config) *bool { return &c.LogConnections })},
	{name: "log_disconnections", def: "1", set: boolSetting(func(c *Config) *bool { return &c.LogDisconnections })},
	{name: "log_pooler_errors", def: "1", set: boolSetting(func(c *Config) *bool { return &c.LogPoolerErrors })},
	{name: "log_stats", def: "1", set: boolSetting(func(c *Config) *bool { return &c.LogStats })},
	{name: "log_format", def: "text", set: func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "text", "json":
			c.LogFormat = strings.ToLower(v)
			return nil
		}
		return invalidf("log_format is text or json")
	}},
	{name: "logfile", set: strSetting(func(c *Config) *string { return &c.Logfile })},
	{name: "login_notify_message", check: checkAny},
	{name: "max_client_conn", def: "100", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxClientConn })},
	{name: "max_db_client_connections", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxDBClientConnections })},
	{name: "max_db_connections", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxDBConnections })},
	{name: "max_packet_size", def: "2147483647", set: func(c *Config, v string) error {
		n, err := parseCInt(v, 0, math.MaxUint32)
		if err != nil {
			return err
		}
		c.MaxPacketSize = n
		return nil
	}},
	{name: "max_prepared_statements", def: "200", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxPreparedStatements })},
	{name: "max_user_client_connections", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxUserClientConnections })},
	{name: "max_user_connections", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MaxUserConnections })},
	{name: "metrics_listen", set: addrSetting(func(c *Config) *string { return &c.MetricsListen })},
	{name: "min_pool_size", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.MinPoolSize })},
	{name: "peer_id", def: "0", check: checkInt},
	{name: "pidfile", set: strSetting(func(c *Config) *string { return &c.Pidfile })},
	{name: "pkt_buf", def: "4096", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.PktBuf })},
	{name: "pool_idle_timeout", def: "0", check: checkSeconds},
	{name: "pool_mode", def: "session", set: enumSetting(ParsePoolMode, func(c *Config) *PoolMode { return &c.PoolMode })},
	{name: "query_timeout", def: "0", set: secondsSetting(func(c *Config) *time.Duration { return &c.QueryTimeout })},
	{name: "query_wait_notify", def: "5", set: intDurationSetting(time.Second, func(c *Config) *time.Duration { return &c.QueryWaitNotify })},
	{name: "query_wait_timeout", def: "120", set: secondsSetting(func(c *Config) *time.Duration { return &c.QueryWaitTimeout })},
	{name: "reserve_pool_size", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.ReservePoolSize })},
	{name: "reserve_pool_timeout", def: "5", set: secondsSetting(func(c *Config) *time.Duration { return &c.ReservePoolTimeout })},
	{name: "resolv_conf", check: checkAny},
	{name: "sbuf_loopcnt", def: "5", check: checkInt},
	{name: "scram_iterations", def: "4096", set: intSetting(1, maxCInt, func(c *Config) *int { return &c.ScramIterations })},
	{name: "server_check_delay", def: "30", set: secondsSetting(func(c *Config) *time.Duration { return &c.ServerCheckDelay })},
	{name: "server_check_query", def: "select 1", set: strSetting(func(c *Config) *string { return &c.ServerCheckQuery })},
	{name: "server_connect_timeout", def: "15", set: secondsSetting(func(c *Config) *time.Duration { return &c.ServerConnectTimeout })},
	{name: "server_fast_close", def: "0", set: boolSetting(func(c *Config) *bool { return &c.ServerFastClose })},
	{name: "server_idle_timeout", def: "600", set: secondsSetting(func(c *Config) *time.Duration { return &c.ServerIdleTimeout })},
	{name: "server_lifetime", def: "3600", set: secondsSetting(func(c *Config) *time.Duration { return &c.ServerLifetime })},
	{name: "server_login_retry", def: "15", set: secondsSetting(func(c *Config) *time.Duration { return &c.ServerLoginRetry })},
	{name: "server_reset_query", def: "DISCARD ALL", set: strSetting(func(c *Config) *string { return &c.ServerResetQuery })},
	{name: "server_reset_query_always", def: "0", set: boolSetting(func(c *Config) *bool { return &c.ServerResetQueryAlways })},
	{name: "server_round_robin", def: "0", set: boolSetting(func(c *Config) *bool { return &c.ServerRoundRobin })},
	{name: "server_tls13_ciphers", set: strSetting(func(c *Config) *string { return &c.ServerTLS.TLS13Ciphers })},
	{name: "server_tls_ca_file", set: strSetting(func(c *Config) *string { return &c.ServerTLS.CAFile })},
	{name: "server_tls_cert_file", set: strSetting(func(c *Config) *string { return &c.ServerTLS.CertFile })},
	{name: "server_tls_ciphers", def: "fast", set: strSetting(func(c *Config) *string { return &c.ServerTLS.Ciphers })},
	{name: "server_tls_key_file", set: strSetting(func(c *Config) *string { return &c.ServerTLS.KeyFile })},
	{name: "server_tls_protocols", def: "secure", set: strSetting(func(c *Config) *string { return &c.ServerTLS.Protocols })},
	{name: "server_tls_sslmode", def: "prefer", set: enumSetting(ParseSSLMode, func(c *Config) *SSLMode { return &c.ServerTLS.SSLMode })},
	{name: "service_name", check: checkAny},
	{name: "session_pinning", def: "1", set: boolSetting(func(c *Config) *bool { return &c.SessionPinning })},
	{name: "so_reuseport", def: "0", set: boolSetting(func(c *Config) *bool { return &c.SoReuseport })},
	{name: "stats_period", def: "60", set: intDurationSetting(time.Second, func(c *Config) *time.Duration { return &c.StatsPeriod })},
	{name: "stats_users", set: listSetting(func(c *Config) *[]string { return &c.StatsUsers })},
	{name: "suspend_timeout", def: "10", set: secondsSetting(func(c *Config) *time.Duration { return &c.SuspendTimeout })},
	{name: "syslog", def: "0", set: boolSetting(func(c *Config) *bool { return &c.Syslog })},
	{name: "syslog_facility", def: "daemon", set: func(c *Config, v string) error {
		if !syslogFacilities[strings.ToLower(v)] {
			return invalidf("unknown syslog facility (auth, authpriv, daemon, user, local0 to local7)")
		}
		c.SyslogFacility = v
		return nil
	}},
	{name: "syslog_ident", def: "pgbouncer", set: strSetting(func(c *Config) *string { return &c.SyslogIdent })},
	{name: "tcp_defer_accept", def: "1", check: checkInt},
	{name: "tcp_keepalive", def: "1", set: boolSetting(func(c *Config) *bool { return &c.TCPKeepalive })},
	{name: "tcp_keepcnt", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.TCPKeepcnt })},
	{name: "tcp_keepidle", def: "0", set: intDurationSetting(time.Second, func(c *Config) *time.Duration { return &c.TCPKeepidle })},
	{name: "tcp_keepintvl", def: "0", set: intDurationSetting(time.Second, func(c *Config) *time.Duration { return &c.TCPKeepintvl })},
	{name: "tcp_socket_buffer", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.TCPSocketBuffer })},
	{name: "tcp_user_timeout", def: "0", set: intDurationSetting(time.Millisecond, func(c *Config) *time.Duration { return &c.TCPUserTimeout })},
	{name: "track_extra_parameters", def: "IntervalStyle", set: listSetting(func(c *Config) *[]string { return &c.TrackExtraParameters })},
	{name: "transaction_timeout", def: "0", set: secondsSetting(func(c *Config) *time.Duration { return &c.TransactionTimeout })},
	{name: "unix_socket_dir", def: "/tmp", set: strSetting(func(c *Config) *string { return &c.UnixSocketDir })},
	{name: "unix_socket_group", set: strSetting(func(c *Config) *string { return &c.UnixSocketGroup })},
	{name: "unix_socket_mode", def: "0777", set: intSetting(0, 0o7777, func(c *Config) *int { return &c.UnixSocketMode })},
	{name: "user", set: strSetting(func(c *Config) *string { return &c.OSUser })},
	{name: "verbose", def: "0", set: intSetting(0, maxCInt, func(c *Config) *int { return &c.Verbose })},
}

// settingIndex maps lower-case setting names to their entry.
var settingIndex = func() map[string]*setting {
	m := make(map[string]*setting, len(settings))
	for i := range settings {
		m[settings[i].name] = &settings[i]
	}
	return m
}()

func lookupSetting(key string) *setting { return settingIndex[strings.ToLower(key)] }

// Default returns a Config holding PgBouncer's defaults (see the package
// documentation for where pgpool's differ), no databases and no users.
func Default() *Config {
	c := &Config{
		Databases: map[string]*Database{},
		Users:     map[string]*User{},
	}
	c.resetSettings()
	return c
}

// resetSettings sets every [pgbouncer] setting to its default, as
// PgBouncer does at each [pgbouncer] header.
func (c *Config) resetSettings() {
	for i := range settings {
		s := &settings[i]
		if s.set == nil {
			continue
		}
		if err := s.set(c, s.def); err != nil {
			panic("pgini: bad default for " + s.name + ": " + err.Error())
		}
	}
	c.Ignored = nil
	c.pos = nil
}

// Setting describes one [pgbouncer] setting, as listed by Settings.
type Setting struct {
	Name        string // canonical lower-case name
	Default     string // PgBouncer's default as text ("" for none)
	Implemented bool   // false: recognised, warned about and ignored
}

// Settings lists every [pgbouncer] setting pgini recognises, sorted by
// name, with its default and whether pgpool implements it.
func Settings() []Setting {
	out := make([]Setting, len(settings))
	for i, s := range settings {
		out[i] = Setting{Name: s.name, Default: s.def, Implemented: s.set != nil}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SettingPos reports where the [pgbouncer] setting name (any case) was last
// set in the loaded files; ok is false if it kept its default.
func (c *Config) SettingPos(name string) (pos Pos, ok bool) {
	pos, ok = c.pos[strings.ToLower(name)]
	return pos, ok
}

// syslogFacilities are the syslog_facility names PgBouncer accepts.
var syslogFacilities = map[string]bool{
	"auth": true, "authpriv": true, "daemon": true, "user": true,
	"local0": true, "local1": true, "local2": true, "local3": true,
	"local4": true, "local5": true, "local6": true, "local7": true,
}
