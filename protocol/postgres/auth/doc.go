// Package auth implements both sides of PostgreSQL authentication for a pooler.
//
// Server side: Authenticate runs the authentication exchange with a client that has
// connected to the pooler and sent its StartupMessage. It supports the methods trust,
// password (cleartext), md5 and scram-sha-256, following PgBouncer's rules for which
// exchange a stored Secret allows:
//
//   - MD5 with a SCRAM secret stored runs SCRAM-SHA-256 instead (an md5 response cannot
//     be checked against a SCRAM verifier).
//   - SCRAMSHA256 with a plain-text secret computes a verifier with a salt derived from
//     the user name and a per-process secret (the same at every attempt); with an md5
//     secret it cannot work and fails with ErrUnsupportedSecret.
//   - Plain accepts a cleartext password and checks it against any kind of secret.
//
// A user without a usable secret still goes through a mock exchange, as PostgreSQL
// does, so a client cannot tell a missing role from a wrong password: for SCRAM the
// same derived salt, iteration count and (Options.MockSCRAMWork) PBKDF2 work as a
// plain-text user, and the same error. Under MD5 and Plain, Options.MockSCRAM picks
// the secret such a user is treated as having, so that the method asked (SCRAM or md5)
// and the work done are those of a real user: as PostgreSQL picks it from
// password_encryption, or per name with MockPrefersSCRAM. The md5 mock's salt is
// random at every attempt, as a real md5 user's is.
//
// Authenticate never sends AuthenticationOk: the caller sends it, followed by
// ParameterStatus, BackendKeyData and ReadyForQuery. On success it returns Credentials
// that let the pooler log in to PostgreSQL as the same user: the cleartext password
// when it is known, the md5 secret when that is all there is, and for SCRAM the
// ClientKey recovered from the client's proof (ClientKey = ClientProof XOR
// ClientSignature) with the verifier it belongs to. A recovered ClientKey logs in to
// any server whose verifier for the role has the same salt and iteration count.
//
// Client side: Login answers the authentication requests of a PostgreSQL server after
// the caller has sent the StartupMessage, up to and including AuthenticationOk:
// cleartext, md5 (which needs only the md5 secret) and SCRAM-SHA-256 (with a password
// or a recovered ClientKey), verifying the server's final signature.
//
// Errors: failures of the exchange are *Error values whose Kind is one of the ErrX
// sentinels, so callers decide with errors.Is (ErrPasswordMismatch: answer SQLSTATE
// 28P01; ErrProtocol: answer 08P01) and never by matching text. Error.ErrorResponse
// builds the message PostgreSQL would send. Errors of the connection itself (the
// Reader or Writer) are returned wrapped, unchanged beneath: a client that hangs up at
// the password prompt, as psql does before asking for a password, gives io.EOF.
//
// SCRAM passwords are prepared with SASLprep (RFC 4013) as PostgreSQL does: a password
// that SASLprep rejects is used as it is.
//
// Nothing in this package keeps state between calls but the per-process salt secret
// (MockKey, which SetMockKey replaces in a process taking over); all functions are safe for
// concurrent use on different connections, and Secret and Credentials values may be
// shared between goroutines as long as nobody modifies them.
package auth
