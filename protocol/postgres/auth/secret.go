package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// SecretKind says what a Secret holds.
type SecretKind uint8

// Kinds of secret.
const (
	// SecretNone: no secret (an empty entry); no password matches it.
	SecretNone SecretKind = iota
	// SecretPlain: the password itself.
	SecretPlain
	// SecretMD5: "md5" followed by the hex of md5(password + user).
	SecretMD5
	// SecretSCRAM: a SCRAM-SHA-256 verifier.
	SecretSCRAM
)

// String returns the kind's name: "none", "plain", "md5" or "scram-sha-256".
func (k SecretKind) String() string {
	switch k {
	case SecretNone:
		return "none"
	case SecretPlain:
		return "plain"
	case SecretMD5:
		return "md5"
	case SecretSCRAM:
		return "scram-sha-256"
	}
	return fmt.Sprintf("SecretKind(%d)", uint8(k))
}

const (
	md5Prefix    = "md5"
	md5SecretLen = len(md5Prefix) + 2*md5.Size

	scramPrefix = "SCRAM-SHA-256$"

	// DefaultSCRAMIterations is the iteration count of verifiers made by
	// NewSCRAMSecret and by Authenticate for a plain-text secret, PostgreSQL's
	// default scram_iterations.
	DefaultSCRAMIterations = 4096

	// scramSaltLen is the salt length PostgreSQL uses for new verifiers.
	scramSaltLen = 16
)

// SCRAMVerifier is what a server stores to check SCRAM-SHA-256 logins:
// StoredKey = SHA-256(ClientKey) and ServerKey, both derived from the password with the
// salt and iteration count (RFC 5802).
type SCRAMVerifier struct {
	Iterations int
	Salt       []byte
	StoredKey  [sha256.Size]byte
	ServerKey  [sha256.Size]byte
}

// Text returns the verifier as PostgreSQL stores it in pg_authid.rolpassword:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, in base64.
func (v SCRAMVerifier) Text() string {
	enc := base64.StdEncoding
	return scramPrefix + strconv.Itoa(v.Iterations) + ":" + enc.EncodeToString(v.Salt) +
		"$" + enc.EncodeToString(v.StoredKey[:]) + ":" + enc.EncodeToString(v.ServerKey[:])
}

// String returns a redacted description: the iteration count only.
func (v SCRAMVerifier) String() string {
	return fmt.Sprintf("SCRAM-SHA-256 verifier (%d iterations, redacted)", v.Iterations)
}

// GoString is String, so that %#v does not print the keys either.
func (v SCRAMVerifier) GoString() string { return v.String() }

// NewSCRAMVerifier computes the SCRAM-SHA-256 verifier of password with the given salt
// and iteration count. The password is prepared with SASLprep as PostgreSQL does.
func NewSCRAMVerifier(password string, salt []byte, iterations int) (SCRAMVerifier, error) {
	if iterations <= 0 {
		return SCRAMVerifier{}, fmt.Errorf("auth: SCRAM iteration count %d is not positive", iterations)
	}
	if len(salt) == 0 {
		return SCRAMVerifier{}, fmt.Errorf("auth: empty SCRAM salt")
	}
	k, err := deriveSCRAMKeys(password, salt, iterations)
	if err != nil {
		return SCRAMVerifier{}, err
	}
	return SCRAMVerifier{
		Iterations: iterations,
		Salt:       append([]byte(nil), salt...),
		StoredKey:  k.stored,
		ServerKey:  k.server,
	}, nil
}

// Secret is what the pooler knows of a user's password: a line of userlist.txt or
// pg_shadow.passwd from auth_query. Exactly the field matching Kind is set. Its String
// method redacts the secret; Text gives it in full.
type Secret struct {
	Kind     SecretKind
	Password string        // SecretPlain: the password
	MD5      string        // SecretMD5: "md5" + 32 lowercase hex digits
	SCRAM    SCRAMVerifier // SecretSCRAM: the verifier
}

