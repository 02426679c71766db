package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// maxAuthMessage bounds a client's authentication message, as PostgreSQL bounds it
// (PG_MAX_AUTH_TOKEN_LENGTH). The Reader's own limit applies first; callers should
// keep that small until the client is authenticated.
const maxAuthMessage = 65535

// Authenticate authenticates the client on r and w as user, whose stored secret is
// secret, with method (see the package documentation for which exchange each method
// and secret give). The caller has read the StartupMessage; Authenticate sends the
// authentication request, reads the answer, and returns the Credentials with which the
// pooler can log in to PostgreSQL as user.
//
// Authenticate does not send AuthenticationOk. After SCRAM it leaves
// AuthenticationSASLFinal buffered in w, so the caller's AuthenticationOk goes out in
// the same Flush; the caller must send AuthenticationOk (or an ErrorResponse) and
// Flush.
//
// Errors: an *Error with Kind ErrPasswordMismatch, ErrNoPassword or
// ErrUnsupportedSecret when the client is not admitted (send Error.ErrorResponse,
// SQLSTATE 28P01), ErrProtocol for a malformed or unexpected message (SQLSTATE 08P01),
// ErrInvalidMethod for a bad method; any other error comes from the connection and
// wraps the Reader's or Writer's error (io.EOF when the client hung up or sent
// Terminate, as libpq does when it needs a password it does not have).
func Authenticate(r *wire.Reader, w *wire.Writer, method Method, user string, secret Secret) (*Credentials, error) {
	return AuthenticateWith(r, w, method, user, secret, Options{MockSCRAMWork: true})
}

// Options adjust how Authenticate runs the exchange of a user who cannot log in.
type Options struct {
	// MockSCRAMWork makes the mock SCRAM exchange (unknown user, no secret, or an md5
	// secret) derive its verifier with PBKDF2 at DefaultSCRAMIterations, as for a
	// plain-text secret, so it costs what a plain-text user's exchange costs. Without it
	// the mock exchange costs what a user with a stored SCRAM verifier costs (no
	// PBKDF2). Pick the one that matches most of the users the pooler knows. Under MD5
	// it is ignored: the mock SCRAM exchange MD5 runs (see MockSCRAM) never does the
	// work, since MD5 runs SCRAM only for users with a stored verifier.
	MockSCRAMWork bool
	// MockSCRAM says, for MD5 and Plain, which secret a user without one (an unknown
	// user) is treated as having. With it, a SCRAM verifier: MD5 runs a mock
	// SCRAM-SHA-256 exchange, as for a user whose stored secret is a verifier, and Plain
	// checks the password with PBKDF2 at DefaultSCRAMIterations. Without it, an md5
	// secret: MD5 asks for an md5 response, and Plain checks the password with md5.
	// Set it as a real user's secret would most likely be (see MockPrefersSCRAM), so
	// that the method asked and the work done do not tell unknown users apart.
	MockSCRAM bool
	// MockSCRAMIterations is the iteration count the mock SCRAM exchange (and Plain's
	// mock check with MockSCRAM) shows and works with: the count most real users'
	// verifiers have. Zero means DefaultSCRAMIterations.
	MockSCRAMIterations int
}

// MockPrefersSCRAM returns a keyed, per-name choice of MockSCRAM for user when scram
// of total users with a secret have a SCRAM verifier: true for a fraction
// scram/total of all names, decided by an HMAC of the name under the per-process
// secret, so the same name always gets the same answer while the process runs. An
// unknown user's answer is then distributed as a real user's is, and no single answer
// says whether the user exists. It returns false when total is zero.
func MockPrefersSCRAM(user string, scram, total int) bool {
	if total <= 0 || scram <= 0 {
		return false
	}
	if scram >= total {
		return true
	}
	u := binary.BigEndian.Uint64(keyed("method", user))
	// floor(u*total / 2^64) is spread evenly over [0, total).
	hi, _ := bits.Mul64(u, uint64(total))
	return hi < uint64(scram)
}

// AuthenticateWith is Authenticate with options.
func AuthenticateWith(r *wire.Reader, w *wire.Writer, method Method, user string, secret Secret, opts Options) (*Credentials, error) {
	switch method {
	case Trust:
		return secret.Credentials(), nil
	case Plain:
		return authPlain(r, w, user, secret, opts)
	case MD5:
		if secret.Kind == SecretSCRAM || secret.Kind == SecretNone && opts.MockSCRAM {
			opts.MockSCRAMWork = false
			return md5Worded(authSCRAM(r, w, user, secret, opts))
		}
		return authMD5(r, w, user, secret)
	case SCRAMSHA256:
		return authSCRAM(r, w, user, secret, opts)
	}
	return nil, &Error{Kind: ErrInvalidMethod, User: user, Detail: method.String()}
}

