package pgini

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxIncludeDepth is how deep %include may nest, as in PgBouncer.
const maxIncludeDepth = 10

// Load reads the pgbouncer.ini at path and the files it includes, fills in
// defaults and validates the result. The error, if not nil, is a Problems
// listing every problem found, each with its file and line; the Config is
// then nil. Warnings are returned either way.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Problems{{File: path, Msg: err.Error(), Err: fmt.Errorf("%w: %w", ErrRead, err)}}
	}
	return parse(path, data, os.ReadFile)
}

// Parse is Load for a file already in memory: name is the file's path,
// used in messages and to resolve relative %include paths, which are read
// from the file system.
func Parse(name string, src []byte) (*Config, []Warning, error) {
	return parse(name, src, os.ReadFile)
}

// loader holds the state of one Load: as in PgBouncer, the current section
// carries across %include boundaries.
type loader struct {
	cfg      *Config
	problems Problems
	warnings []Warning
	readFile func(string) ([]byte, error)

	section     string   // canonical name of the current section, "" before the first
	skipSection bool     // inside an unknown or ignored section
	sawMain     bool     // a [pgbouncer] header was seen
	files       []string // files read, in the order they were opened
}

func parse(name string, src []byte, readFile func(string) ([]byte, error)) (*Config, []Warning, error) {
	l := &loader{cfg: Default(), readFile: readFile}
	l.cfg.File = name
	l.file(name, src, 0)
	if !l.sawMain {
		l.problem(Pos{File: name}, "", "", ErrMissingSection, "the file has no [pgbouncer] section")
	}
	if err := l.cfg.Validate(); err != nil {
		var ps Problems
		if errors.As(err, &ps) {
			l.problems = append(l.problems, ps...)
		}
	}
	if len(l.problems) > 0 {
		l.sortProblems()
		return nil, l.warnings, l.problems
	}
	return l.cfg, l.warnings, nil
}

func (l *loader) problem(pos Pos, key, value string, err error, msg string) {
	l.problems = append(l.problems, &Problem{File: pos.File, Line: pos.Line, Key: key, Value: value, Msg: msg, Err: err})
}

func (l *loader) warn(pos Pos, key string, kind WarningKind, msg string) {
	l.warnings = append(l.warnings, Warning{File: pos.File, Line: pos.Line, Key: key, Kind: kind, Msg: msg})
}

// sortProblems orders problems by file (in the order files were read)
// and line, so that Validate's findings fall in among the parser's.
func (l *loader) sortProblems() {
	rank := map[string]int{}
	for i, f := range l.files {
		if _, ok := rank[f]; !ok {
			rank[f] = i
		}
	}
	sort.SliceStable(l.problems, func(i, j int) bool {
		a, b := l.problems[i], l.problems[j]
		if ra, rb := rank[a.File], rank[b.File]; ra != rb {
			return ra < rb
		}
		return a.Line < b.Line
	})
}

// file processes the lines of one file.
func (l *loader) file(name string, src []byte, depth int) {
	l.files = append(l.files, name)
	for i, raw := range splitLines(src) {
		pos := Pos{File: name, Line: i + 1}
		ln, err := lexLine(pos.Line, raw)
		if err != nil {
			l.problem(pos, "", "", err, message(err))
			continue
		}
		switch ln.kind {
		case lineInclude:
			l.include(pos, ln.val, depth)
		case lineSection:
			l.startSection(pos, ln.key)
		case lineKeyVal:
			l.keyValue(pos, ln.key, ln.val)
		}
	}
}

func (l *loader) include(pos Pos, target string, depth int) {
	if depth+1 >= maxIncludeDepth {
		l.problem(pos, "%include", target, ErrInclude, fmt.Sprintf("includes nest deeper than %d levels", maxIncludeDepth))
		return
	}
	path := target
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(pos.File), path)
	}
	data, err := l.readFile(path)
	if err != nil {
		l.problem(pos, "%include", target, fmt.Errorf("%w: %w", ErrInclude, err), err.Error())
		return
	}
	l.file(path, data, depth+1)
}

func (l *loader) startSection(pos Pos, name string) {
	canon := strings.ToLower(name)
	l.section, l.skipSection = canon, false
	switch canon {
	case "pgbouncer":
		if l.sawMain {
			l.cfg.resetSettings()
			l.warn(pos, "[pgbouncer]", WarnSectionReset,
				"repeated [pgbouncer] section: every setting is reset to its default, as PgBouncer does")
		}
		l.sawMain = true
	case "databases", "users":
	case "peers":
		l.skipSection = true
		l.warn(pos, "[peers]", WarnUnsupported, "not supported by pgpool, ignored")
	default:
		l.skipSection = true
		l.problem(pos, "["+name+"]", "", ErrUnknownSection,
			"unknown section (PgBouncer knows [pgbouncer], [databases], [users] and [peers])")
	}
}

func (l *loader) keyValue(pos Pos, key, val string) {
	if l.skipSection {
		return
	}
	switch l.section {
	case "":
		l.problem(pos, key, val, ErrNoSection, "setting before any [section] header")
	case "pgbouncer":
		l.setting(pos, key, val)
	case "databases":
		db, err := parseDatabase(key, val, pos)
		if err != nil {
			l.entryProblem(pos, key, val, err)
			return
		}
		if key == "*" {
			l.cfg.Fallback = db
		} else {
			l.cfg.Databases[key] = db
		}
	case "users":
		u, err := parseUser(key, val, pos)
		if err != nil {
			l.entryProblem(pos, key, val, err)
			return
		}
		l.cfg.Users[key] = u
	}
}

func (l *loader) entryProblem(pos Pos, key, val string, err error) {
	var ee *entryError
	if errors.As(err, &ee) {
		l.problem(pos, key, val, ee.err, fmt.Sprintf("parameter %s=%s: %s", ee.param, ee.value, message(ee.err)))
		return
	}
	l.problem(pos, key, val, err, message(err))
}

func (l *loader) setting(pos Pos, key, val string) {
	s := lookupSetting(key)
	if s != nil {
		if l.cfg.text == nil {
			l.cfg.text = map[string]string{}
		}
		l.cfg.text[s.name] = val
	}
	switch {
	case s == nil:
		l.warn(pos, key, WarnUnknownSetting, "unknown setting, ignored")
	case s.set != nil:
		if err := s.set(l.cfg, val); err != nil {
			l.problem(pos, key, val, err, message(err))
			return
		}
		if l.cfg.pos == nil {
			l.cfg.pos = map[string]Pos{}
		}
		l.cfg.pos[s.name] = pos
	default:
		if err := s.check(val); err != nil {
			l.problem(pos, key, val, err, message(err))
			return
		}
		if l.cfg.Ignored == nil {
			l.cfg.Ignored = map[string]string{}
		}
		l.cfg.Ignored[s.name] = val
		l.warn(pos, key, WarnUnsupported, "not supported by pgpool, ignored")
	}
}
