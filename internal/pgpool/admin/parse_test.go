package admin

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		q    string
		want Command
		err  error
	}{
		{q: "SHOW POOLS", want: Command{Verb: "show", Arg: "POOLS"}},
		{q: "  show\tpools ; ", want: Command{Verb: "show", Arg: "pools"}},
		{q: "pause", want: Command{Verb: "pause"}},
		{q: "PAUSE;", want: Command{Verb: "pause"}},
		{q: `KILL "my-db"`, want: Command{Verb: "kill", Arg: "my-db"}},
		{q: `KILL "a""b"`, want: Command{Verb: "kill", Arg: `a"b`}},
		{q: "SET default_pool_size = 30", want: Command{Verb: "set", Arg: "default_pool_size", Val: "30"}},
		{q: "set server_reset_query to 'DISCARD ALL'", want: Command{Verb: "set", Arg: "server_reset_query", Val: "DISCARD ALL"}},
		{q: "SET x = 'it''s'", want: Command{Verb: "set", Arg: "x", Val: "it's"}},
		{q: "", err: ErrSyntax},
		{q: ";", err: ErrSyntax},
		{q: "SHOW POOLS; SHOW LISTS", err: ErrSyntax},
		{q: "SELECT 1 + 1", err: ErrSyntax},
		{q: "SHOW a b", err: ErrSyntax},
		{q: "KILL 'db'", err: ErrSyntax},
		{q: `KILL "unterminated`, err: ErrSyntax},
		{q: "SET x 1", err: ErrSyntax},
		{q: "KILL " + strings.Repeat("d", 64), err: ErrArgs},
		{q: "SET x = '" + strings.Repeat("v", 256) + "'", err: ErrArgs},
	}
	for _, tt := range tests {
		got, err := Parse(tt.q)
		if !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q): error %v, want %v", tt.q, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.q, got, tt.want)
		}
	}
}
