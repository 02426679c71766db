// Package pglog is a log/slog handler that writes PgBouncer's log lines:
//
//	2026-12-01 07:30:11.764 UTC [4242] LOG C-0x2a: db/user@127.0.0.1:51234 login attempt: db=db user=user tls=no
//
// The time is local with the zone's abbreviation, then the process id in brackets,
// the level word PgBouncer uses (FATAL, ERROR, WARNING, LOG, DEBUG, NOISE), the
// connection prefix when the record carries a connection's identity (a Conn under
// ConnKey, see Client and Server), and the message. Other attributes follow the
// message as key=value pairs, so that PgBouncer's phrases stay at the start.
//
// A record's connection identity is an ordinary attribute, so code that logs passes
// it cheaply (one value, formatted only when the record is written):
//
//	log.Info("login attempt: db=x user=y tls=no", pglog.Client(ptr, "x", "y", "127.0.0.1:5000"))
//
// FormatJSON writes one JSON object a line instead (slog's JSON handler, with
// PgBouncer's level words and the connection as conn, db, user and addr fields).
// A syslog writer, when given, receives the prefix and message of records at LOG
// level and above, with PgBouncer's priorities.
package pglog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Levels beyond slog's own: FATAL is above ERROR, NOISE below DEBUG (verbose=2).
const (
	LevelFatal = slog.Level(12)
	LevelNoise = slog.Level(-8)
)

// LevelName returns PgBouncer's word for a level: LOG for info, WARNING for warn.
func LevelName(l slog.Level) string {
	switch {
	case l >= LevelFatal:
		return "FATAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "LOG"
	case l >= slog.LevelDebug:
		return "DEBUG"
	}
	return "NOISE"
}

// ConnKey is the attribute key under which a record carries its connection (a Conn).
const ConnKey = "conn"

// Conn is the identity of a client or server connection, as PgBouncer's log prefix
// shows it: "C-0x2a: db/user@127.0.0.1:51234".
type Conn struct {
	// Kind is 'C' for a client connection, 'S' for a server connection.
	Kind byte
	// Ptr identifies the connection (what SHOW CLIENTS and SHOW SERVERS call ptr).
	Ptr uint64
	// DB and User are the database and user names; empty ones show as (nodb) and
	// (nouser).
	DB, User string
	// Addr is the remote end, "host:port" (an IPv6 host in brackets), or "unix".
	Addr string
}

// Client returns the attribute of a client connection's identity.
func Client(ptr uint64, db, user, addr string) slog.Attr {
	return slog.Any(ConnKey, Conn{Kind: 'C', Ptr: ptr, DB: db, User: user, Addr: addr})
}

// Server returns the attribute of a server connection's identity.
func Server(ptr uint64, db, user, addr string) slog.Attr {
	return slog.Any(ConnKey, Conn{Kind: 'S', Ptr: ptr, DB: db, User: user, Addr: addr})
}

// Prefix returns the connection's log prefix without the trailing space.
func (c Conn) Prefix() string {
	var b []byte
	return string(c.appendPrefix(b))
}

// ID returns "C-0x2a" or "S-0x2b".
func (c Conn) ID() string {
	kind := c.Kind
	if kind == 0 {
		kind = 'C'
	}
	return string(kind) + "-0x" + strconv.FormatUint(c.Ptr, 16)
}

func (c Conn) appendPrefix(b []byte) []byte {
	b = append(b, c.ID()...)
	b = append(b, ": "...)
	b = append(b, orDefault(c.DB, "(nodb)")...)
	b = append(b, '/')
	b = append(b, orDefault(c.User, "(nouser)")...)
	b = append(b, '@')
	b = append(b, orDefault(c.Addr, "unix")...)
	return b
}

// LogValue makes a Conn a group (conn, db, user, addr) for handlers other than
// this package's text format.
func (c Conn) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID()), slog.String("db", c.DB),
		slog.String("user", c.User), slog.String("addr", c.Addr))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Format is the line format: FormatText (PgBouncer's) or FormatJSON.
type Format int

// The formats. The names are the values of pgpool's log_format setting.
const (
	FormatText Format = iota
	FormatJSON
)

// ParseFormat parses "text" or "json".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "", "text":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("%w: %q (text or json)", ErrFormat, s)
}

// SyslogWriter is what the handler sends syslog messages to; *log/syslog.Writer is one.
type SyslogWriter interface {
	Crit(m string) error
	Err(m string) error
	Warning(m string) error
	Info(m string) error
}

// Options configure a Handler. The zero value writes text at info level and above.
type Options struct {
	// Level is the minimum level written; nil: info.
	Level slog.Leveler
	// Format is the line format of Out.
	Format Format
	// Syslog, if set, also receives records at LOG (info) level and above.
	Syslog SyslogWriter
	// PID is the process id shown; 0: os.Getpid().
	PID int
	// Now returns the time of a record whose Time is zero; nil: time.Now.
	Now func() time.Time
	// Location is the time zone of the text format; nil: time.Local.
	Location *time.Location
}

