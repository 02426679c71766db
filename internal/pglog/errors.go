package pglog

import "errors"

// ErrFacility is returned for a syslog_facility name that is not one of auth,
// authpriv, daemon, user, local0 to local7.
var ErrFacility = errors.New("pglog: unknown syslog facility")

// ErrFormat is returned for a log_format that is neither text nor json.
var ErrFormat = errors.New("pglog: unknown log format")
