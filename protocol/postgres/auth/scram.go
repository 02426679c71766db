package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

const (
	scramMechanism     = "SCRAM-SHA-256"
	scramPlusMechanism = "SCRAM-SHA-256-PLUS"

	// scramNonceLen is the number of random bytes in a nonce, as PostgreSQL uses.
	scramNonceLen = 18
)

// scramKeys are the keys derived from a password (RFC 5802 section 3).
type scramKeys struct {
	client [sha256.Size]byte // ClientKey = HMAC(SaltedPassword, "Client Key")
	stored [sha256.Size]byte // StoredKey = H(ClientKey)
	server [sha256.Size]byte // ServerKey = HMAC(SaltedPassword, "Server Key")
}

// deriveSCRAMKeys computes SaltedPassword = Hi(SASLprep(password), salt, iterations)
// and the keys derived from it.
func deriveSCRAMKeys(password string, salt []byte, iterations int) (scramKeys, error) {
	salted, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, sha256.Size)
	if err != nil {
		return scramKeys{}, fmt.Errorf("auth: computing SCRAM salted password: %w", err)
	}
	var k scramKeys
	copy(k.client[:], hmacSHA256(salted, "Client Key"))
	k.stored = sha256.Sum256(k.client[:])
	copy(k.server[:], hmacSHA256(salted, "Server Key"))
	return k, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func xorBytes(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// newNonce returns scramNonceLen random bytes in base64, printable as RFC 5802
// requires (no ',').
func newNonce() string {
	b := make([]byte, scramNonceLen)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// isPrintable reports whether s is a valid SCRAM nonce: printable ASCII except ','.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// scramAttr splits a "k=value" attribute.
func scramAttr(attr string) (key byte, value string, ok bool) {
	if len(attr) < 2 || attr[1] != '=' {
		return 0, "", false
	}
	return attr[0], attr[2:], true
}