// authPlain asks for the cleartext password and checks it against any kind of secret.
func authPlain(r *wire.Reader, w *wire.Writer, user string, secret Secret, opts Options) (*Credentials, error) {
	if err := send(w, user, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return nil, err
	}
	body, err := readPasswordMessage(r, user)
	if err != nil {
		return nil, err
	}
	var m pgproto3.PasswordMessage
	if err := m.Decode(body); err != nil {
		return nil, &Error{Kind: ErrProtocol, User: user, Detail: "malformed password message", Err: err}
	}
	password := m.Password
	if password == "" {
		return nil, &Error{Kind: ErrPasswordMismatch, User: user, Detail: "empty password"}
	}
	if secret.Kind == SecretNone {
		// The work of checking the password against the secret the user would most
		// likely have, and the same answer as a wrong password.
		mockCheck(user, password, opts)
		return nil, &Error{Kind: ErrNoPassword, User: user}
	}
	if err := checkPassword(user, password, secret); err != nil {
		return nil, err
	}
	c := secret.Credentials()
	c.Password = password
	return c, nil
}

// checkPassword checks a cleartext password against a secret in constant time.
func checkPassword(user, password string, secret Secret) error {
	var ok bool
	switch secret.Kind {
	case SecretNone:
		return &Error{Kind: ErrNoPassword, User: user}
	case SecretPlain:
		ok = constantTimeEqual(password, secret.Password)
	case SecretMD5:
		ok = constantTimeEqual(md5Secret(user, password), secret.MD5)
	case SecretSCRAM:
		v := &secret.SCRAM
		k, err := deriveSCRAMKeys(password, v.Salt, v.Iterations)
		if err != nil {
			return &Error{Kind: ErrUnsupportedSecret, User: user, Err: err}
		}
		ok = subtle.ConstantTimeCompare(k.stored[:], v.StoredKey[:])&
			subtle.ConstantTimeCompare(k.server[:], v.ServerKey[:]) == 1
	}
	if !ok {
		return &Error{Kind: ErrPasswordMismatch, User: user, Detail: "password does not match " + secret.Kind.String() + " secret"}
	}
	return nil
}

// mockCheck checks password as checkPassword would against a SCRAM verifier
// (opts.MockSCRAM) or an md5 secret that nobody's password matches, for the work alone.
func mockCheck(user, password string, opts Options) {
	if opts.MockSCRAM {
		v := mockVerifier(user, false, opts.MockSCRAMIterations)
		if k, err := deriveSCRAMKeys(password, v.Salt, v.Iterations); err == nil {
			subtle.ConstantTimeCompare(k.stored[:], v.StoredKey[:])
		}
		return
	}
	constantTimeEqual(md5Secret(user, password), md5Secret(user, mockPassword(user)))
}

// authMD5 runs md5 authentication against a plain or md5 secret. Without a secret it
// still asks for the password, so the client cannot tell.
func authMD5(r *wire.Reader, w *wire.Writer, user string, secret Secret) (*Credentials, error) {
	var salt [4]byte
	rand.Read(salt[:])
	if err := send(w, user, &pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
		return nil, err
	}
	body, err := readPasswordMessage(r, user)
	if err != nil {
		return nil, err
	}
	var m pgproto3.PasswordMessage
	if err := m.Decode(body); err != nil {
		return nil, &Error{Kind: ErrProtocol, User: user, Detail: "malformed password message", Err: err}
	}
	var stored string
	switch secret.Kind {
	case SecretPlain:
		stored = md5Secret(user, secret.Password)
	case SecretMD5:
		stored = secret.MD5
	default:
		// The same work as for a plain-text secret, and the same answer as a wrong
		// password, so the client cannot tell.
		constantTimeEqual(m.Password, md5Response(md5Secret(user, mockPassword(user)), salt))
		return nil, &Error{Kind: ErrNoPassword, User: user}
	}
	if !constantTimeEqual(m.Password, md5Response(stored, salt)) {
		return nil, &Error{Kind: ErrPasswordMismatch, User: user, Detail: "md5 response does not match"}
	}
	c := secret.Credentials()
	c.MD5 = stored
	return c, nil
}

