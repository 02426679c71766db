package pgini

import (
	"strings"
	"time"
)

// ReservedDatabase is the admin console's database name; [databases] may
// not define it.
const ReservedDatabase = "pgbouncer"

// maxNameLen is the longest database name PgBouncer keeps (MAX_DBNAME - 1).
const maxNameLen = 63

// maxUserLen is the longest user name PgBouncer keeps (MAX_USERNAME - 1).
const maxUserLen = 127

// entryError is a problem with one parameter of a [databases] or [users]
// line: the parameter and the value are reported with the line.
type entryError struct {
	param, value string
	err          error
}

func (e *entryError) Error() string { return e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

// parseDatabase parses the connection string of the [databases] entry name.
func parseDatabase(name, connstr string, pos Pos) (*Database, error) {
	if name == ReservedDatabase {
		return nil, detailf(ErrReservedName, "%q is the admin console", name)
	}
	if len(name) > maxNameLen {
		return nil, invalidf("database name longer than %d bytes", maxNameLen)
	}
	pairs, err := parseConnString(connstr)
	if err != nil {
		return nil, err
	}
	db := &Database{Name: name, Pos: pos, Port: 5432}
	for _, p := range pairs {
		if err := db.set(p.key, p.val); err != nil {
			return nil, &entryError{param: p.key, value: p.val, err: err}
		}
	}
	if db.DBName == "" && name != "*" {
		db.DBName = name
	}
	return db, nil
}

// set applies one connection string parameter.
func (db *Database) set(key, val string) error {
	var err error
	switch strings.ToLower(key) {
	case "dbname":
		db.DBName = val
	case "host":
		db.Host = val
	case "port":
		var n int64
		n, err = parseDecimal(val, 1, 65535)
		db.Port = int(n)
	case "user":
		if len(val) > maxUserLen {
			return invalidf("user name longer than %d bytes", maxUserLen)
		}
		db.User = val
	case "password":
		db.Password = val
	case "auth_user":
		db.AuthUser = val
	case "auth_dbname":
		db.AuthDBName = val
	case "auth_query":
		db.AuthQuery = val
	case "client_encoding":
		db.ClientEncoding = val
	case "datestyle":
		db.DateStyle = val
	case "timezone":
		db.TimeZone = val
	case "application_name":
		db.ApplicationName = val
	case "connect_query":
		db.ConnectQuery = val
	case "pool_mode":
		db.PoolMode, err = ParsePoolMode(val)
	case "load_balance_hosts":
		db.LoadBalanceHosts, err = ParseLoadBalanceHosts(val)
	case "pool_size":
		db.PoolSize, err = optInt(val)
	case "min_pool_size":
		db.MinPoolSize, err = optInt(val)
	case "reserve_pool", "reserve_pool_size":
		db.ReservePoolSize, err = optInt(val)
	case "max_db_connections":
		db.MaxDBConnections, err = optInt(val)
	case "max_db_client_connections":
		db.MaxDBClientConnections, err = optInt(val)
	case "server_lifetime":
		db.ServerLifetime, err = optSeconds(val)
	case "query_wait_timeout":
		db.QueryWaitTimeout, err = optSeconds(val)
	default:
		return invalidf("unrecognized connection parameter %q", key)
	}
	return err
}

// parseUser parses the settings of the [users] entry name.
func parseUser(name, settings string, pos Pos) (*User, error) {
	if len(name) > maxUserLen {
		return nil, invalidf("user name longer than %d bytes", maxUserLen)
	}
	pairs, err := parseConnString(settings)
	if err != nil {
		return nil, err
	}
	u := &User{Name: name, Pos: pos}
	for _, p := range pairs {
		if err := u.set(p.key, p.val); err != nil {
			return nil, &entryError{param: p.key, value: p.val, err: err}
		}
	}
	return u, nil
}

// set applies one [users] parameter.
func (u *User) set(key, val string) error {
	var err error
	switch strings.ToLower(key) {
	case "pool_mode":
		u.PoolMode, err = ParsePoolMode(val)
	case "pool_size":
		u.PoolSize, err = optInt(val)
	case "reserve_pool_size":
		u.ReservePoolSize, err = optInt(val)
	case "max_user_connections":
		u.MaxUserConnections, err = optInt(val)
	case "max_user_client_connections":
		u.MaxUserClientConnections, err = optInt(val)
	case "query_timeout":
		u.QueryTimeout, err = optSeconds(val)
	case "idle_transaction_timeout":
		u.IdleTransactionTimeout, err = optSeconds(val)
	case "transaction_timeout":
		u.TransactionTimeout, err = optSeconds(val)
	case "query_wait_timeout":
		u.QueryWaitTimeout, err = optSeconds(val)
	case "client_idle_timeout":
		u.ClientIdleTimeout, err = optSeconds(val)
	default:
		return invalidf("unrecognized user parameter %q", key)
	}
	return err
}

func optInt(val string) (*int, error) {
	n, err := parseDecimal(val, 0, maxCInt)
	if err != nil {
		return nil, err
	}
	v := int(n)
	return &v, nil
}

func optSeconds(val string) (*time.Duration, error) {
	d, err := parseSeconds(val)
	if err != nil {
		return nil, err
	}
	return &d, nil
}
