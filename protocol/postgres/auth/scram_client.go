package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// scramClient is the client side of one SCRAM-SHA-256 exchange without channel
// binding (RFC 5802 section 3).
type scramClient struct {
	user string // for errors
	gs2  string // GS2 header; "" means "n,,"

	clientNonce     string
	clientFirstBare string
	authMessage     string
	serverKey       []byte
}

// clientFirst returns client-first-message with GS2 header c.gs2 ("n,,": no channel
// binding),
// the SCRAM user name name (PostgreSQL ignores it; libpq sends it empty) and nonce.
func (c *scramClient) clientFirst(name, nonce string) string {
	if c.gs2 == "" {
		c.gs2 = "n,,"
	}
	c.clientNonce = nonce
	c.clientFirstBare = "n=" + scramEscape(name) + ",r=" + nonce
	return c.gs2 + c.clientFirstBare
}

// scramKeySource supplies ClientKey and ServerKey for the server's salt and iteration
// count.
type scramKeySource func(salt []byte, iterations int) (clientKey, serverKey []byte, err error)

// serverFirst handles server-first-message and returns client-final-message.
func (c *scramClient) serverFirst(msg string, keys scramKeySource) (string, error) {
	attrs := strings.Split(msg, ",")
	if len(attrs) < 3 {
		return "", protocolError(c.user, "malformed SCRAM server-first-message")
	}
	k, nonce, ok := scramAttr(attrs[0])
	if !ok || k != 'r' {
		return "", protocolError(c.user, "malformed SCRAM server-first-message: expected attribute \"r\"")
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) || !isPrintable(nonce) {
		return "", protocolError(c.user, "invalid SCRAM nonce from server")
	}
	k, saltText, ok := scramAttr(attrs[1])
	if !ok || k != 's' {
		return "", protocolError(c.user, "malformed SCRAM server-first-message: expected attribute \"s\"")
	}
	salt, err := base64.StdEncoding.DecodeString(saltText)
	if err != nil || len(salt) == 0 {
		return "", protocolError(c.user, "invalid SCRAM salt from server")
	}
	k, iterText, ok := scramAttr(attrs[2])
	if !ok || k != 'i' {
		return "", protocolError(c.user, "malformed SCRAM server-first-message: expected attribute \"i\"")
	}
	iterations, err := strconv.Atoi(iterText)
	if err != nil || iterations <= 0 {
		return "", protocolError(c.user, "invalid SCRAM iteration count %q from server", iterText)
	}

	clientKey, serverKey, err := keys(salt, iterations)
	if err != nil {
		return "", err
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2)) + ",r=" + nonce
	c.authMessage = c.clientFirstBare + "," + msg + "," + withoutProof
	storedKey := sha256.Sum256(clientKey)
	clientSignature := hmacSHA256(storedKey[:], c.authMessage)
	proof := xorBytes(clientKey, clientSignature)
	c.serverKey = serverKey
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// serverFinal checks server-final-message's signature.
func (c *scramClient) serverFinal(msg string) error {
	k, value, ok := scramAttr(msg)
	if ok && k == 'e' {
		return protocolError(c.user, "SCRAM server error %q", value)
	}
	if !ok || k != 'v' {
		return protocolError(c.user, "malformed SCRAM server-final-message")
	}
	// Extensions after the signature are allowed and ignored.
	if i := strings.IndexByte(value, ','); i >= 0 {
		value = value[:i]
	}
	got, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return protocolError(c.user, "malformed SCRAM server signature")
	}
	want := hmacSHA256(c.serverKey, c.authMessage)
	if !hmac.Equal(got, want) {
		return &Error{Kind: ErrServerSignature, User: c.user}
	}
	return nil
}

// scramEscape encodes a SCRAM saslname: ',' as "=2C" and '=' as "=3D".
func scramEscape(name string) string {
	if !strings.ContainsAny(name, ",=") {
		return name
	}
	var b bytes.Buffer
	for _, r := range name {
		switch r {
		case ',':
			b.WriteString("=2C")
		case '=':
			b.WriteString("=3D")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
