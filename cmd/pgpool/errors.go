package main

import (
	"errors"
)

// Sentinel errors of pgpool's command line; test with errors.Is.
var (
	// ErrUnsupported marks a setting value pgpool cannot run with, such as
	// auth_type = hba.
	ErrUnsupported = errors.New("pgpool: not supported")
	// ErrTLS marks TLS files that cannot be loaded.
	ErrTLS = errors.New("pgpool: TLS setup failed")
	// ErrListen marks a listener that could not be opened.
	ErrListen = errors.New("pgpool: cannot listen")
	// ErrPidfile marks a pidfile that cannot be written or names a live process.
	ErrPidfile = errors.New("pgpool: pidfile")
	// ErrConfig marks a configuration file with errors.
	ErrConfig = errors.New("pgpool: configuration has errors")
	// ErrOnlineRestart marks a failed online restart (-R): nothing was taken over
	// from the running process.
	ErrOnlineRestart = errors.New("pgpool: online restart (-R) failed")
	// ErrDaemonPidfile marks -d without a pidfile in the configuration.
	ErrDaemonPidfile = errors.New("daemon needs pidfile configured")
)

// SettingError is a problem with one setting of a loaded configuration that
// the file reader accepted but pgpool cannot run with.
type SettingError struct {
	Pos string // "file:line" where the setting was read, or "" for a default
	Key string // the pgbouncer.ini key, database or user name
	Msg string // what is wrong
	Err error  // class: ErrUnsupported, ErrTLS, ...
}

// Error formats the problem as "file:line: key: msg".
func (e *SettingError) Error() string {
	s := e.Key + ": " + e.Msg
	if e.Pos != "" {
		s = e.Pos + ": " + s
	}
	return s
}

// Unwrap returns the class of the problem.
func (e *SettingError) Unwrap() error { return e.Err }
