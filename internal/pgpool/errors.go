package pgpool

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes pgpool answers with itself.
const (
	CodeProtocolViolation       = "08P01"
	CodeConnectionFailure       = "08006"
	CodeConnectionRejected      = "08004"
	CodeInvalidPassword         = "28P01"
	CodeInvalidAuthorization    = "28000"
	CodeInvalidCatalogName      = "3D000"
	CodeTooManyConnections      = "53300"
	CodeQueryCanceled           = "57014"
	CodeAdminShutdown           = "57P01"
	CodeCannotConnectNow        = "57P03"
	CodeFeatureNotSupported     = "0A000"
	CodeIdleInTransactionTimout = "25P03"
	CodeInternalError           = "XX000"
)

// Error is an error pgpool reports to a client as an ErrorResponse with a SQLSTATE.
type Error struct {
	Severity string // "ERROR" or "FATAL"; FATAL closes the client connection
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Err      error // cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("pgpool: %s (%s): %v", e.Message, e.Code, e.Err)
	}
	return fmt.Sprintf("pgpool: %s (%s)", e.Message, e.Code)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Fatal reports whether the client connection is closed after the error is sent.
func (e *Error) Fatal() bool { return e.Severity == "FATAL" }

// response returns the ErrorResponse the client sees.
func (e *Error) response() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
	}
}

func fatalf(code, format string, args ...any) *Error {
	return &Error{Severity: "FATAL", Code: code, Message: fmt.Sprintf(format, args...)}
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// ServerError is an ErrorResponse that PostgreSQL sent while pgpool logged in or
// checked a server connection; it is passed on to the client as it came.
type ServerError struct {
	Response *pgproto3.ErrorResponse
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("pgpool: server: %s: %s (%s)", e.Response.Severity, e.Response.Message, e.Response.Code)
}

// Sentinel errors.
var (
	// ErrQueryWaitTimeout: no server connection became free within query_wait_timeout.
	ErrQueryWaitTimeout = errors.New("pgpool: query_wait_timeout")
	// ErrPoolClosed: the pool was closed (reload removed it, KILL, or shutdown).
	ErrPoolClosed = errors.New("pgpool: pool closed")
	// ErrServerClosed: the server connection closed while in use.
	ErrServerClosed = errors.New("pgpool: server connection closed")
	// ErrPaused: the pool is paused and the wait ran out.
	ErrPaused = errors.New("pgpool: pool paused")
)

// waitTimeoutError is query_wait_timeout running out while server connects were
// failing; it is ErrQueryWaitTimeout for errors.Is and keeps the last failure.
type waitTimeoutError struct{ cause error }

func (e *waitTimeoutError) Error() string {
	return fmt.Sprintf("%v (last server connect: %v)", ErrQueryWaitTimeout, e.cause)
}

func (e *waitTimeoutError) Is(target error) bool { return target == ErrQueryWaitTimeout }

// waitTimeout is the error of a wait that ran out; cause is the last server connect
// failure of the pool, if any.
func waitTimeout(cause error) error {
	if cause == nil {
		return ErrQueryWaitTimeout
	}
	return &waitTimeoutError{cause: cause}
}

// queryWaitTimeoutError is what a client sees when its wait ran out: 08P01
// query_wait_timeout, as PgBouncer reports it, with the last server connect failure,
// if any, in the detail.
func queryWaitTimeoutError(err error) *Error {
	return waitError(err, "query_wait_timeout")
}

// waitError is the error of a wait for a server connection that ran out: reason is
// the timeout that ended it, query_wait_timeout or query_timeout (PgBouncer's words).
func waitError(err error, reason string) *Error {
	e := fatalf(CodeProtocolViolation, "%s", reason)
	var wt *waitTimeoutError
	if errors.As(err, &wt) {
		e.Detail = "last server connect attempt failed: " + asClientError(wt.cause).Message
		e.Err = wt.cause
	}
	return e
}

// transientConnectError reports whether a failed server connect is for want of the
// server (unreachable, refused, broken off, starting up or shutting down), so that
// waiting clients wait for a later attempt, rather than PostgreSQL refusing the login
// (bad password, no such database), which they are told at once.
func transientConnectError(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Response.Code == CodeCannotConnectNow
	}
	var pe *Error
	return errors.As(err, &pe) && pe.Code == CodeConnectionFailure
}

// asClientError turns any error into what the client should see.
func asClientError(err error) *pgproto3.ErrorResponse {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.response()
	}
	var se *ServerError
	if errors.As(err, &se) {
		return se.Response
	}
	return errorf(CodeInternalError, "%v", err).response()
}

// codeSyntaxError and codeUndefinedObject are PostgreSQL's SQLSTATEs for a malformed
// options switch and an unknown parameter name.
const (
	codeSyntaxError     = "42601"
	codeUndefinedObject = "42704"
)

// waitDeadline is when a wait for a server connection that starts now must give up,
// and the timeout that sets it: the shorter of query_wait_timeout and query_timeout
// (PgBouncer applies both to waiting clients, logging in ones included), zero time
// for none.
func waitDeadline(g *Config) (time.Time, string) {
	d, reason := g.QueryWaitTimeout, "query_wait_timeout"
	if g.QueryTimeout > 0 && (d <= 0 || g.QueryTimeout < d) {
		d, reason = g.QueryTimeout, "query_timeout"
	}
	if d <= 0 {
		return time.Time{}, reason
	}
	return time.Now().Add(d), reason
}
