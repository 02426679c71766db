package pgini

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors classify a Problem; test with errors.Is on the Problem, on
// Problems, or on an error returned by Load.
var (
	// ErrSyntax marks a line that is not a comment, a section header, an
	// %include or a "key = value" pair, or a malformed connection string.
	ErrSyntax = errors.New("pgini: syntax error")
	// ErrInvalidValue marks a value that cannot be parsed or is out of range:
	// a non-numeric number, an unknown enumeration value, an unknown
	// parameter in a [databases] or [users] line.
	ErrInvalidValue = errors.New("pgini: invalid value")
	// ErrUnknownSection marks a section header PgBouncer does not know.
	ErrUnknownSection = errors.New("pgini: unknown section")
	// ErrMissingSection marks a file without the [pgbouncer] section.
	ErrMissingSection = errors.New("pgini: missing [pgbouncer] section")
	// ErrNoSection marks a "key = value" line before any section header.
	ErrNoSection = errors.New("pgini: setting outside any section")
	// ErrReservedName marks a [databases] entry named "pgbouncer", the name
	// of the admin console.
	ErrReservedName = errors.New("pgini: reserved database name")
	// ErrInclude marks an %include that could not be read or nests too deep;
	// the Problem's error also wraps the underlying error, if any, so
	// errors.Is(err, fs.ErrNotExist) works.
	ErrInclude = errors.New("pgini: include failed")
	// ErrRead marks a main file that could not be read.
	ErrRead = errors.New("pgini: cannot read file")
	// ErrUnsupported marks a value PgBouncer accepts but pgpool cannot honour
	// safely, such as auth_type = pam.
	ErrUnsupported = errors.New("pgini: not supported by pgpool")
	// ErrInconsistent marks settings that are valid one by one but not
	// together, such as client_tls_sslmode = require without a key file.
	ErrInconsistent = errors.New("pgini: inconsistent settings")
)

// Pos is a place in a configuration file. The zero Pos means the value did
// not come from a file (a default, or set in code).
type Pos struct {
	File string // path as given to Load or named in %include
	Line int    // 1-based; 0 when the place is the file as a whole
}

// String returns "file:line", "file", or "" for the zero Pos.
func (p Pos) String() string {
	switch {
	case p.File == "" && p.Line == 0:
		return ""
	case p.Line == 0:
		return p.File
	default:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
}

// Problem is one error in a configuration file, with its place.
type Problem struct {
	File  string // file the problem is in; "" for a Config built in code
	Line  int    // 1-based line; 0 when the problem concerns the whole file
	Key   string // setting, database or user name; "" for a syntax error
	Value string // offending value as written, if any
	Msg   string // what is wrong, for people
	Err   error  // the class of problem (ErrSyntax, ErrInvalidValue, ...), possibly wrapping a cause
}

// Error formats the problem as "file:line: key = "value": msg".
func (p *Problem) Error() string {
	var b strings.Builder
	if s := (Pos{p.File, p.Line}).String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		if p.Value != "" {
			fmt.Fprintf(&b, " = %q", p.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Unwrap returns the class of the problem.
func (p *Problem) Unwrap() error { return p.Err }

// Problems is every problem found in a configuration, in file order. A
// non-empty Problems is the error returned by Load, Parse, Validate and
// ParseUserlist.
type Problems []*Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// err returns ps as an error, or nil if it is empty.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// WarningKind classifies a Warning.
type WarningKind int

const (
	// WarnUnknownSetting: a [pgbouncer] key no PgBouncer version has; it is
	// ignored. PgBouncer itself refuses to start on such a key.
	WarnUnknownSetting WarningKind = iota + 1
	// WarnUnsupported: a PgBouncer setting or section pgpool does not
	// implement; it is ignored.
	WarnUnsupported
	// WarnSectionReset: a repeated [pgbouncer] header reset every
	// [pgbouncer] setting to its default, as PgBouncer does.
	WarnSectionReset
)

// String names the kind.
func (k WarningKind) String() string {
	switch k {
	case WarnUnknownSetting:
		return "unknown setting"
	case WarnUnsupported:
		return "unsupported"
	case WarnSectionReset:
		return "section reset"
	}
	return "WarningKind(" + strconv.Itoa(int(k)) + ")"
}

// Warning is something in a configuration file that does not stop pgpool
// but that the operator should know about.
type Warning struct {
	File string      // file the warning is about
	Line int         // 1-based line
	Key  string      // setting or section concerned
	Kind WarningKind // what kind of warning
	Msg  string      // for people
}

// String formats the warning as "file:line: key: msg".
func (w Warning) String() string {
	s := (Pos{w.File, w.Line}).String()
	if s != "" {
		s += ": "
	}
	if w.Key != "" {
		s += w.Key + ": "
	}
	return s + w.Msg
}

// detailError is a problem of a given class with a message for people.
type detailError struct {
	class error
	msg   string
}

func (e *detailError) Error() string { return e.class.Error() + ": " + e.msg }
func (e *detailError) Unwrap() error { return e.class }

func detailf(class error, format string, a ...any) error {
	return &detailError{class: class, msg: fmt.Sprintf(format, a...)}
}

func invalidf(format string, a ...any) error { return detailf(ErrInvalidValue, format, a...) }
func syntaxf(format string, a ...any) error  { return detailf(ErrSyntax, format, a...) }

// message returns the part of err meant for a Problem's Msg: the detail
// without the class's text, which the Problem carries in Err.
func message(err error) string {
	var de *detailError
	if errors.As(err, &de) {
		return de.msg
	}
	return err.Error()
}
