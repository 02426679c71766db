package pgini

import (
	"bytes"
	"strings"
)

// lineKind is what one line of an ini file holds.
type lineKind int

const (
	lineBlank   lineKind = iota // empty or comment
	lineSection                 // [name]
	lineKeyVal                  // key = value
	lineInclude                 // %include file
)

// iniLine is one parsed line. For lineSection, key is the section name; for
// lineInclude, val is the file name.
type iniLine struct {
	kind lineKind
	num  int
	key  string
	val  string
}

// lexLine parses one line (without its newline) of an ini file, following
// PgBouncer's reader. It returns an error wrapping ErrSyntax for a line it
// cannot read.
func lexLine(num int, raw string) (iniLine, error) {
	l := iniLine{num: num}
	s := strings.TrimLeft(raw, " \t\n\v\f\r")
	if strings.IndexByte(s, 0) >= 0 {
		return l, syntaxf("NUL byte in line")
	}
	switch {
	case s == "":
		return l, nil
	case strings.HasPrefix(s, "%include") && len(s) > 8 && (s[8] == ' ' || s[8] == '\t'):
		l.kind = lineInclude
		l.val = trimSpace(s[8:])
		if l.val == "" {
			return l, syntaxf("%%include needs a file name")
		}
		return l, nil
	case s[0] == '#' || s[0] == ';':
		return l, nil
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return l, syntaxf("section header without ']'")
		}
		if rest := trimSpace(s[end+1:]); rest != "" && rest[0] != ';' && rest[0] != '#' {
			return l, syntaxf("text after section header")
		}
		l.kind = lineSection
		l.key = trimSpace(s[1:end])
		return l, nil
	}
	return lexKeyValue(l, s)
}

// lexKeyValue reads `key = value`, where key is [A-Za-z0-9_.*-]+ or any
// text in single quotes.
func lexKeyValue(l iniLine, s string) (iniLine, error) {
	var rest string
	if s[0] == '\'' {
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return l, syntaxf("quoted name without closing quote")
		}
		if end == 0 {
			return l, syntaxf("empty quoted name")
		}
		l.key, rest = s[1:1+end], s[2+end:]
	} else {
		n := 0
		for n < len(s) && isKeyChar(s[n]) {
			n++
		}
		if n == 0 {
			return l, syntaxf("expected a name, '[section]', %%include or a comment")
		}
		l.key, rest = s[:n], s[n:]
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || rest[0] != '=' {
		return l, syntaxf("expected '=' after %q", l.key)
	}
	l.kind = lineKeyVal
	l.val = trimSpace(rest[1:])
	return l, nil
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '*'
}

// splitLines splits src at '\n'; a final line without a newline counts.
func splitLines(src []byte) []string {
	if len(src) == 0 {
		return nil
	}
	src = bytes.TrimSuffix(src, []byte{'\n'})
	return strings.Split(string(src), "\n")
}
