package pglog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var fixed = time.Date(2026, 12, 1, 7, 30, 11, 764_000_000, time.UTC)

func newTest(opts Options) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	opts.PID = 4242
	opts.Location = time.UTC
	opts.Now = func() time.Time { return fixed }
	return slog.New(&zeroTime{New(&buf, &opts)}), &buf
}

// zeroTime clears the record's time so that Options.Now decides it.
type zeroTime struct{ *Handler }

func (z *zeroTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return z.Handler.Handle(ctx, r)
}

func (z *zeroTime) WithAttrs(as []slog.Attr) slog.Handler {
	return &zeroTime{z.Handler.WithAttrs(as).(*Handler)}
}

func (z *zeroTime) WithGroup(name string) slog.Handler {
	return &zeroTime{z.Handler.WithGroup(name).(*Handler)}
}

func TestTextLine(t *testing.T) {
	log, buf := newTest(Options{Level: slog.LevelDebug})
	log.Info("login attempt: db=app user=bob tls=no", Client(0x2a, "app", "bob", "127.0.0.1:51234"))
	log.Warn("taking connection from reserve_pool", Client(0x2a, "app", "bob", "127.0.0.1:51234"))
	log.Info("new connection to server (from 127.0.0.1:40000)", Server(0x2b, "app", "bob", "127.0.0.1:5432"))
	log.Error("boom")
	log.Log(nil, LevelFatal, "cannot load config file")
	log.Debug("detail", "n", 3, "s", "two words", "err", errors.New("x=y"))
	log.Info("stats: 0 xacts/s")
	want := strings.Join([]string{
		"2026-12-01 07:30:11.764 UTC [4242] LOG C-0x2a: app/bob@127.0.0.1:51234 login attempt: db=app user=bob tls=no",
		"2026-12-01 07:30:11.764 UTC [4242] WARNING C-0x2a: app/bob@127.0.0.1:51234 taking connection from reserve_pool",
		"2026-12-01 07:30:11.764 UTC [4242] LOG S-0x2b: app/bob@127.0.0.1:5432 new connection to server (from 127.0.0.1:40000)",
		"2026-12-01 07:30:11.764 UTC [4242] ERROR boom",
		"2026-12-01 07:30:11.764 UTC [4242] FATAL cannot load config file",
		`2026-12-01 07:30:11.764 UTC [4242] DEBUG detail n=3 s="two words" err="x=y"`,
		"2026-12-01 07:30:11.764 UTC [4242] LOG stats: 0 xacts/s",
	}, "\n") + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLevelFiltersAndNames(t *testing.T) {
	log, buf := newTest(Options{})
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("debug written at info level: %q", buf.String())
	}
	for l, want := range map[slog.Level]string{LevelNoise: "NOISE", slog.LevelDebug: "DEBUG", slog.LevelInfo: "LOG",
		slog.LevelWarn: "WARNING", slog.LevelError: "ERROR", LevelFatal: "FATAL", LevelFatal + 4: "FATAL"} {
		if got := LevelName(l); got != want {
			t.Errorf("LevelName(%v) = %q, want %q", l, got, want)
		}
	}
}

func TestMissingNamesAndWithAttrs(t *testing.T) {
	log, buf := newTest(Options{})
	log.With(Client(0x10, "", "", "")).With("k", "v").Info("closing because: client unexpected eof (age=0s)")
	want := "2026-12-01 07:30:11.764 UTC [4242] LOG C-0x10: (nodb)/(nouser)@unix closing because: client unexpected eof (age=0s) k=v\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	buf.Reset()
	log.WithGroup("g").Info("m", "a", 1, slog.Group("h", "b", 2))
	if got, want := buf.String(), "2026-12-01 07:30:11.764 UTC [4242] LOG m g.a=1 g.h.b=2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewlinesAndTrailingSpace(t *testing.T) {
	log, buf := newTest(Options{})
	log.Info("first\nsecond  \n")
	want := "2026-12-01 07:30:11.764 UTC [4242] LOG first\n\tsecond\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLocalZoneAbbreviation(t *testing.T) {
	var buf bytes.Buffer
	loc := time.FixedZone("CET", 3600)
	h := New(&buf, &Options{PID: 1, Location: loc})
	r := slog.NewRecord(fixed, slog.LevelInfo, "m", 0)
	if err := h.Handle(nil, r); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "2026-12-01 08:30:11.764 CET [1] LOG m\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, &Options{Format: FormatJSON, PID: 7}))
	log.Warn("pooler error: no such database: x", Client(0x2a, "x", "bob", "127.0.0.1:1"))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	conn, _ := m["conn"].(map[string]any)
	if m["level"] != "WARNING" || m["msg"] != "pooler error: no such database: x" || m["pid"] != float64(7) ||
		conn["id"] != "C-0x2a" || conn["db"] != "x" || conn["user"] != "bob" || conn["addr"] != "127.0.0.1:1" {
		t.Errorf("unexpected JSON record %v", m)
	}
}

type fakeSyslog struct{ got []string }

func (f *fakeSyslog) Crit(m string) error    { f.got = append(f.got, "crit "+m); return nil }
func (f *fakeSyslog) Err(m string) error     { f.got = append(f.got, "err "+m); return nil }
func (f *fakeSyslog) Warning(m string) error { f.got = append(f.got, "warning "+m); return nil }
func (f *fakeSyslog) Info(m string) error    { f.got = append(f.got, "info "+m); return nil }

func TestSyslog(t *testing.T) {
	sl := &fakeSyslog{}
	log := slog.New(New(nil, &Options{Syslog: sl, Level: slog.LevelDebug}))
	log.Debug("not to syslog")
	log.Info("closing because: client close request (age=1s)", Server(3, "d", "u", "10.0.0.1:5432"))
	log.Warn("w")
	log.Error("e")
	log.Log(nil, LevelFatal, "f")
	want := []string{"info S-0x3: d/u@10.0.0.1:5432 closing because: client close request (age=1s)", "warning w", "err e", "crit f"}
	if strings.Join(sl.got, "|") != strings.Join(want, "|") {
		t.Errorf("syslog got %q, want %q", sl.got, want)
	}
}

func TestParseFormatAndFacility(t *testing.T) {
	if f, err := ParseFormat("JSON"); err != nil || f != FormatJSON {
		t.Errorf("ParseFormat(JSON) = %v, %v", f, err)
	}
	if f, err := ParseFormat("text"); err != nil || f != FormatText {
		t.Errorf("ParseFormat(text) = %v, %v", f, err)
	}
	if _, err := ParseFormat("xml"); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseFormat(xml) err = %v", err)
	}
	for _, name := range []string{"auth", "authpriv", "daemon", "user", "local0", "local7"} {
		if _, err := ParseFacility(name); err != nil {
			t.Errorf("ParseFacility(%q): %v", name, err)
		}
	}
	if _, err := ParseFacility("kern"); !errors.Is(err, ErrFacility) {
		t.Errorf("ParseFacility(kern) err = %v", err)
	}
}
