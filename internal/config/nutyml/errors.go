package nutyml

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinels that every ConfigError wraps one of, for errors.Is.
var (
	// ErrSyntax: the file is not YAML, or uses YAML that twemproxy rejects (flow style,
	// anchors, aliases, tags, several documents).
	ErrSyntax = errors.New("nutyml: syntax error")
	// ErrStructure: a value has the wrong shape (a mapping where a scalar belongs...).
	ErrStructure = errors.New("nutyml: wrong structure")
	// ErrUnknownKey: a key that neither twemproxy nor kvproxy knows.
	ErrUnknownKey = errors.New("nutyml: unknown key")
	// ErrDuplicate: a key given twice, or two pools or servers with the same name or
	// listen address.
	ErrDuplicate = errors.New("nutyml: duplicate")
	// ErrInvalidValue: a value that is malformed or out of range.
	ErrInvalidValue = errors.New("nutyml: invalid value")
	// ErrMissing: a required key or value is missing.
	ErrMissing = errors.New("nutyml: missing")
)

// ConfigError is one problem in a configuration file.
type ConfigError struct {
	// Line is the 1-based line of the problem, 0 if it has none (a Config built in code).
	Line int
	// Pool is the pool's name, "" for the file as a whole.
	Pool string
	// Key is the pool key (or top-level key) concerned, "" if none.
	Key string
	// Msg says what is wrong.
	Msg string
	// Err is the sentinel classifying the problem (ErrSyntax, ErrUnknownKey, ...).
	Err error
}

// Error returns "line N: pool "p": key: msg", leaving out the parts that are unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Pool != "" {
		fmt.Fprintf(&b, "pool %q: ", e.Pool)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel.
func (e *ConfigError) Unwrap() error { return e.Err }

// Errors is every problem found in a file, in line order. Load, Parse and Validate
// return it (never empty) as their error; use errors.As to get it.
type Errors []*ConfigError

// Error returns the problems one per line.
func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the problems, so errors.Is and errors.As look at each.
func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, err := range e {
		errs[i] = err
	}
	return errs
}

// problems collects ConfigErrors.
type problems struct {
	list Errors
}

func (p *problems) add(line int, pool, key string, sentinel error, format string, args ...any) {
	p.list = append(p.list, &ConfigError{
		Line: line, Pool: pool, Key: key, Err: sentinel, Msg: fmt.Sprintf(format, args...),
	})
}

// err returns the problems sorted by line (stable), or nil if there are none.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *ConfigError) int { return a.Line - b.Line })
	return p.list
}
