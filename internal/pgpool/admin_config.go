package pgpool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// configParam is one setting SHOW CONFIG lists and SET may change, under its
// pgbouncer.ini name.
type configParam struct {
	name string
	get  func(*Config) string
	// set parses a value into the Config; nil when the setting cannot change while
	// pgpool runs.
	set func(*Config, string) error
}

// Errors of the console's SET.
var (
	// errBadValue: a SET value does not parse or is out of range.
	errBadValue = errors.New("pgpool: invalid value")
	// errNotChangeable: the setting cannot change through the console.
	errNotChangeable = errors.New("pgpool: not changeable")
	// errUnknownSetting: no setting has the name.
	errUnknownSetting = errors.New("pgpool: unknown setting")
)

// setError is a refused SET: its text is the Detail the console answers with, kind
// the sentinel it wraps.
type setError struct {
	kind error
	msg  string
}

func (e *setError) Error() string { return e.msg }
func (e *setError) Unwrap() error { return e.kind }

func intParam(name string, field func(*Config) *int) configParam {
	return configParam{
		name: name,
		get:  func(g *Config) string { return strconv.Itoa(*field(g)) },
		set: func(g *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: %s wants a non-negative integer", errBadValue, name)
			}
			*field(g) = n
			return nil
		},
	}
}

// durationParam shows a duration in seconds, as pgbouncer.ini has it; SET takes
// seconds or a Go duration ("1.5", "90s", "250ms").
func durationParam(name string, field func(*Config) *time.Duration) configParam {
	return configParam{
		name: name,
		get: func(g *Config) string {
			return strconv.FormatFloat(field(g).Seconds(), 'f', -1, 64)
		},
		set: func(g *Config, v string) error {
			d, err := parseSeconds(v)
			if err != nil || d < 0 {
				return fmt.Errorf("%w: %s wants a duration in seconds", errBadValue, name)
			}
			*field(g) = d
			return nil
		},
	}
}

func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

func boolParam(name string, field func(*Config) *bool) configParam {
	return configParam{
		name: name,
		get: func(g *Config) string {
			if *field(g) {
				return "1"
			}
			return "0"
		},
		set: func(g *Config, v string) error {
			switch strings.ToLower(v) {
			case "1", "on", "true", "yes":
				*field(g) = true
			case "0", "off", "false", "no":
				*field(g) = false
			default:
				return fmt.Errorf("%w: %s wants a boolean", errBadValue, name)
			}
			return nil
		},
	}
}

func stringParam(name string, field func(*Config) *string) configParam {
	return configParam{
		name: name,
		get:  func(g *Config) string { return *field(g) },
		set:  func(g *Config, v string) error { *field(g) = v; return nil },
	}
}

// listParam is a comma-separated list.
func listParam(name string, field func(*Config) *[]string) configParam {
	return configParam{
		name: name,
		get:  func(g *Config) string { return strings.Join(*field(g), ",") },
		set: func(g *Config, v string) error {
			var list []string
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			*field(g) = list
			return nil
		},
	}
}

// authTypes are the auth_type values pgpool implements.
var authTypes = []string{"trust", "plain", "md5", "scram-sha-256", authCert}

// authTypeParam is auth_type, limited to the methods pgpool implements.
func authTypeParam() configParam {
	p := stringParam("auth_type", func(g *Config) *string { return &g.AuthType })
	p.set = func(g *Config, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(authTypes, v) {
			return fmt.Errorf("%w: auth_type %q: want one of %s", errBadValue, v, strings.Join(authTypes, ", "))
		}
		g.AuthType = v
		return nil
	}
	return p
}

func readOnly(p configParam) configParam {
	p.set = nil
	return p
}

