package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// fakeControl records what the console asks of it.
type fakeControl struct {
	paused    map[string]bool
	known     map[string]bool
	calls     []string
	waitErr   error
	setErr    error
	suspended bool
	reload    error
	snapshot  *Snapshot
}

func newFake() *fakeControl {
	return &fakeControl{paused: map[string]bool{}, known: map[string]bool{"app": true}, snapshot: testSnapshot()}
}

func (f *fakeControl) note(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}
func (f *fakeControl) Snapshot() *Snapshot            { f.note("snapshot"); return f.snapshot }
func (f *fakeControl) KnownDatabase(name string) bool { return f.known[name] }
func (f *fakeControl) Paused(db string) bool          { return f.paused[db] }
func (f *fakeControl) SetPaused(db string, p bool)    { f.paused[db] = p; f.note("paused %q %v", db, p) }
func (f *fakeControl) WaitReleased(db string) error   { f.note("wait released %q", db); return f.waitErr }
func (f *fakeControl) Kill(db string)                 { f.note("kill %q", db) }
func (f *fakeControl) Suspend() error                 { f.suspended = true; f.note("suspend"); return f.waitErr }
func (f *fakeControl) Suspended() bool                { return f.suspended }
func (f *fakeControl) Unsuspend() bool {
	if !f.suspended {
		return false
	}
	f.suspended = false
	f.note("unsuspend")
	return true
}
func (f *fakeControl) Reconnect(db string)           { f.note("reconnect %q", db) }
func (f *fakeControl) WaitClose(db string) error     { f.note("wait close %q", db); return f.waitErr }
func (f *fakeControl) SetDisabled(db string, d bool) { f.note("disabled %q %v", db, d) }
func (f *fakeControl) Reload() error                 { f.note("reload"); return f.reload }
func (f *fakeControl) Shutdown()                     { f.note("shutdown") }
func (f *fakeControl) Set(who Caller, name, value string) error {
	f.note("set %s=%s owner %v", name, value, who.Owner)
	return f.setErr
}

var (
	adminCaller = Caller{ID: 1, User: "adm", Stats: true, Admin: true}
	statsCaller = Caller{ID: 2, User: "st", Stats: true}
)

func run(f *fakeControl, who Caller, q string) (*Reply, error) {
	con := &Console{Control: f, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return con.Exec(who, q)
}

// wantErr checks that the statement fails with the given message and nothing was
// asked of the pooler.
func wantErr(t *testing.T, who Caller, q, msg string) {
	t.Helper()
	f := newFake()
	_, err := run(f, who, q)
	var e *Error
	if !errors.As(err, &e) || e.Message != msg {
		t.Errorf("%s: got %v, want %q", q, err, msg)
	}
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "snapshot") {
			t.Errorf("%s: asked %s", q, c)
		}
	}
}

func TestConsoleRefusals(t *testing.T) {
	wantErr(t, statsCaller, "PAUSE", "admin access needed")
	wantErr(t, statsCaller, "SET default_pool_size = 1", "admin access needed")
	wantErr(t, statsCaller, "SHOW FDS", "admin access needed")
	wantErr(t, Caller{}, "SHOW POOLS", "admin access needed")
	wantErr(t, adminCaller, "FOO", "invalid command 'FOO', use SHOW HELP;")
	wantErr(t, adminCaller, "SHOW FOO", "invalid command 'SHOW FOO', use SHOW HELP;")
	wantErr(t, adminCaller, "KILL "+strings.Repeat("d", 70), "bad arguments")
	wantErr(t, adminCaller, "KILL", "a database is required")
	wantErr(t, adminCaller, "KILL pgpool", "cannot kill admin db: pgpool")
	wantErr(t, adminCaller, "PAUSE nosuch", "no such database: nosuch")
	wantErr(t, adminCaller, "RESUME", "pooler is not paused/suspended")
	wantErr(t, adminCaller, "RESUME app", "database app is not paused")
	wantErr(t, adminCaller, "WAIT_CLOSE pgbouncer", "cannot wait in admin db: pgbouncer")
	wantErr(t, adminCaller, "RELOAD x", "invalid command 'RELOAD x', use SHOW HELP;")
	wantErr(t, adminCaller, "SUSPEND x", "invalid command 'SUSPEND x', use SHOW HELP;")
}

// TestConsoleSuspend: SUSPEND suspends, refuses a second SUSPEND and a PAUSE, and
// RESUME lifts it.
func TestConsoleSuspend(t *testing.T) {
	f := newFake()
	if r, err := run(f, adminCaller, "SUSPEND"); err != nil || r.Tag != "SUSPEND" {
		t.Fatalf("SUSPEND: %+v, %v", r, err)
	}
	for _, q := range []string{"SUSPEND", "PAUSE", "KILL app"} {
		if _, err := run(f, adminCaller, q); err == nil || err.(*Error).Message != "already suspended/paused" {
			t.Errorf("%s while suspended: %v", q, err)
		}
	}
	if r, err := run(f, adminCaller, "RESUME"); err != nil || r.Tag != "RESUME" || f.suspended {
		t.Fatalf("RESUME: %+v, %v, suspended %v", r, err, f.suspended)
	}
	wantErr(t, adminCaller, "RESUME", "pooler is not paused/suspended")
}

