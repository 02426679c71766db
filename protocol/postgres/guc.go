package postgres

import "strings"

// set_config calls and the startup parameter "options".

// sqlToken is one lexical token of a statement, as far as set_config detection needs.
type sqlToken struct {
	kind byte   // 'i' identifier or keyword (lower case), 's' string literal, 'p' $n parameter, 'n' number, or the punctuation character itself; 0 at the end
	text string // the identifier, or the string literal's value
	bad  bool   // a string literal with escapes pgpool does not read
}

// sqlLexer splits SQL into tokens, skipping whitespace and comments.
type sqlLexer struct {
	s string
	i int
}

func (l *sqlLexer) next() sqlToken {
	s := l.s
	for l.i < len(s) {
		switch b := s[l.i]; {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f':
			l.i++
		case b == '-' && l.i+1 < len(s) && s[l.i+1] == '-':
			for l.i < len(s) && s[l.i] != '\n' {
				l.i++
			}
		case b == '/' && l.i+1 < len(s) && s[l.i+1] == '*':
			end := strings.Index(s[l.i+2:], "*/")
			if end < 0 {
				l.i = len(s)
			} else {
				l.i += 2 + end + 2
			}
		default:
			return l.token()
		}
	}
	return sqlToken{}
}

func (l *sqlLexer) token() sqlToken {
	s := l.s
	b := s[l.i]
	switch {
	case (b == 'e' || b == 'E') && l.i+1 < len(s) && s[l.i+1] == '\'':
		l.i++
		return l.str(true)
	case b == '\'':
		return l.str(false)
	case b == '$' && l.i+1 < len(s) && s[l.i+1] >= '0' && s[l.i+1] <= '9':
		l.i++
		for l.i < len(s) && s[l.i] >= '0' && s[l.i] <= '9' {
			l.i++
		}
		return sqlToken{kind: 'p'}
	case b >= '0' && b <= '9':
		for l.i < len(s) && (s[l.i] >= '0' && s[l.i] <= '9' || s[l.i] == '.') {
			l.i++
		}
		return sqlToken{kind: 'n'}
	case b == '_' || b|0x20 >= 'a' && b|0x20 <= 'z' || b >= 0x80:
		j := l.i
		for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] >= 0x80) {
			j++
		}
		t := sqlToken{kind: 'i', text: strings.ToLower(s[l.i:j])}
		l.i = j
		return t
	}
	l.i++
	return sqlToken{kind: b}
}

// str reads a string literal from its opening quote. With escapes (E'...') only \\ and
// \' are read; other escapes mark the token bad.
func (l *sqlLexer) str(escapes bool) sqlToken {
	s := l.s
	l.i++ // the quote
	var v strings.Builder
	t := sqlToken{kind: 's'}
	for l.i < len(s) {
		b := s[l.i]
		switch {
		case b == '\'' && l.i+1 < len(s) && s[l.i+1] == '\'':
			v.WriteByte('\'')
			l.i += 2
		case b == '\'':
			l.i++
			t.text = v.String()
			return t
		case b == '\\' && escapes:
			if l.i+1 < len(s) && (s[l.i+1] == '\\' || s[l.i+1] == '\'') {
				v.WriteByte(s[l.i+1])
			} else {
				t.bad = true
			}
			l.i += 2
		default:
			v.WriteByte(b)
			l.i++
		}
	}
	t.bad = true // unterminated
	return t
}

// boolLiteral reads a token as a boolean constant.
func boolLiteral(t sqlToken) (v, ok bool) {
	if t.kind != 'i' && (t.kind != 's' || t.bad) {
		return false, false
	}
	switch strings.ToLower(t.text) {
	case "true", "t", "on", "yes", "y", "1":
		return true, t.kind == 's' || t.text == "true"
	case "false", "f", "off", "no", "n", "0":
		return false, t.kind == 's' || t.text == "false"
	}
	return false, false
}

// ParseSetConfig reads a statement that calls set_config. The one form pgpool
// follows is a lone "SELECT set_config('name', 'value', false)" with literal
// arguments (optionally schema-qualified, aliased, with a trailing semicolon): op then
// sets name to value, confirmed by the SELECT's CommandComplete. A call with is_local
// true lasts for the transaction only and is no SET. Any other call (parameters,
// several calls, set_config inside a larger query) is a SET pgpool cannot follow.
func ParseSetConfig(sql string) (op SetOp, isSet, followable bool) {
	if name, value, local, ok := lonelySetConfig(sql); ok {
		if local {
			return SetOp{}, false, false
		}
		if _, reported := ReportedParam(name); reported {
			return SetOp{}, false, false // followed through ParameterStatus
		}
		if !PlainName(name) {
			return SetOp{}, true, false
		}
		return SetOp{Tag: "SELECT 1", Name: strings.ToLower(name), Value: value, Raw: true}, true, true
	}
	if AllLocalSetConfig(sql) {
		return SetOp{}, false, false
	}
	return SetOp{}, true, false
}

