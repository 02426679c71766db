package admin

import (
	"errors"
	"strings"
)

// Command is one parsed console statement: either "VERB [arg]" or
// "SET key = value".
type Command struct {
	Verb string // lower case: "show", "pause", ...; "set" for SET
	Arg  string // the optional argument, or SET's key; unquoted, case kept
	Val  string // SET's value, unquoted
}

// Limits on the parts of an admin statement, as PgBouncer has them.
const (
	maxAdminVerb  = 15
	maxAdminArg   = 63
	maxAdminValue = 255
)

var (
	// ErrSyntax: the statement is not one of the console's forms.
	ErrSyntax = errors.New("pgpool: admin console syntax error")
	// ErrArgs: a part of the statement is too long or empty.
	ErrArgs = errors.New("pgpool: admin console bad arguments")
)

// adminToken is one token of an admin statement.
type adminToken struct {
	kind byte   // 'w' word, '"' quoted identifier, '\'' string literal, '=' or ';'
	text string // unquoted text for 'w', '"' and '\''
}

// Parse parses the console's grammar: a verb and at most one argument,
// or SET key (= | TO) value, with an optional trailing semicolon; words are letters,
// digits and underscores, identifiers may be double-quoted and SET values
// single-quoted. Verbs are case-insensitive.
func Parse(q string) (Command, error) {
	toks, err := tokenizeAdmin(q)
	if err != nil {
		return Command{}, err
	}
	if n := len(toks); n > 0 && toks[n-1].kind == ';' {
		toks = toks[:n-1]
	}
	for _, t := range toks {
		if t.kind == ';' {
			return Command{}, ErrSyntax // one statement per query
		}
	}
	if len(toks) == 0 || toks[0].kind != 'w' {
		return Command{}, ErrSyntax
	}
	verb := strings.ToLower(toks[0].text)
	if verb == "set" && len(toks) == 4 {
		return parseAdminSet(toks[1:])
	}
	if len(verb) > maxAdminVerb {
		return Command{}, ErrArgs
	}
	switch len(toks) {
	case 1:
		return Command{Verb: verb}, nil
	case 2:
		if a := toks[1]; a.kind == 'w' || a.kind == '"' {
			if len(a.text) > maxAdminArg {
				return Command{}, ErrArgs
			}
			return Command{Verb: verb, Arg: a.text}, nil
		}
	}
	return Command{}, ErrSyntax
}

// parseAdminSet parses the tokens after SET: key, "=" or TO, value.
func parseAdminSet(toks []adminToken) (Command, error) {
	key, op, val := toks[0], toks[1], toks[2]
	if key.kind != 'w' && key.kind != '"' {
		return Command{}, ErrSyntax
	}
	if op.kind != '=' && !(op.kind == 'w' && strings.EqualFold(op.text, "to")) {
		return Command{}, ErrSyntax
	}
	if val.kind == '=' || val.kind == ';' {
		return Command{}, ErrSyntax
	}
	if key.text == "" || len(key.text) > maxAdminArg || len(val.text) > maxAdminValue {
		return Command{}, ErrArgs
	}
	return Command{Verb: "set", Arg: key.text, Val: val.text}, nil
}

func isAdminSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isAdminWordByte(b byte) bool {
	return b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

// tokenizeAdmin splits an admin statement into tokens.
func tokenizeAdmin(q string) ([]adminToken, error) {
	var toks []adminToken
	for i := 0; i < len(q); {
		b := q[i]
		switch {
		case isAdminSpace(b):
			i++
		case b == '=' || b == ';':
			toks = append(toks, adminToken{kind: b})
			i++
		case b == '"' || b == '\'':
			text, n, ok := unquoteAdmin(q[i:], b)
			if !ok {
				return nil, ErrSyntax
			}
			if b == '"' && text == "" {
				return nil, ErrSyntax
			}
			toks = append(toks, adminToken{kind: b, text: text})
			i += n
		case isAdminWordByte(b):
			j := i
			for j < len(q) && isAdminWordByte(q[j]) {
				j++
			}
			toks = append(toks, adminToken{kind: 'w', text: q[i:j]})
			i = j
		default:
			return nil, ErrSyntax
		}
		if len(toks) > 8 {
			return nil, ErrSyntax
		}
	}
	return toks, nil
}

// unquoteAdmin reads a token quoted with quote (doubled inside to stand for itself)
// at the start of s, and returns its text and length in s.
func unquoteAdmin(s string, quote byte) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != quote {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == quote {
			b.WriteByte(quote)
			i++
			continue
		}
		return b.String(), i + 1, true
	}
	return "", 0, false
}