func TestConsoleControlCommands(t *testing.T) {
	f := newFake()
	for _, q := range []string{"PAUSE app", "RESUME app", "KILL app", "RESUME app", "RECONNECT", "WAIT_CLOSE app", "DISABLE app", "ENABLE app", "RELOAD"} {
		r, err := run(f, adminCaller, q)
		if err != nil || r.Tag != strings.Fields(q)[0] || r.Result != nil {
			t.Fatalf("%s: %+v, %v", q, r, err)
		}
	}
	want := []string{
		`paused "app" true`, `wait released "app"`, `paused "app" false`,
		`paused "app" true`, `kill "app"`, `paused "app" false`,
		`reconnect ""`, `wait close "app"`, `disabled "app" true`, `disabled "app" false`, "reload",
	}
	if got := strings.Join(f.calls, "; "); got != strings.Join(want, "; ") {
		t.Errorf("calls:\n got  %s\n want %s", got, strings.Join(want, "; "))
	}
	f.paused[""] = true
	if _, err := run(f, adminCaller, "PAUSE"); err == nil || err.(*Error).Message != "already suspended/paused" {
		t.Errorf("PAUSE while paused: %v", err)
	}
	if _, err := run(f, adminCaller, "SHUTDOWN"); !errors.Is(err, ErrExit) || f.calls[len(f.calls)-1] != "shutdown" {
		t.Errorf("SHUTDOWN: %v, calls %v", err, f.calls)
	}
}

func TestConsoleWaitsEnd(t *testing.T) {
	f := newFake()
	f.waitErr = ErrShuttingDown
	_, err := run(f, adminCaller, "WAIT_CLOSE")
	var e *Error
	if !errors.As(err, &e) || !e.Fatal || e.Code != CodeAdminShutdown {
		t.Errorf("WAIT_CLOSE while shutting down: %v", err)
	}
	f.waitErr = ErrPauseCanceled
	if _, err := run(f, adminCaller, "PAUSE app"); !errors.As(err, &e) || e.Fatal || e.Message != "PAUSE canceled by RESUME" {
		t.Errorf("PAUSE canceled: %v", err)
	}
	f.reload = ErrNoReload
	if _, err := run(f, adminCaller, "RELOAD"); !errors.As(err, &e) || !strings.HasPrefix(e.Message, "RELOAD is not available") {
		t.Errorf("RELOAD without a file: %v", err)
	}
	f.reload = errors.New("line 3: bad")
	if _, err := run(f, adminCaller, "RELOAD"); !errors.As(err, &e) || e.Message != "RELOAD failed" || e.Detail != "line 3: bad" {
		t.Errorf("RELOAD failing: %v", err)
	}
}

func TestConsoleSet(t *testing.T) {
	f := newFake()
	r, err := run(f, statsCaller, "SET client_encoding = 'UTF8'")
	if err != nil || r.Notice == nil || r.Notice.Message != "SET ignored" || r.Tag != "SET" || len(f.calls) != 0 {
		t.Fatalf("SET client_encoding: %+v %v %v", r, err, f.calls)
	}
	r, err = run(f, adminCaller, "SET Default_Pool_Size = 7")
	if err != nil || r.Tag != "SET default_pool_size=7" || f.calls[0] != "set Default_Pool_Size=7 owner false" {
		t.Fatalf("SET: %+v %v %v", r, err, f.calls)
	}
	f.setErr = errors.New(`unknown setting "nope"`)
	var e *Error
	if _, err := run(f, adminCaller, "SET nope = 1"); !errors.As(err, &e) || e.Message != "SET failed" || e.Detail != `unknown setting "nope"` {
		t.Errorf("SET refused: %v", err)
	}
	f.setErr = &SetKept{Err: errors.New("no certificate")}
	r, err = run(f, adminCaller, "SET client_tls_key_file = '/k'")
	if err != nil || r.Notice == nil || r.Notice.Detail != "no certificate" || r.Tag != "SET client_tls_key_file=/k" {
		t.Errorf("SET kept: %+v %v", r, err)
	}
}

func TestConsoleShow(t *testing.T) {
	f := newFake()
	r, err := run(f, statsCaller, "show pools;")
	if err != nil || r.Tag != "SHOW" || r.Result == nil || len(r.Result.Rows) != 2 {
		t.Fatalf("SHOW POOLS: %+v %v", r, err)
	}
	r, err = run(f, statsCaller, "SHOW HELP")
	if err != nil || r.Notice == nil || !strings.Contains(r.Notice.Detail, "WAIT_CLOSE") || r.Result != nil {
		t.Fatalf("SHOW HELP: %+v %v", r, err)
	}
	r, err = run(f, statsCaller, "SELECT client_encoding")
	if err != nil || names(r.Result) != "client_encoding" || r.Result.Column("client_encoding")[0] != "UTF-8" {
		t.Fatalf("SHOW client_encoding: %+v %v", r, err)
	}
	rd := show(t, testSnapshot(), "pools").RowDescription()
	if rd.Fields[2].DataTypeSize != 4 || rd.Fields[0].DataTypeSize != -1 || rd.Fields[0].TypeModifier != -1 {
		t.Errorf("RowDescription %+v", rd.Fields[:3])
	}
}

func TestConsoleConfigOwnerOnly(t *testing.T) {
	f := newFake()
	f.snapshot.Config = []Setting{{Key: "auth_type", Value: "md5", Changeable: true, OwnerOnly: true}}
	for _, owner := range []bool{false, true} {
		who := adminCaller
		who.Owner = owner
		r, err := run(f, who, "SHOW CONFIG")
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "no", true: "yes"}[owner]
		if got := r.Result.Column("changeable")[0]; got != want {
			t.Errorf("owner %v: auth_type changeable %s, want %s", owner, got, want)
		}
	}
}
