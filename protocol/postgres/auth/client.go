package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Login logs in to a PostgreSQL server as user with cred, after the caller has sent
// the StartupMessage on w. It answers every authentication request (cleartext, md5,
// SCRAM-SHA-256 with a password or with a recovered ClientKey, verifying the server's
// signature) and returns nil right after reading AuthenticationOk; ParameterStatus,
// BackendKeyData and ReadyForQuery are left for the caller. NoticeResponse and
// NegotiateProtocolVersion messages before AuthenticationOk are skipped.
//
// Errors: an *Error with Kind ErrServer carrying the server's ErrorResponse (SQLSTATE
// 28P01 for a wrong password, 28000 when pg_hba.conf has no entry, 53300 for too many
// connections, ...; a missing database, 3D000, is reported after AuthenticationOk and
// so is the caller's to read), ErrUnsupportedMethod
// for GSSAPI, SSPI, Kerberos, SCM credentials or SCRAM-SHA-256-PLUS only,
// ErrNoCredentials when cred cannot answer the method asked for, ErrVerifierMismatch
// when a ClientKey meets a server verifier with another salt or iteration count,
// ErrServerSignature when the server's SCRAM signature is wrong, ErrProtocol for an
// unexpected or malformed message; any other error comes from the connection. A nil
// cred is taken as no credentials, which only trust admits.
func Login(r *wire.Reader, w *wire.Writer, user string, cred *Credentials) error {
	if cred == nil {
		cred = &Credentials{}
	}
	l := &login{r: r, w: w, user: user, cred: cred}
	for {
		authType, body, err := l.nextAuth()
		if err != nil {
			return err
		}
		switch authType {
		case pgproto3.AuthTypeOk:
			return nil
		case pgproto3.AuthTypeCleartextPassword:
			err = l.cleartext()
		case pgproto3.AuthTypeMD5Password:
			err = l.md5(body)
		case pgproto3.AuthTypeSASL:
			err = l.sasl(body)
		case pgproto3.AuthTypeSASLContinue, pgproto3.AuthTypeSASLFinal:
			err = protocolError(user, "unexpected SASL message (authentication type %d) outside an exchange", authType)
		default:
			err = &Error{Kind: ErrUnsupportedMethod, User: user, Detail: authTypeName(authType)}
		}
		if err != nil {
			return err
		}
	}
}

// login is the state of one Login.
type login struct {
	r    *wire.Reader
	w    *wire.Writer
	user string
	cred *Credentials
}

// nextAuth reads the server's next authentication message and returns its
// authentication type and whole body, valid until the next read. An ErrorResponse
// becomes an ErrServer error.
func (l *login) nextAuth() (authType uint32, body []byte, err error) {
	for {
		typ, msg, err := l.r.Next()
		if err != nil {
			return 0, nil, connError(l.user, err)
		}
		body = wire.Body(msg)
		switch typ {
		case wire.Authentication:
			if len(body) < 4 {
				return 0, nil, protocolError(l.user, "authentication message too short")
			}
			return binary.BigEndian.Uint32(body), body, nil
		case wire.ErrorResponse:
			var er pgproto3.ErrorResponse
			if err := er.Decode(body); err != nil {
				return 0, nil, &Error{Kind: ErrProtocol, User: l.user, Detail: "malformed ErrorResponse", Err: err}
			}
			return 0, nil, &Error{Kind: ErrServer, User: l.user, Server: &er}
		case wire.NoticeResponse, wire.NegotiateProtocol:
			continue
		default:
			return 0, nil, protocolError(l.user, "unexpected message type %q during authentication", typ)
		}
	}
}

func (l *login) cleartext() error {
	if l.cred.Password == "" {
		return &Error{Kind: ErrNoCredentials, User: l.user, Detail: "server asks for a cleartext password, which is unknown"}
	}
	return send(l.w, l.user, &pgproto3.PasswordMessage{Password: l.cred.Password})
}