// Handler is the slog.Handler. It is safe for concurrent use; each record is one
// Write to the output.
type Handler struct {
	opts  Options
	out   io.Writer
	mu    *sync.Mutex
	json  slog.Handler // FormatJSON only
	conn  *Conn        // set by WithAttrs
	attrs []byte       // preformatted key=value pairs from WithAttrs (text)
	group string       // prefix of keys from WithGroup, "a.b." (text)
}

// New returns a Handler writing to out (nil: no output but syslog).
func New(out io.Writer, opts *Options) *Handler {
	h := &Handler{out: out, mu: new(sync.Mutex)}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.PID == 0 {
		h.opts.PID = os.Getpid()
	}
	if h.opts.Level == nil {
		h.opts.Level = slog.LevelInfo
	}
	if h.opts.Format == FormatJSON && out != nil {
		pid := h.opts.PID
		h.json = slog.NewJSONHandler(&lockedWriter{mu: h.mu, w: out}, &slog.HandlerOptions{
			Level: h.opts.Level,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.LevelKey {
					if l, ok := a.Value.Any().(slog.Level); ok {
						return slog.String(slog.LevelKey, LevelName(l))
					}
				}
				return a
			},
		}).WithAttrs([]slog.Attr{slog.Int("pid", pid)})
	}
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Enabled reports whether records at level l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

// WithAttrs returns a handler whose records carry attrs (a Conn among them becomes
// the connection prefix).
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	n := *h
	n.attrs = append([]byte(nil), h.attrs...)
	for _, a := range attrs {
		if c, ok := connOf(a); ok && h.group == "" {
			n.conn = &c
			continue
		}
		n.attrs = appendAttr(n.attrs, h.group, a)
	}
	if h.json != nil {
		n.json = h.json.WithAttrs(attrs)
	}
	return &n
}

// WithGroup returns a handler that qualifies later attributes with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.group = h.group + name + "."
	if h.json != nil {
		n.json = h.json.WithGroup(name)
	}
	return &n
}

func connOf(a slog.Attr) (Conn, bool) {
	if a.Key != ConnKey || (a.Value.Kind() != slog.KindAny && a.Value.Kind() != slog.KindLogValuer) {
		return Conn{}, false
	}
	switch c := a.Value.Any().(type) {
	case Conn:
		return c, true
	case *Conn:
		if c != nil {
			return *c, true
		}
	}
	return Conn{}, false
}

// Handle writes the record.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	conn := h.conn
	var extra []byte
	r.Attrs(func(a slog.Attr) bool {
		if c, ok := connOf(a); ok && h.group == "" {
			conn = &c
			return true
		}
		extra = appendAttr(extra, h.group, a)
		return true
	})
	var msg []byte
	if conn != nil {
		msg = conn.appendPrefix(msg)
		msg = append(msg, ' ')
	}
	msg = append(msg, r.Message...)
	msg = append(msg, h.attrs...)
	msg = append(msg, extra...)
	text := cleanMessage(msg)

	var err error
	if h.opts.Syslog != nil && r.Level >= slog.LevelInfo {
		err = h.syslog(r.Level, string(text))
	}
	switch {
	case h.out == nil:
	case h.json != nil:
		if e := h.json.Handle(ctx, r); e != nil && err == nil {
			err = e
		}
	default:
		t := r.Time
		if t.IsZero() {
			if h.opts.Now != nil {
				t = h.opts.Now()
			} else {
				t = time.Now()
			}
		}
		loc := h.opts.Location
		if loc == nil {
			loc = time.Local
		}
		line := make([]byte, 0, len(text)+64)
		line = t.In(loc).AppendFormat(line, "2006-01-02 15:04:05.000 MST")
		line = append(line, " ["...)
		line = strconv.AppendInt(line, int64(h.opts.PID), 10)
		line = append(line, "] "...)
		line = append(line, LevelName(r.Level)...)
		line = append(line, ' ')
		line = append(line, text...)
		line = append(line, '\n')
		h.mu.Lock()
		_, e := h.out.Write(line)
		h.mu.Unlock()
		if e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (h *Handler) syslog(l slog.Level, m string) error {
	w := h.opts.Syslog
	switch {
	case l >= LevelFatal:
		return w.Crit(m)
	case l >= slog.LevelError:
		return w.Err(m)
	case l >= slog.LevelWarn:
		return w.Warning(m)
	}
	return w.Info(m)
}

// cleanMessage cuts trailing white space and turns each embedded newline into a
// newline and a tab, as PgBouncer does, so every line of a record but the first
// starts with a tab.
func cleanMessage(b []byte) []byte {
	b = bytes.TrimRightFunc(b, unicode.IsSpace)
	if bytes.IndexByte(b, '\n') < 0 {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\n\t"))
}

// appendAttr appends " key=value", quoting a value that needs it; groups flatten to
// dotted keys.
func appendAttr(b []byte, group string, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if v.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range v.Group() {
			b = appendAttr(b, g, ga)
		}
		return b
	}
	b = append(b, ' ')
	b = append(b, group...)
	b = append(b, a.Key...)
	b = append(b, '=')
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindTime:
		s = v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = v.String()
		}
	default:
		s = v.String()
	}
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r >= unicode.MaxASCII {
			return true
		}
	}
	return false
}