// lonelySetConfig matches SELECT [pg_catalog.]set_config('n', 'v', bool) [[AS] alias] [;...].
func lonelySetConfig(sql string) (name, value string, local, ok bool) {
	l := sqlLexer{s: sql}
	if t := l.next(); t.kind != 'i' || t.text != "select" {
		return "", "", false, false
	}
	t := l.next()
	if t.kind == 'i' && t.text == "pg_catalog" {
		if l.next().kind != '.' {
			return "", "", false, false
		}
		t = l.next()
	}
	if t.kind != 'i' || t.text != "set_config" || l.next().kind != '(' {
		return "", "", false, false
	}
	n := l.next()
	if n.kind != 's' || n.bad || l.next().kind != ',' {
		return "", "", false, false
	}
	v := l.next()
	if v.kind != 's' || v.bad || l.next().kind != ',' {
		return "", "", false, false
	}
	local, isBool := boolLiteral(l.next())
	if !isBool || l.next().kind != ')' {
		return "", "", false, false
	}
	t = l.next()
	if t.kind == 'i' && t.text == "as" {
		t = l.next()
	}
	if t.kind == 'i' {
		t = l.next()
	}
	for t.kind == ';' {
		t = l.next()
	}
	if t.kind != 0 {
		return "", "", false, false
	}
	return n.text, v.text, local, true
}

// AllLocalSetConfig reports whether every set_config call in sql visibly has is_local
// true (a literal), so none of them outlives the transaction.
func AllLocalSetConfig(sql string) bool {
	l := sqlLexer{s: sql}
	for t := l.next(); t.kind != 0; t = l.next() {
		if t.kind != 'i' || t.text != "set_config" {
			continue
		}
		if l.next().kind != '(' {
			return false
		}
		// Read the arguments up to the matching parenthesis; only the third's
		// tokens are kept.
		depth, arg := 0, 0
		var third []sqlToken
		for {
			a := l.next()
			if a.kind == 0 {
				return false
			}
			if a.kind == '(' {
				depth++
			} else if a.kind == ')' {
				if depth == 0 {
					break
				}
				depth--
			} else if a.kind == ',' && depth == 0 {
				arg++
				continue
			}
			if arg == 2 {
				third = append(third, a)
			}
		}
		if arg != 2 || len(third) != 1 {
			return false
		}
		if local, ok := boolLiteral(third[0]); !ok || !local {
			return false
		}
	}
	return true
}

// OptionsError is a malformed switch in the startup parameter "options".
type OptionsError struct{ msg string }

func (e *OptionsError) Error() string { return e.msg }

// SplitOptions splits the startup parameter "options" into words as PostgreSQL does:
// at unescaped whitespace, a backslash making the next character literal (libpq
// writes a space inside a value as "\ ").
func SplitOptions(s string) []string {
	var words []string
	var w strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case b == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			in = true
		case b == '\\':
			in = true // a trailing backslash escapes nothing
		default:
			w.WriteByte(b)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// MaxOptions bounds the settings one "options" parameter may carry.
const MaxOptions = 256

// ParseOptions reads the startup parameter "options": -c name=value, -cname=value and
// --name=value switches, dashes in names read as underscores, as PostgreSQL does. It
// returns the settings in order.
func ParseOptions(s string) ([][2]string, error) {
	words := SplitOptions(s)
	var out [][2]string
	for i := 0; i < len(words); i++ {
		w := words[i]
		var arg, flag string
		switch {
		case w == "-c":
			if i+1 >= len(words) {
				return nil, &OptionsError{"-c requires a value"}
			}
			i++
			arg, flag = words[i], "-c "
		case strings.HasPrefix(w, "--") && len(w) > 2:
			arg, flag = w[2:], "--"
		case strings.HasPrefix(w, "-c") && len(w) > 2:
			arg, flag = w[2:], "-c "
		default:
			return nil, &OptionsError{"invalid command-line argument for server process: " + w}
		}
		eq := strings.IndexByte(arg, '=')
		if eq < 0 {
			return nil, &OptionsError{flag + arg + " requires a value"}
		}
		if eq == 0 {
			return nil, &OptionsError{"invalid command-line argument for server process: " + w}
		}
		if len(out) == MaxOptions {
			return nil, &OptionsError{"too many settings in options"}
		}
		out = append(out, [2]string{strings.ReplaceAll(arg[:eq], "-", "_"), arg[eq+1:]})
	}
	return out, nil
}