// configParams are the settings of the console, sorted by name.
var configParams = sortedParams([]configParam{
	listParam("admin_users", func(g *Config) *[]string { return &g.AdminUsers }),
	listParam("stats_users", func(g *Config) *[]string { return &g.StatsUsers }),
	authTypeParam(),
	stringParam("auth_user", func(g *Config) *string { return &g.AuthUser }),
	stringParam("auth_query", func(g *Config) *string { return &g.AuthQuery }),
	{
		name: "pool_mode",
		get:  func(g *Config) string { return g.PoolMode.String() },
		set: func(g *Config, v string) error {
			m, ok := ParsePoolMode(v)
			if !ok {
				return fmt.Errorf("%w: pool_mode wants session, transaction or statement", errBadValue)
			}
			g.PoolMode = m
			return nil
		},
	},
	intParam("max_client_conn", func(g *Config) *int { return &g.MaxClientConn }),
	intParam("default_pool_size", func(g *Config) *int { return &g.DefaultPoolSize }),
	intParam("min_pool_size", func(g *Config) *int { return &g.MinPoolSize }),
	intParam("reserve_pool_size", func(g *Config) *int { return &g.ReservePoolSize }),
	durationParam("reserve_pool_timeout", func(g *Config) *time.Duration { return &g.ReservePoolTimeout }),
	intParam("max_db_connections", func(g *Config) *int { return &g.MaxDBConnections }),
	intParam("max_user_connections", func(g *Config) *int { return &g.MaxUserConnections }),
	stringParam("server_reset_query", func(g *Config) *string { return &g.ServerResetQuery }),
	boolParam("server_reset_query_always", func(g *Config) *bool { return &g.ServerResetQueryAlways }),
	stringParam("server_check_query", func(g *Config) *string { return &g.ServerCheckQuery }),
	durationParam("server_check_delay", func(g *Config) *time.Duration { return &g.ServerCheckDelay }),
	durationParam("server_lifetime", func(g *Config) *time.Duration { return &g.ServerLifetime }),
	durationParam("server_idle_timeout", func(g *Config) *time.Duration { return &g.ServerIdleTimeout }),
	durationParam("server_connect_timeout", func(g *Config) *time.Duration { return &g.ServerConnectTimeout }),
	durationParam("server_login_retry", func(g *Config) *time.Duration { return &g.ServerLoginRetry }),
	boolParam("server_fast_close", func(g *Config) *bool { return &g.ServerFastClose }),
	boolParam("log_connections", func(g *Config) *bool { return &g.LogConnections }),
	boolParam("log_disconnections", func(g *Config) *bool { return &g.LogDisconnections }),
	boolParam("log_pooler_errors", func(g *Config) *bool { return &g.LogPoolerErrors }),
	boolParam("log_stats", func(g *Config) *bool { return &g.LogStats }),
	durationParam("stats_period", func(g *Config) *time.Duration { return &g.StatsPeriod }),
	intParam("verbose", func(g *Config) *int { return &g.Verbose }),
	durationParam("query_wait_timeout", func(g *Config) *time.Duration { return &g.QueryWaitTimeout }),
	durationParam("query_timeout", func(g *Config) *time.Duration { return &g.QueryTimeout }),
	durationParam("idle_transaction_timeout", func(g *Config) *time.Duration { return &g.IdleTransactionTimeout }),
	durationParam("client_idle_timeout", func(g *Config) *time.Duration { return &g.ClientIdleTimeout }),
	durationParam("client_login_timeout", func(g *Config) *time.Duration { return &g.ClientLoginTimeout }),
	durationParam("cancel_wait_timeout", func(g *Config) *time.Duration { return &g.CancelWaitTimeout }),
	listParam("ignore_startup_parameters", func(g *Config) *[]string { return &g.IgnoreStartupParameters }),
	intParam("max_prepared_statements", func(g *Config) *int { return &g.MaxPreparedStatements }),
	readOnly(configParam{name: "max_packet_size", get: func(g *Config) string {
		if g.MaxPacketSize > 0 {
			return strconv.Itoa(g.MaxPacketSize)
		}
		return strconv.Itoa(wire.DefaultMaxMessageSize)
	}}),
	tlsParam("client_tls_sslmode", func(g *Config) *string { return &g.ClientTLSMode }),
	tlsParam("client_tls_key_file", func(g *Config) *string { return &g.ClientTLSFiles.KeyFile }),
	tlsParam("client_tls_cert_file", func(g *Config) *string { return &g.ClientTLSFiles.CertFile }),
	tlsParam("client_tls_ca_file", func(g *Config) *string { return &g.ClientTLSFiles.CAFile }),
	tlsParam("client_tls_protocols", func(g *Config) *string { return &g.ClientTLSFiles.Protocols }),
	tlsParam("client_tls_ciphers", func(g *Config) *string { return &g.ClientTLSFiles.Ciphers }),
	tlsParam("server_tls_sslmode", func(g *Config) *string { return &g.ServerTLSMode }),
	tlsParam("server_tls_key_file", func(g *Config) *string { return &g.ServerTLSFiles.KeyFile }),
	tlsParam("server_tls_cert_file", func(g *Config) *string { return &g.ServerTLSFiles.CertFile }),
	tlsParam("server_tls_ca_file", func(g *Config) *string { return &g.ServerTLSFiles.CAFile }),
	tlsParam("server_tls_protocols", func(g *Config) *string { return &g.ServerTLSFiles.Protocols }),
	tlsParam("server_tls_ciphers", func(g *Config) *string { return &g.ServerTLSFiles.Ciphers }),
})

// tlsKept is the outcome of a SET of a TLS file or protocol that is stored but leaves
// the running TLS configuration as it was, because the settings do not make a
// usable one yet (a key set before its certificate): as PgBouncer does, the next SET
// that completes them applies them.
type tlsKept struct{ err error }

func (k *tlsKept) Error() string { return k.err.Error() }
func (k *tlsKept) Unwrap() error { return k.err }

