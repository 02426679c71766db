package pgini

import (
	"strings"
)

// kv is one key=value pair of a [databases] or [users] line.
type kv struct {
	key, val string
}

// parseConnString splits PgBouncer's "key=value key='quoted value'"
// format. Pairs are separated by spaces; white space around '=' is
// allowed; a value in single quotes may contain spaces, and a doubled quote stands for
// one quote inside it. Empty values are an error, as in PgBouncer.
func parseConnString(s string) ([]kv, error) {
	var out []kv
	p := 0
	skip := func() {
		for p < len(s) && s[p] == ' ' {
			p++
		}
	}
	for {
		skip()
		if p >= len(s) {
			return out, nil
		}
		start := p
		for p < len(s) && s[p] != '=' && s[p] != ' ' {
			p++
		}
		key := s[start:p]
		skip()
		if p >= len(s) || s[p] != '=' || key == "" {
			return out, syntaxf("expected key=value at %q", s[start:])
		}
		p++
		skip()
		var val string
		if p < len(s) && s[p] == '\'' {
			var b strings.Builder
			p++
			closed := false
			for p < len(s) {
				if s[p] == '\'' {
					if p+1 < len(s) && s[p+1] == '\'' {
						b.WriteByte('\'')
						p += 2
						continue
					}
					p++
					closed = true
					break
				}
				b.WriteByte(s[p])
				p++
			}
			if !closed {
				return out, syntaxf("unterminated quoted value for %s", key)
			}
			if p < len(s) && s[p] != ' ' {
				return out, syntaxf("expected a space after the quoted value of %s", key)
			}
			val = b.String()
		} else {
			vs := p
			for p < len(s) && s[p] != ' ' {
				p++
			}
			val = s[vs:p]
		}
		if val == "" {
			return out, syntaxf("empty value for %s", key)
		}
		out = append(out, kv{key, val})
	}
}
