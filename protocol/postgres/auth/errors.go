package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Kinds of authentication failure. Each *Error has one of them as its Kind and matches
// it with errors.Is.
var (
	// ErrPasswordMismatch: the client's password (or SCRAM proof) does not match the
	// stored secret.
	ErrPasswordMismatch = errors.New("auth: password authentication failed")
	// ErrNoPassword: the user has no secret, so no password can match.
	ErrNoPassword = errors.New("auth: user has no password")
	// ErrUnsupportedSecret: the stored secret cannot verify the method's exchange (an
	// md5 secret with scram-sha-256).
	ErrUnsupportedSecret = errors.New("auth: stored secret does not support the authentication method")
	// ErrProtocol: a message was malformed or not the one expected. A server answers
	// it with SQLSTATE 08P01.
	ErrProtocol = errors.New("auth: protocol violation")
	// ErrServer: the server answered with an ErrorResponse, kept in Error.Server.
	ErrServer = errors.New("auth: server refused the login")
	// ErrUnsupportedMethod: the server asked for an authentication method Login does
	// not implement (Kerberos, GSSAPI, SSPI, SCM credentials, SCRAM-SHA-256-PLUS only).
	ErrUnsupportedMethod = errors.New("auth: unsupported authentication method")
	// ErrNoCredentials: the Credentials given to Login cannot answer the method the
	// server asked for (an md5 secret for SCRAM, a ClientKey for cleartext, ...).
	ErrNoCredentials = errors.New("auth: credentials cannot answer the server's authentication method")
	// ErrVerifierMismatch: Login has a recovered SCRAM ClientKey, but the server's salt
	// or iteration count differ from those of the verifier it belongs to.
	ErrVerifierMismatch = errors.New("auth: server's SCRAM verifier differs from the one the ClientKey belongs to")
	// ErrServerSignature: the server's SCRAM signature is wrong, so the server does not
	// know the verifier (it may be an impostor).
	ErrServerSignature = errors.New("auth: server's SCRAM signature does not verify")
	// ErrInvalidMethod: a Method value or name that is not one of the defined methods.
	ErrInvalidMethod = errors.New("auth: invalid authentication method")
)

// Error describes a failed authentication exchange.
type Error struct {
	// Kind is one of the ErrX sentinels of this package.
	Kind error
	// User is the user name being authenticated or logged in.
	User string
	// Detail says what went wrong, for logs. It may name the cause precisely and is
	// not meant for the client (ErrorResponse does not reveal it for failed
	// passwords).
	Detail string
	// Server is the server's ErrorResponse when Kind is ErrServer, nil otherwise.
	Server *pgproto3.ErrorResponse
	// Err is the underlying error, if any (a wire or decoding error).
	Err error
	// SASL says the failure happened in a SCRAM exchange, which the client is told
	// as "SASL authentication failed", as PgBouncer words it. Under MD5 a SCRAM
	// exchange that failed on the password is not marked (see md5Worded).
	SASL bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Kind == nil {
		b.WriteString("auth: authentication failed")
	} else {
		b.WriteString(e.Kind.Error())
	}
	if e.User != "" {
		fmt.Fprintf(&b, " for user %q", e.User)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Server != nil {
		fmt.Fprintf(&b, ": %s: %s (SQLSTATE %s)", e.Server.Severity, e.Server.Message, e.Server.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and, if set, Err, so that errors.Is matches the sentinel and
// errors.As reaches the cause.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// AuthFailed reports whether the client failed to prove it knows the password
// (ErrPasswordMismatch, ErrNoPassword or ErrUnsupportedSecret), which PostgreSQL
// reports with SQLSTATE 28P01 without saying which.
func (e *Error) AuthFailed() bool {
	return e.Kind == ErrPasswordMismatch || e.Kind == ErrNoPassword || e.Kind == ErrUnsupportedSecret
}

// SQLState returns the SQLSTATE to report for the error: 28P01 for failed passwords,
// 08P01 for protocol violations, the server's code for ErrServer, and 28000
// (invalid_authorization_specification) when the pooler cannot log in to the server
// with the credentials it has.
func (e *Error) SQLState() string {
	switch {
	case e.AuthFailed():
		return "28P01"
	case e.Kind == ErrProtocol || e.Kind == ErrServerSignature:
		return "08P01"
	case e.Kind == ErrServer && e.Server != nil:
		return e.Server.Code
	default:
		return "28000"
	}
}

// ErrorResponse returns a FATAL ErrorResponse to send to the client, worded as
// PostgreSQL words it: `password authentication failed for user "x"` for failed
// passwords, whatever the cause ("SASL authentication failed" for SCRAM, as PgBouncer
// words it; "server login failed: wrong password type" when the pooler's credentials
// cannot answer the server's method). For ErrServer it returns a copy of the server's own
// ErrorResponse. The caller sends it and closes the connection.
func (e *Error) ErrorResponse() *pgproto3.ErrorResponse {
	if e.Kind == ErrServer && e.Server != nil {
		er := *e.Server
		return &er
	}
	er := &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: e.SQLState()}
	switch {
	case e.SASL && (e.AuthFailed() || e.Kind == ErrProtocol):
		er.Message = "SASL authentication failed"
		if !e.AuthFailed() {
			er.Detail = e.Detail
		}
	case e.AuthFailed():
		er.Message = fmt.Sprintf("password authentication failed for user %q", e.User)
	case e.Kind == ErrNoCredentials:
		er.Message = "server login failed: wrong password type"
		er.Detail = strings.TrimPrefix(e.Error(), "auth: ")
	case e.Kind == ErrProtocol:
		er.Message = "invalid authentication message"
		er.Detail = e.Detail
	default:
		er.Message = "server login failed: " + strings.TrimPrefix(e.Error(), "auth: ")
		er.Detail = e.Detail
	}
	return er
}

func protocolError(user, format string, args ...any) *Error {
	return &Error{Kind: ErrProtocol, User: user, Detail: fmt.Sprintf(format, args...)}
}

// connError classifies an error from the Reader or Writer: framing errors are
// protocol violations, anything else (EOF, a closed or timed-out socket) is returned
// wrapped.
func connError(user string, err error) error {
	var tooLarge *wire.TooLargeError
	if errors.Is(err, wire.ErrMalformed) || errors.As(err, &tooLarge) {
		return &Error{Kind: ErrProtocol, User: user, Err: err}
	}
	return fmt.Errorf("auth: %w", err)
}