// tlsParam is a client_tls_* or server_tls_* setting. SET checks a file it names
// (an unreadable file or one without a key or certificate fails the SET and changes
// nothing), then rebuilds that side's TLS configuration for new connections;
// connections already open keep theirs.
func tlsParam(name string, field func(*Config) *string) configParam {
	return configParam{
		name: name,
		get:  func(g *Config) string { return *field(g) },
		set: func(g *Config, v string) error {
			if strings.HasSuffix(name, "_sslmode") {
				v = strings.ToLower(v)
			}
			if strings.HasSuffix(name, "_file") {
				if err := CheckTLSFile(name, v); err != nil {
					return err
				}
			}
			*field(g) = v
			var err error
			if strings.HasPrefix(name, "client_") {
				var cfg *tls.Config
				if cfg, err = BuildClientTLS(g.ClientTLSMode, g.ClientTLSFiles); err == nil {
					g.ClientTLS = cfg
				}
			} else {
				var cfg *tls.Config
				if cfg, err = BuildServerTLS(g.ServerTLSMode, g.ServerTLSFiles); err == nil {
					g.ServerTLS = cfg
				}
			}
			if err != nil && errors.Is(err, ErrTLSIncomplete) && !strings.HasSuffix(name, "_sslmode") {
				return &tlsKept{err: err}
			}
			return err
		},
	}
}

// certAuthSettings decide who may log in when auth_type is cert; the console does
// not change them then.
var certAuthSettings = map[string]bool{"client_tls_sslmode": true, "client_tls_ca_file": true}

func sortedParams(ps []configParam) []configParam {
	slices.SortFunc(ps, func(a, b configParam) int { return strings.Compare(a.name, b.name) })
	return ps
}

func findParam(name string) (configParam, bool) {
	i, ok := slices.BinarySearchFunc(configParams, name, func(p configParam, name string) int {
		return strings.Compare(p.name, name)
	})
	if !ok {
		return configParam{}, false
	}
	return configParams[i], true
}

// configRows are the rows of SHOW CONFIG.
func configRows(g *Config) []admin.Setting {
	def := Defaults()
	rows := make([]admin.Setting, 0, len(configParams))
	own := make(map[string]bool, len(configParams))
	for _, p := range configParams {
		own[p.name] = true
		rows = append(rows, admin.Setting{Key: p.name, Value: p.get(g), Default: p.get(def), Changeable: p.set != nil, OwnerOnly: authSetting(g, p.name)})
	}
	for _, fs := range g.FileSettings {
		if !own[fs.Name] {
			own[fs.Name] = true
			rows = append(rows, admin.Setting{Key: fs.Name, Value: fs.Value, Default: fs.Default})
		}
	}
	slices.SortFunc(rows, func(a, b admin.Setting) int { return strings.Compare(a.Key, b.Key) })
	return rows
}

// authSettings are the settings that decide who may log in. The console changes them
// only for pgpool's own OS user connected over the unix socket (peer credentials), who
// can edit the configuration file and RELOAD anyway; an admin who logged in with a
// password, over TCP or as another OS user, cannot weaken authentication
// (SET auth_type = trust). auth_file, auth_hba_file and auth_dbname change only in the
// file.
var authSettings = map[string]bool{
	"auth_type": true, "auth_file": true, "auth_hba_file": true, "auth_query": true,
	"auth_user": true, "auth_dbname": true, "admin_users": true, "stats_users": true,
}

// authSetting reports whether key decides who may log in: then only pgpool's own OS
// user may change it from the console.
func authSetting(g *Config, key string) bool {
	return authSettings[key] || (certAuthSettings[key] && g.AuthType == authCert)
}

// setSetting is the console's SET of a setting of SHOW CONFIG marked changeable: it
// takes effect through Reload until the next RELOAD reads the file again. owner says
// the console client is pgpool's own OS user over the unix socket. Its error says why
// not, or is an *admin.SetKept.
func (pl *Pooler) setSetting(owner bool, name, val string) error {
	key := strings.ToLower(name)
	if authSetting(pl.settings(), key) && !owner {
		return &setError{errNotChangeable, fmt.Sprintf("%s controls authentication and can be changed only in the configuration file, then RELOAD, or from the console by pgpool's own OS user over the unix socket", key)}
	}
	p, ok := findParam(key)
	if !ok {
		return &setError{errUnknownSetting, fmt.Sprintf("unknown setting %q", name)}
	}
	if p.set == nil {
		return &setError{errNotChangeable, fmt.Sprintf("%s cannot be changed while pgpool runs", key)}
	}
	err := pl.applySetting(p, val)
	var kept *tlsKept
	if errors.As(err, &kept) {
		return &admin.SetKept{Err: kept.err}
	}
	return err
}

// applySetting changes one setting of the running configuration through Reload.
func (pl *Pooler) applySetting(p configParam, val string) error {
	pl.admin.mu.Lock() // one SET at a time, so two do not undo each other
	defer pl.admin.mu.Unlock()
	ncfg := *pl.settings()
	err := p.set(&ncfg, val)
	var kept *tlsKept
	if err != nil && !errors.As(err, &kept) {
		return err
	}
	pl.Reload(&ncfg)
	if p.name == "verbose" {
		pl.admin.applyVerbose(ncfg.Verbose)
	}
	return err
}
