package admin

import (
	"errors"
	"strings"
	"testing"
)

// FuzzAdminCommand checks that no statement makes the admin console's parser panic,
// that it fails only with its own errors, and that what it accepts is within the
// console's limits and parses the same when written back in canonical form.
func FuzzAdminCommand(f *testing.F) {
	for _, q := range []string{
		"SHOW POOLS", "show clients;", "PAUSE app", `KILL "My DB"`, "SET default_pool_size = 30",
		"set auth_type to 'trust'", "SET x = 'it''s'", "SHOW", ";", "SET a = ;", "RELOAD; RELOAD",
		"SHOW\tSTATS_TOTALS\n", `SET "key" TO "val"`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		cmd, err := Parse(q)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrArgs) {
				t.Fatalf("%q: untyped error %v", q, err)
			}
			return
		}
		if cmd.Verb == "" || strings.ToLower(cmd.Verb) != cmd.Verb {
			t.Fatalf("%q: verb %q", q, cmd.Verb)
		}
		if len(cmd.Arg) > maxAdminArg || len(cmd.Val) > maxAdminValue || (cmd.Verb != "set" && len(cmd.Verb) > maxAdminVerb) {
			t.Fatalf("%q: over the limits: %+v", q, cmd)
		}
		var canon string
		switch {
		case cmd.Verb == "set" && cmd.Arg != "":
			canon = `SET "` + strings.ReplaceAll(cmd.Arg, `"`, `""`) + `" = '` + strings.ReplaceAll(cmd.Val, "'", "''") + "'"
		case cmd.Arg != "":
			canon = cmd.Verb + ` "` + strings.ReplaceAll(cmd.Arg, `"`, `""`) + `"`
		default:
			canon = cmd.Verb
		}
		again, err := Parse(canon)
		if err != nil || again.Verb != cmd.Verb || again.Arg != cmd.Arg || again.Val != cmd.Val {
			t.Fatalf("%q parsed as %+v; canonical %q parsed as %+v, %v", q, cmd, canon, again, err)
		}
	})
}
