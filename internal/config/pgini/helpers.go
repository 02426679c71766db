package pgini

import (
	"slices"
	"time"
)

// Database returns the [databases] entry for the database a client asked
// for. A name without an entry of its own gets a copy of the "*" fallback
// entry with Name set to it, Auto set, and DBName defaulting to it, as
// PgBouncer creates automatic databases. ok is false when there is neither
// an entry nor a fallback, and for the admin console's name ("pgbouncer"),
// which the fallback never covers. The result must not be modified.
func (c *Config) Database(name string) (db *Database, ok bool) {
	if db, ok := c.Databases[name]; ok {
		return db, true
	}
	if c.Fallback == nil || name == ReservedDatabase || name == "*" {
		return nil, false
	}
	auto := *c.Fallback
	auto.Name = name
	auto.Auto = true
	if auto.DBName == "" {
		auto.DBName = name
	}
	return &auto, true
}

// User returns the [users] entry for name, or nil if there is none.
func (c *Config) User(name string) *User { return c.Users[name] }

// IsAdmin reports whether user is listed in admin_users.
func (c *Config) IsAdmin(user string) bool { return slices.Contains(c.AdminUsers, user) }

// IsStats reports whether user is listed in stats_users. Admin users may
// run the read-only commands too; callers allowing SHOW check
// IsAdmin(user) || IsStats(user).
func (c *Config) IsStats(user string) bool { return slices.Contains(c.StatsUsers, user) }

// EffectivePoolMode returns the pool mode of the pool (db, user): the
// user's [users] pool_mode, else the database's, else the global one. db
// may be nil; user may be "" or absent from [users].
func (c *Config) EffectivePoolMode(db *Database, user string) PoolMode {
	if u := c.Users[user]; u != nil && u.PoolMode != PoolModeInherit {
		return u.PoolMode
	}
	if db != nil && db.PoolMode != PoolModeInherit {
		return db.PoolMode
	}
	return c.PoolMode
}

// EffectivePoolSize returns the pool size of (db, user): the user's
// pool_size, else the database's, else default_pool_size.
func (c *Config) EffectivePoolSize(db *Database, user string) int {
	if u := c.Users[user]; u != nil && u.PoolSize != nil {
		return *u.PoolSize
	}
	if db != nil && db.PoolSize != nil {
		return *db.PoolSize
	}
	return c.DefaultPoolSize
}

// EffectiveReservePoolSize returns the reserve pool size of (db, user):
// the user's reserve_pool_size, else the database's reserve_pool, else the
// global reserve_pool_size.
func (c *Config) EffectiveReservePoolSize(db *Database, user string) int {
	if u := c.Users[user]; u != nil && u.ReservePoolSize != nil {
		return *u.ReservePoolSize
	}
	if db != nil && db.ReservePoolSize != nil {
		return *db.ReservePoolSize
	}
	return c.ReservePoolSize
}

// EffectiveMinPoolSize returns db's min_pool_size, else the global one.
func (c *Config) EffectiveMinPoolSize(db *Database) int {
	if db != nil && db.MinPoolSize != nil {
		return *db.MinPoolSize
	}
	return c.MinPoolSize
}

// EffectiveMaxDBConnections returns db's max_db_connections if it is
// positive, else the global one (as in PgBouncer, a database's 0 does not
// lift the global limit). 0 means no limit.
func (c *Config) EffectiveMaxDBConnections(db *Database) int {
	return positiveOr(dbInt(db, func(d *Database) *int { return d.MaxDBConnections }), c.MaxDBConnections)
}

// EffectiveMaxDBClientConnections returns db's max_db_client_connections if
// positive, else the global one. 0 means no limit.
func (c *Config) EffectiveMaxDBClientConnections(db *Database) int {
	return positiveOr(dbInt(db, func(d *Database) *int { return d.MaxDBClientConnections }), c.MaxDBClientConnections)
}

// EffectiveMaxUserConnections returns the user's max_user_connections if
// positive, else the global one. 0 means no limit.
func (c *Config) EffectiveMaxUserConnections(user string) int {
	var p *int
	if u := c.Users[user]; u != nil {
		p = u.MaxUserConnections
	}
	return positiveOr(p, c.MaxUserConnections)
}

// EffectiveMaxUserClientConnections returns the user's
// max_user_client_connections if positive, else the global one. 0 means no
// limit.
func (c *Config) EffectiveMaxUserClientConnections(user string) int {
	var p *int
	if u := c.Users[user]; u != nil {
		p = u.MaxUserClientConnections
	}
	return positiveOr(p, c.MaxUserClientConnections)
}

// EffectiveServerLifetime returns db's server_lifetime if positive, else
// the global one.
func (c *Config) EffectiveServerLifetime(db *Database) time.Duration {
	if db != nil && db.ServerLifetime != nil && *db.ServerLifetime > 0 {
		return *db.ServerLifetime
	}
	return c.ServerLifetime
}

// EffectiveQueryWaitTimeout returns the query_wait_timeout of (db, user):
// the user's if set, else the database's if set, else the global one. An
// explicit 0 at any level means "wait forever".
func (c *Config) EffectiveQueryWaitTimeout(db *Database, user string) time.Duration {
	if u := c.Users[user]; u != nil && u.QueryWaitTimeout != nil {
		return *u.QueryWaitTimeout
	}
	if db != nil && db.QueryWaitTimeout != nil {
		return *db.QueryWaitTimeout
	}
	return c.QueryWaitTimeout
}

// EffectiveQueryTimeout returns the user's query_timeout if positive, else
// the global one. 0 means no limit.
func (c *Config) EffectiveQueryTimeout(user string) time.Duration {
	return c.userTimeout(user, func(u *User) *time.Duration { return u.QueryTimeout }, c.QueryTimeout)
}

// EffectiveIdleTransactionTimeout returns the user's
// idle_transaction_timeout if positive, else the global one. 0 means none.
func (c *Config) EffectiveIdleTransactionTimeout(user string) time.Duration {
	return c.userTimeout(user, func(u *User) *time.Duration { return u.IdleTransactionTimeout }, c.IdleTransactionTimeout)
}

// EffectiveTransactionTimeout returns the user's transaction_timeout if
// positive, else the global one. 0 means none.
func (c *Config) EffectiveTransactionTimeout(user string) time.Duration {
	return c.userTimeout(user, func(u *User) *time.Duration { return u.TransactionTimeout }, c.TransactionTimeout)
}

// EffectiveClientIdleTimeout returns the user's client_idle_timeout if
// positive, else the global one. 0 means none.
func (c *Config) EffectiveClientIdleTimeout(user string) time.Duration {
	return c.userTimeout(user, func(u *User) *time.Duration { return u.ClientIdleTimeout }, c.ClientIdleTimeout)
}

func (c *Config) userTimeout(user string, f func(*User) *time.Duration, global time.Duration) time.Duration {
	if u := c.Users[user]; u != nil {
		if p := f(u); p != nil && *p > 0 {
			return *p
		}
	}
	return global
}

func dbInt(db *Database, f func(*Database) *int) *int {
	if db == nil {
		return nil
	}
	return f(db)
}

func positiveOr(p *int, global int) int {
	if p != nil && *p > 0 {
		return *p
	}
	return global
}
