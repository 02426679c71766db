package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseSecret(t *testing.T) {
	scram := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	tests := []struct {
		in   string
		kind SecretKind
	}{
		{"", SecretNone},
		{"secret", SecretPlain},
		{"md5" + strings.Repeat("0a", 16), SecretMD5},
		{"md5" + strings.Repeat("0A", 16), SecretPlain}, // PostgreSQL wants lowercase hex
		{"md5" + strings.Repeat("0a", 15), SecretPlain},
		{"md5" + strings.Repeat("0g", 16), SecretPlain},
		{scram, SecretSCRAM},
		{"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", SecretPlain},
		{"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3Otc:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", SecretPlain},
		{"SCRAM-SHA-256$4096:!!$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", SecretPlain},
		{"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==", SecretPlain},
	}
	for _, tt := range tests {
		s := ParseSecret(tt.in)
		if s.Kind != tt.kind {
			t.Errorf("ParseSecret(%q).Kind = %v, want %v", tt.in, s.Kind, tt.kind)
			continue
		}
		if got := s.Text(); got != tt.in {
			t.Errorf("ParseSecret(%q).Text() = %q", tt.in, got)
		}
	}
	if s := ParseSecret(scram); s.SCRAM.Iterations != 4096 || len(s.SCRAM.Salt) != 16 {
		t.Errorf("SCRAM secret parsed as %d iterations, %d-byte salt", s.SCRAM.Iterations, len(s.SCRAM.Salt))
	}
}

func TestNewSecrets(t *testing.T) {
	// echo -n "pencilalice" | md5sum
	if got := NewMD5Secret("alice", "pencil").MD5; got != md5Secret("alice", "pencil") || !isMD5Secret(got) {
		t.Errorf("NewMD5Secret = %q", got)
	}
	s := mustSCRAM(t, "pencil")
	if s.Kind != SecretSCRAM || s.SCRAM.Iterations != DefaultSCRAMIterations || len(s.SCRAM.Salt) != scramSaltLen {
		t.Fatalf("NewSCRAMSecret = %+v", s.SCRAM)
	}
	if p := ParseSecret(s.Text()); p.Kind != SecretSCRAM || p.SCRAM.StoredKey != s.SCRAM.StoredKey || p.SCRAM.ServerKey != s.SCRAM.ServerKey {
		t.Errorf("ParseSecret(Text()) does not round-trip")
	}
	if NewPlainSecret("md5"+strings.Repeat("0a", 16)).Kind != SecretPlain || NewPlainSecret("").Kind != SecretNone {
		t.Error("NewPlainSecret classified its input")
	}
	if _, err := NewSCRAMVerifier("x", nil, 4096); err == nil {
		t.Error("NewSCRAMVerifier accepted an empty salt")
	}
	if _, err := NewSCRAMVerifier("x", []byte("salt"), 0); err == nil {
		t.Error("NewSCRAMVerifier accepted 0 iterations")
	}
}

// TestMD5SecretKnownValue checks md5(password + user) against md5sum's value of
// "pencilalice".
func TestMD5SecretKnownValue(t *testing.T) {
	if got, want := NewMD5Secret("alice", "pencil").MD5, "md5ee69efad287c7423caf0b3229d71f567"; got != want {
		t.Errorf("NewMD5Secret(alice, pencil) = %s, want %s", got, want)
	}
}

func TestSecretsDoNotLeakWhenPrinted(t *testing.T) {
	s := mustSCRAM(t, "hunter2")
	secrets := []any{
		NewPlainSecret("hunter2"), NewMD5Secret("u", "hunter2"), s, &s.SCRAM, s.SCRAM,
		Credentials{Password: "hunter2"}, &Credentials{Password: "hunter2", MD5: md5Secret("u", "hunter2"), SCRAM: &s.SCRAM, ClientKey: []byte("k")},
	}
	leaks := []string{"hunter2", md5Secret("u", "hunter2")[3:], base64.StdEncoding.EncodeToString(s.SCRAM.StoredKey[:])}
	for _, x := range secrets {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, x)
			for _, l := range leaks {
				if strings.Contains(out, l) {
					t.Errorf("Sprintf(%q, %T) = %q leaks the secret", verb, x, out)
				}
			}
		}
	}
}

func TestParseMethod(t *testing.T) {
	for _, m := range []Method{Trust, Plain, MD5, SCRAMSHA256} {
		got, err := ParseMethod(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseMethod("password"); m != Plain || err != nil {
		t.Errorf("ParseMethod(password) = %v, %v", m, err)
	}
	if _, err := ParseMethod("gss"); !errors.Is(err, ErrInvalidMethod) {
		t.Errorf("ParseMethod(gss) error = %v", err)
	}
}

func TestSASLPrep(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pencil", "pencil"},
		{"I\u00adX", "IX"},                           // soft hyphen is mapped to nothing (RFC 4013 example)
		{"user", "user"},                             // ASCII is unchanged
		{"\u00aa", "a"},                              // NFKC (RFC 4013 example)
		{"\u2168", "IX"},                             // NFKC (RFC 4013 example)
		{"a\u00a0b", "a b"},                          // non-ASCII space becomes SPACE
		{"\u0007", "\u0007"},                         // prohibited: used as is (RFC 4013 example is an error)
		{"\u0627\u0031", "\u0627\u0031"},             // bidi rule broken: used as is
		{"\u0627\u0031\u0628", "\u0627\u0031\u0628"}, // bidi rule kept; already normalized
		{"\xff\xfe", "\xff\xfe"},                     // not UTF-8: used as is
		{"caf\u0065\u0301", "caf\u00e9"},
	}
	for _, tt := range tests {
		if got := saslPrep(tt.in); got != tt.want {
			t.Errorf("saslPrep(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
