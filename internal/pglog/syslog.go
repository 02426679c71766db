//go:build !windows && !plan9

package pglog

import (
	"fmt"
	"log/syslog"
	"strings"
)

// facilities are the syslog_facility names PgBouncer accepts.
var facilities = map[string]syslog.Priority{
	"auth": syslog.LOG_AUTH, "authpriv": syslog.LOG_AUTHPRIV, "daemon": syslog.LOG_DAEMON,
	"user": syslog.LOG_USER, "local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1,
	"local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3, "local4": syslog.LOG_LOCAL4,
	"local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}

// ParseFacility returns the syslog facility of a syslog_facility name (auth,
// authpriv, daemon, user, local0 to local7).
func ParseFacility(name string) (syslog.Priority, error) {
	if p, ok := facilities[strings.ToLower(name)]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrFacility, name)
}

// OpenSyslog connects to the local syslog daemon with ident (syslog_ident) and the
// named facility (syslog_facility). The process id goes with every message.
func OpenSyslog(ident, facility string) (*syslog.Writer, error) {
	p, err := ParseFacility(facility)
	if err != nil {
		return nil, err
	}
	return syslog.New(p|syslog.LOG_INFO, ident)
}