// md5Response is what a client answers to AuthenticationMD5Password:
// "md5" + hex(md5(hex part of the md5 secret + salt)).
func md5Response(md5Secret string, salt [4]byte) string {
	h := md5.New()
	h.Write([]byte(md5Secret[len(md5Prefix):]))
	h.Write(salt[:])
	return md5Prefix + hex.EncodeToString(h.Sum(nil))
}

// authSCRAM runs SCRAM-SHA-256. A plain secret gets a verifier with the user's derived
// salt (see userSalt); an md5 secret or none runs a mock exchange that always fails
// and that a client cannot tell from a real one: the same derived salt, the same
// iteration count and, with opts.MockSCRAMWork, the same PBKDF2 work.
func authSCRAM(r *wire.Reader, w *wire.Writer, user string, secret Secret, opts Options) (*Credentials, error) {
	s := &scramServer{user: user}
	var failure error
	switch secret.Kind {
	case SecretSCRAM:
		s.verifier = &secret.SCRAM
	case SecretPlain:
		v, err := NewSCRAMVerifier(secret.Password, userSalt(user), DefaultSCRAMIterations)
		if err != nil {
			return nil, &Error{Kind: ErrUnsupportedSecret, User: user, Err: err}
		}
		s.verifier = &v
	case SecretMD5:
		failure = &Error{Kind: ErrUnsupportedSecret, User: user, SASL: true, Detail: "an md5 secret cannot verify SCRAM-SHA-256"}
	default:
		failure = &Error{Kind: ErrNoPassword, User: user, SASL: true}
	}
	if failure != nil {
		s.verifier, s.mock = mockVerifier(user, opts.MockSCRAMWork, opts.MockSCRAMIterations), true
	}

	if err := send(w, user, &pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}}); err != nil {
		return nil, err
	}
	first, err := readSASLInitialResponse(r, user)
	if err != nil {
		return nil, err
	}
	serverFirst, err := s.clientFirst(first, newNonce())
	if err != nil {
		return nil, markSASL(err)
	}
	if err := send(w, user, &pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}); err != nil {
		return nil, err
	}
	body, err := readPasswordMessage(r, user)
	if err != nil {
		return nil, err
	}
	serverFinal, clientKey, err := s.clientFinal(string(body))
	if err != nil {
		// A malformed message fails alike for every user; a well-formed one fails as a
		// wrong password, whatever the reason.
		if failure == nil || errors.Is(err, ErrProtocol) {
			return nil, markSASL(err)
		}
	}
	if failure != nil {
		return nil, failure
	}
	// Left buffered: the caller's AuthenticationOk follows in the same write.
	if err := w.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)}); err != nil {
		return nil, &Error{Kind: ErrProtocol, User: user, Err: err}
	}
	c := secret.Credentials()
	v := *s.verifier
	c.SCRAM, c.ClientKey = &v, clientKey
	return c, nil
}

// md5Worded rewords a SCRAM exchange MD5 ran that failed on the password as a failed
// password, as PostgreSQL words both methods' failures: under MD5 whether SCRAM runs
// depends on the user's secret (and, for an unknown user, on the mock's choice), so
// the words of a failure must not depend on it. A malformed exchange keeps its
// SASL wording, alike for every user.
func md5Worded(c *Credentials, err error) (*Credentials, error) {
	var ae *Error
	if errors.As(err, &ae) && ae.AuthFailed() {
		ae.SASL = false
	}
	return c, err
}

// markSASL marks an *Error as a failure of the SASL exchange, which the client is told
// as "SASL authentication failed".
func markSASL(err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		ae.SASL = true
	}
	return err
}

// MockKeySize is the length of the per-process mock key (MockKey, SetMockKey).
const MockKeySize = 32

// ErrMockKeySize: SetMockKey was given a key of another length than MockKeySize.
var ErrMockKeySize = errors.New("auth: mock key of the wrong size")

// mockKey is the per-process secret from which salts of plain-text users and of mock
// exchanges are derived, and the mock exchange's password: the same user always gets
// the same salt, as PostgreSQL's scram_mock_salt does, whether the user exists or not,
// so probing cannot tell missing users apart. Random at start; a process that takes
// over from another (an online restart) adopts its predecessor's (SetMockKey).
var mockKey atomic.Pointer[[MockKeySize]byte]

func init() {
	var k [MockKeySize]byte
	rand.Read(k[:])
	mockKey.Store(&k)
}

// saltKey returns the current mock key.
func saltKey() []byte { return mockKey.Load()[:] }

