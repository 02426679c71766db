package auth

import "fmt"

// Method is an authentication method the pooler asks of its clients (PgBouncer's
// auth_type). The zero Method is invalid, so a forgotten setting never means trust.
type Method uint8

// Methods, named as in pg_hba.conf and PgBouncer's auth_type.
const (
	// Trust accepts the client without a password.
	Trust Method = iota + 1
	// Plain asks for the password in cleartext (pg_hba "password", auth_type plain).
	Plain
	// MD5 asks for an md5-hashed password; with a SCRAM secret stored it runs
	// SCRAM-SHA-256 instead.
	MD5
	// SCRAMSHA256 runs SCRAM-SHA-256 without channel binding.
	SCRAMSHA256
)

// ParseMethod returns the Method named s: "trust", "plain" (or "password", its
// pg_hba.conf name), "md5" or "scram-sha-256". Other names give an error matching
// ErrInvalidMethod.
func ParseMethod(s string) (Method, error) {
	switch s {
	case "trust":
		return Trust, nil
	case "plain", "password":
		return Plain, nil
	case "md5":
		return MD5, nil
	case "scram-sha-256":
		return SCRAMSHA256, nil
	}
	return 0, fmt.Errorf("%w %q (want trust, plain, md5 or scram-sha-256)", ErrInvalidMethod, s)
}

// String returns the method's PgBouncer auth_type name.
func (m Method) String() string {
	switch m {
	case Trust:
		return "trust"
	case Plain:
		return "plain"
	case MD5:
		return "md5"
	case SCRAMSHA256:
		return "scram-sha-256"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}
