package pgini

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scramSecret is the SCRAM-SHA-256 secret of password "secret" with salt
// "0123456789abcdef" and 4096 iterations; md5Secret is md5("secret" +
// "alice").
const (
	scramSecret = "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$bpSY5Ze9NUH+I35LC3gVq+DpBfK46iXBxvhAKqVu9pE=:VpYlBuxyzeCI1KnctrefdljpB1mk3Gp7sBI/t11+NkQ="
	md5Secret   = "md54a0a68b43b6cd5cf266fa02f196e2371"
)

func TestParseUserlist(t *testing.T) {
	src := `; comment
# another comment

"alice" "` + md5Secret + `"
"bob"	"` + scramSecret + `"
  "carol" "plain text pw" ""
"quote""d" "pa""ss"
"empty" ""
"alice" "later wins"
`
	got, err := ParseUserlist("userlist.txt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"alice":   "later wins",
		"bob":     scramSecret,
		"carol":   "plain text pw",
		`quote"d`: `pa"ss`,
		"empty":   "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseUserlistErrors(t *testing.T) {
	tests := []struct {
		line string
		err  error
		user string
	}{
		{`alice "x"`, ErrSyntax, ""},
		{`"alice x"`, ErrSyntax, "alice x"},
		{`"alice"`, ErrSyntax, "alice"},
		{`"alice" x`, ErrSyntax, "alice"},
		{`"alice" "x`, ErrSyntax, "alice"},
		{`"" "x"`, ErrInvalidValue, ""},
		{`"` + strings.Repeat("u", 128) + `" "x"`, ErrInvalidValue, strings.Repeat("u", 128)},
		{`"alice" "SCRAM-SHA-256$4096:c2FsdA==$bad:bad"`, ErrInvalidValue, "alice"},
	}
	for _, tt := range tests {
		_, err := ParseUserlist("u.txt", []byte("\"ok\" \"ok\"\n"+tt.line+"\n"))
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 {
			t.Errorf("%s: err = %v", tt.line, err)
			continue
		}
		p := ps[0]
		if p.File != "u.txt" || p.Line != 2 || p.Key != tt.user || !errors.Is(err, tt.err) {
			t.Errorf("%s: problem %v (line %d, key %q, err %v), want line 2 key %q err %v", tt.line, p, p.Line, p.Key, p.Err, tt.user, tt.err)
		}
	}
}

func TestLoadUserlist(t *testing.T) {
	p := filepath.Join(t.TempDir(), "userlist.txt")
	if err := os.WriteFile(p, []byte("\"u\" \"p\"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadUserlist(p)
	if err != nil || got["u"] != "p" || len(got) != 1 {
		t.Errorf("LoadUserlist = %q, %v", got, err)
	}
	if _, err := LoadUserlist(p + ".missing"); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Errorf("missing file: %v", err)
	}
	// Debian's package ships an auth file; it must load when present.
	if _, err := os.Stat("/etc/pgbouncer/userlist.txt"); err == nil {
		if _, err := LoadUserlist("/etc/pgbouncer/userlist.txt"); err != nil {
			t.Errorf("Debian userlist: %v", err)
		}
	}
}

func TestSecretKindOf(t *testing.T) {
	tests := []struct {
		secret string
		want   SecretKind
	}{
		{md5Secret, SecretMD5},
		{scramSecret, SecretSCRAM},
		{"password", SecretPlain},
		{"", SecretPlain},
		{"md5" + strings.Repeat("A", 32), SecretPlain}, // upper-case hex is not an MD5 hash
		{"md5" + strings.Repeat("a", 31), SecretPlain},
		{"SCRAM-SHA-256$x", SecretPlain},
	}
	for _, tt := range tests {
		if got := SecretKindOf(tt.secret); got != tt.want {
			t.Errorf("SecretKindOf(%q) = %v, want %v", tt.secret, got, tt.want)
		}
	}
}

func TestParseSCRAMSecret(t *testing.T) {
	s, err := ParseSCRAMSecret(scramSecret)
	if err != nil {
		t.Fatal(err)
	}
	if s.Iterations != 4096 || string(s.Salt) != "0123456789abcdef" || len(s.StoredKey) != 32 || len(s.ServerKey) != 32 {
		t.Fatalf("parsed %+v", s)
	}
	// The parts are those of password "secret".
	salted, err := pbkdf2.Key(sha256.New, "secret", s.Salt, s.Iterations, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	if !hmac.Equal(stored[:], s.StoredKey) || !hmac.Equal(mac(salted, "Server Key"), s.ServerKey) {
		t.Errorf("keys do not match the password")
	}
	if s.String() != scramSecret {
		t.Errorf("String() = %q", s.String())
	}

	key := "bpSY5Ze9NUH+I35LC3gVq+DpBfK46iXBxvhAKqVu9pE="
	for _, bad := range []string{
		"",
		"SCRAM-SHA-1$4096:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==",
		"SCRAM-SHA-256$4096$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key,
		"SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$-1:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$x:c2FsdA==$" + key + ":" + key,
		"SCRAM-SHA-256$4096:!!!$" + key + ":" + key,
		"SCRAM-SHA-256$4096:$" + key + ":" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:" + key,
		"SCRAM-SHA-256$4096:c2FsdA==$" + key + ":c2FsdA==",
		"SCRAM-SHA-256$4096:c2FsdA==$" + key + ":" + key + "x",
	} {
		if _, err := ParseSCRAMSecret(bad); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("ParseSCRAMSecret(%q) = %v", bad, err)
		}
	}
}