// ParseSecret classifies s as PostgreSQL does (get_password_type): "md5" followed by
// 32 lowercase hex digits is an md5 secret, a well-formed
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> is a SCRAM verifier,
// the empty string is no secret, and anything else is a plain-text password.
func ParseSecret(s string) Secret {
	switch {
	case s == "":
		return Secret{}
	case isMD5Secret(s):
		return Secret{Kind: SecretMD5, MD5: s}
	}
	if v, ok := parseSCRAMVerifier(s); ok {
		return Secret{Kind: SecretSCRAM, SCRAM: v}
	}
	return Secret{Kind: SecretPlain, Password: s}
}

// NewPlainSecret returns a plain-text secret holding password (no secret if it is
// empty). Unlike ParseSecret it never takes the password for a hash.
func NewPlainSecret(password string) Secret {
	if password == "" {
		return Secret{}
	}
	return Secret{Kind: SecretPlain, Password: password}
}

// NewMD5Secret returns the md5 secret of user's password: "md5" + hex(md5(password +
// user)).
func NewMD5Secret(user, password string) Secret {
	return Secret{Kind: SecretMD5, MD5: md5Secret(user, password)}
}

// NewSCRAMSecret returns a SCRAM-SHA-256 secret for password with a random 16-byte salt
// and DefaultSCRAMIterations, as PostgreSQL makes them.
func NewSCRAMSecret(password string) (Secret, error) {
	salt := make([]byte, scramSaltLen)
	rand.Read(salt)
	v, err := NewSCRAMVerifier(password, salt, DefaultSCRAMIterations)
	if err != nil {
		return Secret{}, err
	}
	return Secret{Kind: SecretSCRAM, SCRAM: v}, nil
}

// Text returns the secret in the form ParseSecret reads: the password, the md5
// secret, the SCRAM verifier text, or "" for no secret.
func (s Secret) Text() string {
	switch s.Kind {
	case SecretPlain:
		return s.Password
	case SecretMD5:
		return s.MD5
	case SecretSCRAM:
		return s.SCRAM.Text()
	}
	return ""
}

// String returns a redacted description naming only the kind of secret, so that
// printing a Secret does not leak it.
func (s Secret) String() string { return s.Kind.String() + " secret (redacted)" }

// GoString is String, so that %#v does not leak the secret either.
func (s Secret) GoString() string { return s.String() }

// Credentials returns what the secret alone allows for logging in to a server (for
// the pooler's own auth_user, or a client admitted by trust): the password, the md5
// secret, or a SCRAM verifier without ClientKey, which cannot log in by itself.
func (s Secret) Credentials() *Credentials {
	c := &Credentials{}
	switch s.Kind {
	case SecretPlain:
		c.Password = s.Password
	case SecretMD5:
		c.MD5 = s.MD5
	case SecretSCRAM:
		v := s.SCRAM
		c.SCRAM = &v
	}
	return c
}

func md5Secret(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return md5Prefix + hex.EncodeToString(sum[:])
}

func isMD5Secret(s string) bool {
	if len(s) != md5SecretLen || !strings.HasPrefix(s, md5Prefix) {
		return false
	}
	for _, c := range s[len(md5Prefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseSCRAMVerifier parses SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>.
func parseSCRAMVerifier(s string) (SCRAMVerifier, bool) {
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return SCRAMVerifier{}, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return SCRAMVerifier{}, false
	}
	iterText, saltText, ok1 := strings.Cut(params, ":")
	storedText, serverText, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return SCRAMVerifier{}, false
	}
	iter, err := strconv.Atoi(iterText)
	if err != nil || iter <= 0 {
		return SCRAMVerifier{}, false
	}
	enc := base64.StdEncoding
	salt, err := enc.DecodeString(saltText)
	if err != nil || len(salt) == 0 {
		return SCRAMVerifier{}, false
	}
	v := SCRAMVerifier{Iterations: iter, Salt: salt}
	if !decodeKey(v.StoredKey[:], storedText) || !decodeKey(v.ServerKey[:], serverText) {
		return SCRAMVerifier{}, false
	}
	return v, true
}

func decodeKey(dst []byte, text string) bool {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) != len(dst) {
		return false
	}
	copy(dst, b)
	return true
}
