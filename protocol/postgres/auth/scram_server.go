package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
)

// scramServer is the server side of one SCRAM-SHA-256 exchange (RFC 5802 section 5,
// as PostgreSQL implements it: no channel binding, no authorization identity, and the
// user name in the message ignored in favour of the startup packet's).
type scramServer struct {
	user     string // for errors
	verifier *SCRAMVerifier
	mock     bool // fail at the end whatever the proof

	gs2Header       string // "n,," or "y,,"
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
}

// clientFirst handles client-first-message and returns server-first-message, using
// serverNonce as the server's part of the nonce.
func (s *scramServer) clientFirst(msg, serverNonce string) (string, error) {
	switch {
	case strings.HasPrefix(msg, "n,,"), strings.HasPrefix(msg, "y,,"):
		s.gs2Header, s.clientFirstBare = msg[:3], msg[3:]
	case strings.HasPrefix(msg, "p="):
		return "", protocolError(s.user, "client requires SCRAM channel binding, which was not offered")
	case strings.HasPrefix(msg, "n,a="), strings.HasPrefix(msg, "y,a="):
		return "", protocolError(s.user, "client uses a SCRAM authorization identity, which is not supported")
	default:
		return "", protocolError(s.user, "malformed SCRAM message: bad GS2 header")
	}
	attrs := strings.Split(s.clientFirstBare, ",")
	if k, _, ok := scramAttr(attrs[0]); ok && k == 'm' {
		return "", protocolError(s.user, "client requires an unsupported SCRAM extension")
	}
	if len(attrs) < 2 {
		return "", protocolError(s.user, "malformed SCRAM message: client-first-message too short")
	}
	if k, _, ok := scramAttr(attrs[0]); !ok || k != 'n' {
		return "", protocolError(s.user, "malformed SCRAM message: expected attribute \"n\"")
	}
	k, clientNonce, ok := scramAttr(attrs[1])
	if !ok || k != 'r' || clientNonce == "" {
		return "", protocolError(s.user, "malformed SCRAM message: expected attribute \"r\"")
	}
	if !isPrintable(clientNonce) {
		return "", protocolError(s.user, "non-printable characters in SCRAM nonce")
	}
	// Further attributes are extensions, which are ignored.
	s.nonce = clientNonce + serverNonce
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.verifier.Salt) +
		",i=" + strconv.Itoa(s.verifier.Iterations)
	return s.serverFirst, nil
}

// clientFinal handles client-final-message. It returns server-final-message and the
// ClientKey recovered from the proof when the proof is right, ErrPasswordMismatch when
// it is not, and ErrProtocol when the message is malformed.
func (s *scramServer) clientFinal(msg string) (serverFinal string, clientKey []byte, err error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", nil, protocolError(s.user, "malformed SCRAM message: no proof")
	}
	withoutProof, proofText := msg[:i], msg[i+len(",p="):]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return "", nil, protocolError(s.user, "malformed SCRAM message: client-final-message too short")
	}
	k, cbind, ok := scramAttr(attrs[0])
	if !ok || k != 'c' {
		return "", nil, protocolError(s.user, "malformed SCRAM message: expected attribute \"c\"")
	}
	cb, err := base64.StdEncoding.DecodeString(cbind)
	if err != nil || string(cb) != s.gs2Header {
		return "", nil, protocolError(s.user, "SCRAM channel binding check failed")
	}
	k, nonce, ok := scramAttr(attrs[1])
	if !ok || k != 'r' {
		return "", nil, protocolError(s.user, "malformed SCRAM message: expected attribute \"r\"")
	}
	if nonce != s.nonce {
		return "", nil, protocolError(s.user, "SCRAM nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofText)
	if err != nil || len(proof) != sha256.Size {
		return "", nil, protocolError(s.user, "malformed SCRAM message: bad proof")
	}

	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientSignature := hmacSHA256(s.verifier.StoredKey[:], authMessage)
	clientKey = xorBytes(proof, clientSignature)
	storedKey := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(storedKey[:], s.verifier.StoredKey[:]) != 1 || s.mock {
		return "", nil, &Error{Kind: ErrPasswordMismatch, User: s.user, Detail: "SCRAM proof does not match"}
	}
	serverSignature := hmacSHA256(s.verifier.ServerKey[:], authMessage)
	return "v=" + base64.StdEncoding.EncodeToString(serverSignature), clientKey, nil
}
