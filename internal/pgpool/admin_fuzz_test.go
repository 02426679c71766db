package pgpool

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
		cmd, err := parseAdminCommand(q)
		if err != nil {
			if !errors.Is(err, errAdminSyntax) && !errors.Is(err, errAdminArgs) {
				t.Fatalf("%q: untyped error %v", q, err)
			}
			return
		}
		if cmd.verb == "" || strings.ToLower(cmd.verb) != cmd.verb {
			t.Fatalf("%q: verb %q", q, cmd.verb)
		}
		if len(cmd.arg) > maxAdminArg || len(cmd.val) > maxAdminValue || (cmd.verb != "set" && len(cmd.verb) > maxAdminVerb) {
			t.Fatalf("%q: over the limits: %+v", q, cmd)
		}
		var canon string
		switch {
		case cmd.verb == "set" && cmd.arg != "":
			canon = `SET "` + strings.ReplaceAll(cmd.arg, `"`, `""`) + `" = '` + strings.ReplaceAll(cmd.val, "'", "''") + "'"
		case cmd.arg != "":
			canon = cmd.verb + ` "` + strings.ReplaceAll(cmd.arg, `"`, `""`) + `"`
		default:
			canon = cmd.verb
		}
		again, err := parseAdminCommand(canon)
		if err != nil || again.verb != cmd.verb || again.arg != cmd.arg || again.val != cmd.val {
			t.Fatalf("%q parsed as %+v; canonical %q parsed as %+v, %v", q, cmd, canon, again, err)
		}
	})
}
