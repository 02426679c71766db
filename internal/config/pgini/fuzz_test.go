package pgini

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that the ini reader never panics, reports problems with
// sensible places, is deterministic, and only accepts what Validate accepts.
// Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[pgbouncer]\nlisten_port = 6432\n[databases]\n* = host=x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, w, err := parse("fuzz.ini", data, noInclude)
		lines := len(splitLines(data))
		for _, wn := range w {
			if wn.File != "fuzz.ini" || wn.Line < 1 || wn.Line > lines || wn.Kind == 0 {
				t.Fatalf("bad warning %+v (%d lines)", wn, lines)
			}
		}
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
			for _, p := range ps {
				if p.Err == nil || p.Msg == "" || p.Line < 0 || p.Line > lines {
					t.Fatalf("bad problem %+v (%d lines)", p, lines)
				}
			}
		} else {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted config fails Validate: %v", verr)
			}
			for name, db := range c.Databases {
				if db.Name != name || db.DBName == "" || name == ReservedDatabase {
					t.Fatalf("bad database %q: %+v", name, db)
				}
				if got, ok := c.Database(name); !ok || got != db {
					t.Fatalf("Database(%q) did not return the entry", name)
				}
			}
		}
		c2, w2, err2 := parse("fuzz.ini", data, noInclude)
		if !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(w, w2) || (err == nil) != (err2 == nil) {
			t.Fatal("parse is not deterministic")
		}
	})
}

// FuzzUserlist checks the auth file reader. Seeds live in
// testdata/fuzz/FuzzUserlist.
func FuzzUserlist(f *testing.F) {
	f.Add([]byte("\"alice\" \"" + scramSecret + "\"\n\"bob\" \"md5" + strings.Repeat("0", 32) + "\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseUserlist("u.txt", data)
		if err != nil {
			if users != nil {
				t.Fatal("users returned with an error")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
			return
		}
		for user, secret := range users {
			if user == "" || len(user) > maxUserLen {
				t.Fatalf("bad user %q", user)
			}
			if strings.HasPrefix(secret, scramPrefix) {
				s, err := ParseSCRAMSecret(secret)
				if err != nil {
					t.Fatalf("accepted bad SCRAM secret %q: %v", secret, err)
				}
				if SecretKindOf(secret) != SecretSCRAM {
					t.Fatalf("SecretKindOf(%q) != SCRAM", secret)
				}
				if _, err := ParseSCRAMSecret(s.String()); err != nil {
					t.Fatalf("String() of %q does not parse: %v", secret, err)
				}
			}
		}
	})
}
