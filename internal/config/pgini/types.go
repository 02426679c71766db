package pgini

import (
	"fmt"
	"strings"
)

// PoolMode says when a server connection goes back to its pool.
type PoolMode int

const (
	// PoolModeInherit (the zero value) means "not set here": a [users] or
	// [databases] entry without pool_mode takes the next level's mode.
	PoolModeInherit PoolMode = iota
	// PoolModeSession releases the server connection when the client
	// disconnects. PgBouncer's default.
	PoolModeSession
	// PoolModeTransaction releases it when a transaction ends.
	PoolModeTransaction
	// PoolModeStatement releases it after every statement; multi-statement
	// transactions are refused.
	PoolModeStatement
)

var poolModeNames = []enumName[PoolMode]{
	{"session", PoolModeSession},
	{"transaction", PoolModeTransaction},
	{"statement", PoolModeStatement},
}

// String returns the name used in pgbouncer.ini, or "inherit".
func (m PoolMode) String() string { return enumString(poolModeNames, m, "inherit") }

// ParsePoolMode parses session, transaction or statement, ignoring case.
func ParsePoolMode(s string) (PoolMode, error) { return parseEnum(poolModeNames, s) }

// AuthType is how clients authenticate to the pooler (auth_type).
type AuthType int

const (
	// AuthUnset (the zero value) means auth_type was not set; Default uses
	// AuthMD5.
	AuthUnset AuthType = iota
	// AuthAny accepts any password and connects as the configured user;
	// databases must force a user.
	AuthAny
	// AuthTrust accepts any password; users must still be in the auth file.
	AuthTrust
	// AuthPlain asks for a clear-text password.
	AuthPlain
	// AuthMD5 asks for an MD5 password (SCRAM if the stored secret is SCRAM).
	AuthMD5
	// AuthCert authenticates with the client's TLS certificate.
	AuthCert
	// AuthHBA takes the method from auth_hba_file.
	AuthHBA
	// AuthSCRAMSHA256 asks for SCRAM-SHA-256.
	AuthSCRAMSHA256
	// AuthPAM is PgBouncer's PAM mode; pgpool does not support it and
	// Validate rejects it.
	AuthPAM
	// AuthLDAP is PgBouncer's LDAP mode (1.25); pgpool does not support it
	// and Validate rejects it.
	AuthLDAP
)

var authTypeNames = []enumName[AuthType]{
	{"any", AuthAny},
	{"trust", AuthTrust},
	{"plain", AuthPlain},
	{"md5", AuthMD5},
	{"cert", AuthCert},
	{"hba", AuthHBA},
	{"scram-sha-256", AuthSCRAMSHA256},
	{"pam", AuthPAM},
	{"ldap", AuthLDAP},
}

// String returns the name used in pgbouncer.ini.
func (a AuthType) String() string { return enumString(authTypeNames, a, "unset") }

// ParseAuthType parses an auth_type value, ignoring case.
func ParseAuthType(s string) (AuthType, error) { return parseEnum(authTypeNames, s) }

// SSLMode is a client_tls_sslmode or server_tls_sslmode value.
type SSLMode int

const (
	// SSLModeUnset (the zero value) means not set; Default fills in
	// SSLModeDisable for clients and SSLModePrefer for servers.
	SSLModeUnset SSLMode = iota
	// SSLModeDisable: plain TCP only.
	SSLModeDisable
	// SSLModeAllow: plain TCP, TLS if the other side insists.
	SSLModeAllow
	// SSLModePrefer: TLS if the other side agrees, else plain TCP.
	SSLModePrefer
	// SSLModeRequire: TLS required, certificate not checked.
	SSLModeRequire
	// SSLModeVerifyCA: TLS required, certificate chain checked.
	SSLModeVerifyCA
	// SSLModeVerifyFull: TLS required, chain and host name checked.
	SSLModeVerifyFull
)

var sslModeNames = []enumName[SSLMode]{
	{"disable", SSLModeDisable},
	{"allow", SSLModeAllow},
	{"prefer", SSLModePrefer},
	{"require", SSLModeRequire},
	{"verify-ca", SSLModeVerifyCA},
	{"verify-full", SSLModeVerifyFull},
}

// String returns the name used in pgbouncer.ini.
func (m SSLMode) String() string { return enumString(sslModeNames, m, "unset") }

// ParseSSLMode parses an sslmode value, ignoring case.
func ParseSSLMode(s string) (SSLMode, error) { return parseEnum(sslModeNames, s) }

// LoadBalanceHosts is a database's load_balance_hosts (PgBouncer 1.24):
// how a comma-separated host list is used.
type LoadBalanceHosts int

const (
	// LoadBalanceUnset (the zero value) means not set: round-robin.
	LoadBalanceUnset LoadBalanceHosts = iota
	// LoadBalanceRoundRobin spreads new server connections over the hosts.
	LoadBalanceRoundRobin
	// LoadBalanceDisable tries the hosts in order.
	LoadBalanceDisable
)

var loadBalanceNames = []enumName[LoadBalanceHosts]{
	{"round-robin", LoadBalanceRoundRobin},
	{"disable", LoadBalanceDisable},
}

// String returns the name used in pgbouncer.ini.
func (l LoadBalanceHosts) String() string { return enumString(loadBalanceNames, l, "unset") }

// ParseLoadBalanceHosts parses round-robin or disable, ignoring case.
func ParseLoadBalanceHosts(s string) (LoadBalanceHosts, error) {
	return parseEnum(loadBalanceNames, s)
}

type enumName[T ~int] struct {
	name string
	val  T
}

func enumString[T ~int](names []enumName[T], v T, zero string) string {
	for _, n := range names {
		if n.val == v {
			return n.name
		}
	}
	if v == 0 {
		return zero
	}
	return fmt.Sprintf("%T(%d)", v, int(v))
}

func parseEnum[T ~int](names []enumName[T], s string) (T, error) {
	for _, n := range names {
		if strings.EqualFold(n.name, s) {
			return n.val, nil
		}
	}
	want := make([]string, len(names))
	for i, n := range names {
		want[i] = n.name
	}
	var z T
	return z, invalidf("must be one of %s", strings.Join(want, ", "))
}
