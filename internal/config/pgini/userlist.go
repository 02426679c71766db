package pgini

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxSecretLen is the longest secret PgBouncer accepts (MAX_PASSWORD - 1).
const maxSecretLen = 65530

// LoadUserlist reads a PgBouncer auth_file (userlist.txt) and returns each
// user's secret by user name; when a user appears twice the later line
// wins, as in PgBouncer. The error, if not nil, is a Problems with every
// bad line; the map is then nil.
func LoadUserlist(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: err.Error(), Err: fmt.Errorf("%w: %w", ErrRead, err)}}
	}
	return ParseUserlist(path, data)
}

// ParseUserlist parses the contents of an auth_file; name is used in
// problems. Each line is blank, a comment starting with ';' or '#', or
// `"user" "secret"`: both in double quotes, a doubled quote standing for a
// quote inside, separated by spaces or tabs. Anything after the secret is
// ignored, as in PgBouncer (old files carry a third column). A secret that
// starts like a SCRAM secret but does not parse is an error.
func ParseUserlist(name string, src []byte) (map[string]string, error) {
	users := map[string]string{}
	var problems Problems
	for i, raw := range splitLines(src) {
		user, secret, ok, err := parseUserlistLine(raw)
		if err == nil && ok {
			err = checkSecret(user, secret)
		}
		if err != nil {
			problems = append(problems, &Problem{File: name, Line: i + 1, Key: user, Msg: message(err), Err: err})
			continue
		}
		if ok {
			users[user] = secret
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return users, nil
}

// parseUserlistLine parses one line; ok is false for blank and comment lines.
func parseUserlistLine(raw string) (user, secret string, ok bool, err error) {
	s := trimSpace(raw)
	if s == "" || s[0] == ';' || s[0] == '#' {
		return "", "", false, nil
	}
	user, rest, err := quoted(s)
	if err != nil {
		return "", "", false, err
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" {
		return user, "", false, syntaxf("missing secret after user name")
	}
	secret, _, err = quoted(rest)
	if err != nil {
		return user, "", false, err
	}
	return user, secret, true, nil
}

// quoted reads a double-quoted string at the start of s.
func quoted(s string) (val, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", s, syntaxf(`expected a value in double quotes`)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", syntaxf("missing closing double quote")
}

// checkSecret applies PgBouncer's length limits and checks SCRAM secrets.
func checkSecret(user, secret string) error {
	switch {
	case user == "":
		return invalidf("empty user name")
	case len(user) > maxUserLen:
		return invalidf("user name longer than %d bytes", maxUserLen)
	case len(secret) > maxSecretLen:
		return invalidf("secret longer than %d bytes", maxSecretLen)
	case strings.HasPrefix(secret, scramPrefix):
		if _, err := ParseSCRAMSecret(secret); err != nil {
			return err
		}
	}
	return nil
}

// SecretKind is the form of a stored secret.
type SecretKind int

const (
	// SecretPlain is a clear-text password (also the empty secret).
	SecretPlain SecretKind = iota
	// SecretMD5 is "md5" followed by 32 lower-case hex digits of
	// md5(password + user name).
	SecretMD5
	// SecretSCRAM is a SCRAM-SHA-256 secret (see ParseSCRAMSecret).
	SecretSCRAM
)

// String names the kind.
func (k SecretKind) String() string {
	switch k {
	case SecretPlain:
		return "plain"
	case SecretMD5:
		return "md5"
	case SecretSCRAM:
		return "scram-sha-256"
	}
	return "SecretKind(" + strconv.Itoa(int(k)) + ")"
}

// SecretKindOf classifies a secret as PostgreSQL and PgBouncer do: an MD5
// hash, a well-formed SCRAM secret, or else a clear-text password.
func SecretKindOf(secret string) SecretKind {
	if len(secret) == 35 && strings.HasPrefix(secret, "md5") &&
		strings.Trim(secret[3:], "0123456789abcdef") == "" {
		return SecretMD5
	}
	if _, err := ParseSCRAMSecret(secret); err == nil {
		return SecretSCRAM
	}
	return SecretPlain
}

const scramPrefix = "SCRAM-SHA-256$"

// scramKeyLen is the length of StoredKey and ServerKey (SHA-256).
const scramKeyLen = 32

// SCRAMSecret is a parsed SCRAM-SHA-256 secret as PostgreSQL stores it in
// pg_authid.rolpassword.
type SCRAMSecret struct {
	Iterations int    // PBKDF2 iteration count, at least 1
	Salt       []byte // decoded salt
	StoredKey  []byte // H(ClientKey), 32 bytes
	ServerKey  []byte // 32 bytes
}

// ParseSCRAMSecret parses
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", where salt
// and keys are standard base64. The error wraps ErrInvalidValue.
func ParseSCRAMSecret(s string) (SCRAMSecret, error) {
	var sec SCRAMSecret
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return sec, invalidf("SCRAM secret must start with %q", scramPrefix)
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return sec, invalidf("SCRAM secret: missing '$' before the keys")
	}
	iter, salt, ok := strings.Cut(params, ":")
	if !ok {
		return sec, invalidf("SCRAM secret: expected <iterations>:<salt>")
	}
	stored, server, ok := strings.Cut(keys, ":")
	if !ok {
		return sec, invalidf("SCRAM secret: expected <StoredKey>:<ServerKey>")
	}
	n, err := strconv.ParseInt(iter, 10, 32)
	if err != nil || n < 1 {
		return sec, invalidf("SCRAM secret: bad iteration count %q", iter)
	}
	sec.Iterations = int(n)
	if sec.Salt, err = base64.StdEncoding.Strict().DecodeString(salt); err != nil || len(sec.Salt) == 0 {
		return SCRAMSecret{}, invalidf("SCRAM secret: salt is not base64")
	}
	if sec.StoredKey, err = decodeKey(stored); err != nil {
		return SCRAMSecret{}, invalidf("SCRAM secret: StoredKey: %s", message(err))
	}
	if sec.ServerKey, err = decodeKey(server); err != nil {
		return SCRAMSecret{}, invalidf("SCRAM secret: ServerKey: %s", message(err))
	}
	return sec, nil
}

func decodeKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, invalidf("not base64")
	}
	if len(b) != scramKeyLen {
		return nil, invalidf("%d bytes, want %d", len(b), scramKeyLen)
	}
	return b, nil
}

// String formats the secret in the form ParseSCRAMSecret reads.
func (s SCRAMSecret) String() string {
	enc := base64.StdEncoding
	return scramPrefix + strconv.Itoa(s.Iterations) + ":" + enc.EncodeToString(s.Salt) +
		"$" + enc.EncodeToString(s.StoredKey) + ":" + enc.EncodeToString(s.ServerKey)
}
