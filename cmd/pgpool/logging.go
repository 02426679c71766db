package main

import (
	"io"
	"log/slog"

	"github.com/poolsuite/poolsuite/internal/config/pgini"
	"github.com/poolsuite/poolsuite/internal/pglog"
)

// newLogHandler makes the handler of pgpool's log: PgBouncer's line format on out
// (log_format = text) or JSON lines (log_format = json), and syslog too when the ini
// sets syslog = 1, with syslog_ident and syslog_facility. If syslog cannot be opened
// the log goes to out alone and the error is returned for the caller to log.
func newLogHandler(out io.Writer, ini *pgini.Config, level slog.Leveler) (*pglog.Handler, error) {
	opts := &pglog.Options{Level: level}
	if f, err := pglog.ParseFormat(ini.LogFormat); err == nil {
		opts.Format = f
	}
	var syslogErr error
	if ini.Syslog {
		w, err := pglog.OpenSyslog(ini.SyslogIdent, ini.SyslogFacility)
		if err != nil {
			syslogErr = err
		} else {
			opts.Syslog = w
		}
	}
	return pglog.New(out, opts), syslogErr
}