func (l *login) md5(body []byte) error {
	var m pgproto3.AuthenticationMD5Password
	if err := m.Decode(body); err != nil {
		return &Error{Kind: ErrProtocol, User: l.user, Detail: "malformed AuthenticationMD5Password", Err: err}
	}
	secret := l.cred.MD5
	if l.cred.Password != "" {
		secret = md5Secret(l.user, l.cred.Password)
	}
	if !isMD5Secret(secret) {
		return &Error{Kind: ErrNoCredentials, User: l.user, Detail: "server asks for md5, and neither the password nor its md5 secret is known"}
	}
	return send(l.w, l.user, &pgproto3.PasswordMessage{Password: md5Response(secret, m.Salt)})
}

// sasl runs a SCRAM-SHA-256 exchange up to and including AuthenticationSASLFinal.
func (l *login) sasl(body []byte) error {
	var m pgproto3.AuthenticationSASL
	if err := m.Decode(body); err != nil {
		return &Error{Kind: ErrProtocol, User: l.user, Detail: "malformed AuthenticationSASL", Err: err}
	}
	if !slices.Contains(m.AuthMechanisms, scramMechanism) {
		return &Error{Kind: ErrUnsupportedMethod, User: l.user, Detail: "SASL mechanisms offered: " + strings.Join(m.AuthMechanisms, ", ")}
	}
	keys, err := l.scramKeySource()
	if err != nil {
		return err
	}
	c := &scramClient{user: l.user}
	first := c.clientFirst("", newNonce())
	if err := send(l.w, l.user, &pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism, Data: []byte(first)}); err != nil {
		return err
	}

	data, err := l.saslStep(pgproto3.AuthTypeSASLContinue)
	if err != nil {
		return err
	}
	final, err := c.serverFirst(data, keys)
	if err != nil {
		return err
	}
	if err := send(l.w, l.user, &pgproto3.SASLResponse{Data: []byte(final)}); err != nil {
		return err
	}

	data, err = l.saslStep(pgproto3.AuthTypeSASLFinal)
	if err != nil {
		return err
	}
	return c.serverFinal(data)
}

// saslStep reads the next message, which must be the authentication message of type
// want, and returns its SASL data.
func (l *login) saslStep(want uint32) (string, error) {
	authType, body, err := l.nextAuth()
	if err != nil {
		return "", err
	}
	if authType != want {
		return "", protocolError(l.user, "expected authentication type %d in SCRAM exchange, got %d", want, authType)
	}
	return string(body[4:]), nil
}

// scramKeySource returns how to get the SCRAM keys: from the password, or from the
// recovered ClientKey and its verifier if the server's salt and iteration count are
// the verifier's.
func (l *login) scramKeySource() (scramKeySource, error) {
	if password := l.cred.Password; password != "" {
		return func(salt []byte, iterations int) ([]byte, []byte, error) {
			k, err := deriveSCRAMKeys(password, salt, iterations)
			if err != nil {
				return nil, nil, &Error{Kind: ErrNoCredentials, User: l.user, Err: err}
			}
			return k.client[:], k.server[:], nil
		}, nil
	}
	v, clientKey := l.cred.SCRAM, l.cred.ClientKey
	if v == nil || len(clientKey) != sha256.Size {
		return nil, &Error{Kind: ErrNoCredentials, User: l.user, Detail: "server asks for SCRAM-SHA-256, and neither the password nor a SCRAM ClientKey is known"}
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], v.StoredKey[:]) != 1 {
		return nil, &Error{Kind: ErrNoCredentials, User: l.user, Detail: "SCRAM ClientKey does not belong to the verifier"}
	}
	return func(salt []byte, iterations int) ([]byte, []byte, error) {
		if iterations != v.Iterations || !slices.Equal(salt, v.Salt) {
			return nil, nil, &Error{Kind: ErrVerifierMismatch, User: l.user,
				Detail: "the server's verifier for this role has another salt or iteration count than the client's; store the same SCRAM secret on both"}
		}
		return clientKey, v.ServerKey[:], nil
	}, nil
}

func authTypeName(t uint32) string {
	switch t {
	case 2:
		return "Kerberos V5"
	case pgproto3.AuthTypeSCMCreds:
		return "SCM credentials"
	case pgproto3.AuthTypeGSS, pgproto3.AuthTypeGSSCont:
		return "GSSAPI"
	case pgproto3.AuthTypeSSPI:
		return "SSPI"
	}
	return "authentication type " + strconv.FormatUint(uint64(t), 10)
}