// keyed returns HMAC-SHA-256(saltKey, label 0 user): what the mock key derives for one
// purpose (label) and one user.
func keyed(label, user string) []byte {
	m := hmac.New(sha256.New, saltKey())
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return m.Sum(nil)
}

// MockKey returns a copy of the per-process secret that salts of plain-text users'
// verifiers, mock exchanges of unknown users and MockPrefersSCRAM derive from, to hand
// to a process taking over (SetMockKey), so that the same user gets the same answers
// from both.
func MockKey() []byte {
	k := *mockKey.Load()
	return k[:]
}

// SetMockKey replaces the per-process secret with k (MockKeySize bytes, as MockKey
// returned it in the process being taken over). Call it before serving logins: an
// exchange under way may derive from both keys.
func SetMockKey(k []byte) error {
	if len(k) != MockKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMockKeySize, len(k), MockKeySize)
	}
	var nk [MockKeySize]byte
	copy(nk[:], k)
	mockKey.Store(&nk)
	return nil
}

// userSalt returns the SCRAM salt of a user whose verifier the pooler makes itself:
// HMAC-SHA-256(saltKey, "salt" 0 user), cut to PostgreSQL's salt length.
func userSalt(user string) []byte {
	return keyed("salt", user)[:scramSaltLen]
}

// mockPassword is a password nobody knows, as long as a typical one, for the mock
// exchanges' work.
func mockPassword(user string) string {
	return hex.EncodeToString(keyed("password", user)[:8])
}

// mockVerifier returns the verifier of a mock exchange for user: the user's derived
// salt and iterations (DefaultSCRAMIterations if not positive); with work, derived
// from mockPassword like a plain-text user's, else random keys.
func mockVerifier(user string, work bool, iterations int) *SCRAMVerifier {
	if iterations <= 0 {
		iterations = DefaultSCRAMIterations
	}
	salt := userSalt(user)
	if work {
		if v, err := NewSCRAMVerifier(mockPassword(user), salt, iterations); err == nil {
			return &v
		}
	}
	v := &SCRAMVerifier{Iterations: iterations, Salt: salt}
	rand.Read(v.StoredKey[:])
	rand.Read(v.ServerKey[:])
	return v
}

// readSASLInitialResponse reads SASLInitialResponse and returns its data, which must
// select SCRAM-SHA-256 and be present.
func readSASLInitialResponse(r *wire.Reader, user string) (string, error) {
	body, err := readPasswordMessage(r, user)
	if err != nil {
		return "", err
	}
	var m pgproto3.SASLInitialResponse
	if err := m.Decode(body); err != nil {
		return "", &Error{Kind: ErrProtocol, User: user, Detail: "malformed SASLInitialResponse", Err: err}
	}
	if m.AuthMechanism != scramMechanism {
		return "", protocolError(user, "client selected an invalid SASL authentication mechanism %q", m.AuthMechanism)
	}
	// pgproto3 skips the data length; check it, since -1 means "no initial response".
	n := int32(binary.BigEndian.Uint32(body[len(m.AuthMechanism)+1:]))
	if n < 0 || int(n) != len(m.Data) {
		return "", protocolError(user, "malformed SASLInitialResponse: data length %d for %d bytes", n, len(m.Data))
	}
	return string(m.Data), nil
}

// readPasswordMessage reads the client's next message, which must be a password
// message ('p': PasswordMessage, SASLInitialResponse or SASLResponse), and returns
// its body, valid until the next read from r.
func readPasswordMessage(r *wire.Reader, user string) ([]byte, error) {
	typ, msg, err := r.Next()
	if err != nil {
		return nil, connError(user, err)
	}
	switch {
	case typ == wire.Terminate:
		return nil, fmt.Errorf("auth: client sent Terminate during authentication: %w", io.EOF)
	case typ != wire.Password:
		return nil, protocolError(user, "expected password response, got message type %q", typ)
	case len(msg) > maxAuthMessage:
		return nil, protocolError(user, "authentication message of %d bytes exceeds %d", len(msg), maxAuthMessage)
	}
	return wire.Body(msg), nil
}

// send writes one message and flushes.
func send(w *wire.Writer, user string, m interface {
	Encode(dst []byte) ([]byte, error)
}) error {
	if err := w.Send(m); err != nil {
		return &Error{Kind: ErrProtocol, User: user, Err: err}
	}
	if err := w.Flush(); err != nil {
		return connError(user, err)
	}
	return nil
}

// constantTimeEqual compares a and b in time that depends on neither their contents
// nor their lengths (both are hashed first).
func constantTimeEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
