package postgres

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

func TestParseSetOp(t *testing.T) {
	for _, tc := range []struct {
		sql               string
		want              SetOp
		isSet, followable bool
	}{
		{"SET search_path = s1", SetOp{Tag: "SET", Name: "search_path", Value: "s1"}, true, true},
		{"set search_path to s1, public;", SetOp{Tag: "SET", Name: "search_path", Value: "s1, public"}, true, true},
		{"SET SESSION search_path TO \"$user\", public", SetOp{Tag: "SET", Name: "search_path", Value: "\"$user\", public"}, true, true},
		{"SET client_min_messages TO 'warning'", SetOp{Tag: "SET", Name: "client_min_messages", Value: "'warning'"}, true, true},
		{"SET statement_timeout = DEFAULT", SetOp{Tag: "SET", Name: "statement_timeout", Value: DefaultValue}, true, true},
		{"RESET search_path", SetOp{Tag: "RESET", Name: "search_path", Value: DefaultValue}, true, true},
		{"RESET ALL", SetOp{Tag: "RESET", All: true}, true, true},
		{"DISCARD ALL", SetOp{Tag: "DISCARD ALL", All: true}, true, true},
		{"SET LOCAL search_path = s1", SetOp{}, false, false},
		{"SET TimeZone = 'UTC'", SetOp{}, false, false},
		{"SET TIME ZONE 'UTC'", SetOp{}, false, false},
		{"SET search_path = s1; select 1", SetOp{}, true, false},
		{"SET ROLE admin", SetOp{}, true, false},
		{"select 'SET search_path = x'", SetOp{}, false, false},
		{"SET myapp.tenant = 'x'", SetOp{Tag: "SET", Name: "myapp.tenant", Value: "'x'"}, true, true},
		{"set MyApp.Tenant to 'x';", SetOp{Tag: "SET", Name: "myapp.tenant", Value: "'x'"}, true, true},
		{"RESET myapp.tenant", SetOp{Tag: "RESET", Name: "myapp.tenant", Value: DefaultValue}, true, true},
	} {
		op, isSet, followable := ParseSet(tc.sql)
		if op != tc.want || isSet != tc.isSet || followable != tc.followable {
			t.Errorf("%q: got %+v %v %v; want %+v %v %v", tc.sql, op, isSet, followable, tc.want, tc.isSet, tc.followable)
		}
	}
}

func TestParseSetConfig(t *testing.T) {
	for _, tc := range []struct {
		sql               string
		want              SetOp
		isSet, followable bool
	}{
		{"select set_config('myapp.tenant', 'x', false)", SetOp{Tag: "SELECT 1", Name: "myapp.tenant", Value: "x", Raw: true}, true, true},
		{"SELECT pg_catalog.set_config('Search_Path', 's1, public', 'f') AS sp;", SetOp{Tag: "SELECT 1", Name: "search_path", Value: "s1, public", Raw: true}, true, true},
		{"select set_config('a.b', E'it''s \\\\ x', false) v", SetOp{Tag: "SELECT 1", Name: "a.b", Value: "it's \\ x", Raw: true}, true, true},
		{"select /* c */ set_config('a.b', 'x', false) -- tail", SetOp{Tag: "SELECT 1", Name: "a.b", Value: "x", Raw: true}, true, true},
		{"select set_config('myapp.tenant', 'x', true)", SetOp{}, false, false},
		{"select set_config('TimeZone', 'UTC', false)", SetOp{}, false, false},
		{"select set_config('myapp.tenant', $1, false)", SetOp{}, true, false},
		{"select set_config('myapp.tenant', $1, true)", SetOp{}, false, false},
		{"select set_config($1, $2, $3)", SetOp{}, true, false},
		{"select set_config('a.b', 'x', false), set_config('c.d', 'y', false)", SetOp{}, true, false},
		{"select set_config('a.b', 'x', true), set_config('c.d', upper('y'), true)", SetOp{}, false, false},
		{"select 1 from t where set_config('a.b', v, false) <> ''", SetOp{}, true, false},
		{"select 'set_config(1)'", SetOp{}, false, false},
		{"select set_config('a b', 'x', false)", SetOp{}, true, false},
		{"select set_config('a.b', 'x', false); select 1", SetOp{}, true, false},
	} {
		op, isSet, followable := ParseSetConfig(tc.sql)
		if op != tc.want || isSet != tc.isSet || followable != tc.followable {
			t.Errorf("%q: got %+v %v %v; want %+v %v %v", tc.sql, op, isSet, followable, tc.want, tc.isSet, tc.followable)
		}
	}
}

// FuzzParseSetConfig: the detection never panics, a followed set_config names a plain
// parameter, and the statement pgpool replays it with reads back as the same setting.
func FuzzParseSetConfig(f *testing.F) {
	for _, s := range []string{
		"select set_config('myapp.tenant', 'x', false)",
		"select set_config('a.b', E'\\\\', 'f') as x;",
		"select set_config('a.b', $1, false)",
		"select set_config('a', 'b', true), set_config('c', 'd', true)",
		"select set_config(",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		op, isSet, followable := ParseSetConfig(sql)
		if followable != (op.Name != "") || (followable && !isSet) {
			t.Fatalf("%q: %+v %v %v", sql, op, isSet, followable)
		}
		if !followable {
			return
		}
		if !PlainName(op.Name) || op.Tag != "SELECT 1" || !op.Raw {
			t.Fatalf("%q: %+v", sql, op)
		}
		again, _, ok := ParseSetConfig(op.Statement())
		if !ok || again != op {
			t.Fatalf("%q: replayed as %q, which reads %+v", sql, op.Statement(), again)
		}
	})
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][2]string
		bad  bool
	}{
		{"-c search_path=s1 -c statement_timeout=4567", [][2]string{{"search_path", "s1"}, {"statement_timeout", "4567"}}, false},
		{"  --client-min-messages=warning\t-cwork_mem=8MB ", [][2]string{{"client_min_messages", "warning"}, {"work_mem", "8MB"}}, false},
		{`-c myapp.tenant=a\ b\\c`, [][2]string{{"myapp.tenant", `a b\c`}}, false},
		{"-c x.y=", [][2]string{{"x.y", ""}}, false},
		{"", nil, false},
		{"-c", nil, true},
		{"-c name", nil, true},
		{"--name", nil, true},
		{"-B 100", nil, true},
		{"-c =x", nil, true},
	} {
		got, err := ParseOptions(tc.in)
		var oe *OptionsError
		if tc.bad != errors.As(err, &oe) || (err != nil && oe == nil) {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// formatOptions writes settings as libpq writes PGOPTIONS, spaces and backslashes
// escaped.
func formatOptions(settings [][2]string) string {
	var b strings.Builder
	esc := strings.NewReplacer(`\`, `\\`, " ", `\ `, "\t", "\\\t", "\n", "\\\n", "\r", "\\\r", "\f", "\\\f", "\v", "\\\v")
	for _, kv := range settings {
		b.WriteString("-c " + esc.Replace(kv[0]+"="+kv[1]) + " ")
	}
	return b.String()
}

// FuzzParseOptions: reading options never panics, and settings written back with
// libpq's escaping read the same.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"-c search_path=s1 -c statement_timeout=5s", `--a-b=c\ d`, "-cx=1", "-c", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		settings, err := ParseOptions(s)
		if err != nil {
			return
		}
		again, err := ParseOptions(formatOptions(settings))
		if err != nil || len(again) != len(settings) {
			t.Fatalf("%q: %q reread as %q, %v", s, settings, again, err)
		}
		for i := range settings {
			if again[i] != settings[i] {
				t.Fatalf("%q: %q reread as %q", s, settings, again)
			}
		}
	})
}

// BenchmarkStatementInspection: the per-statement cost of following SETs and session
// state for an ordinary query; it must not allocate.
func BenchmarkStatementInspection(b *testing.B) {
	msg, _ := (&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"}).Encode(nil)
	b.ReportAllocs()
	for b.Loop() {
		SessionStateChange(wire.Query, msg)
		var first [8]byte
		FirstWordLower(StatementText(wire.Query, msg), first[:])
	}
}

func TestStatementInspectionDoesNotAllocate(t *testing.T) {
	msg, _ := (&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"}).Encode(nil)
	if n := testing.AllocsPerRun(100, func() { SessionStateChange(wire.Query, msg) }); n != 0 {
		t.Fatalf("%v allocations per ordinary statement", n)
	}
}

func TestSessionStateChange(t *testing.T) {
	for _, tc := range []struct {
		sql     string
		pin     SessionState
		recheck bool
	}{
		{"select pg_advisory_lock(1)", StateAdvisoryLock, false},
		{"SELECT pg_try_advisory_lock(1)", StateAdvisoryLock, true},
		{"select pg_try_advisory_lock_shared(1)", StateAdvisoryLock, true},
		{"select pg_advisory_xact_lock(1)", 0, false},
		{"select pg_advisory_unlock(1)", 0, true},
		{"LISTEN ch", StateListen, false},
		{"prepare q as select 1", StatePrepare, false},
		{"prepare transaction 'x'", 0, false},
		{"declare c cursor with hold for select 1", StateCursor, false},
		{"declare c cursor for select 1", 0, false},
		{"create temp table t (v int)", StateTempTable, false},
		{"create table t (v int)", 0, false},
		{"close c", 0, true},
		{"select 1", 0, false},
	} {
		msg := append([]byte{'Q', 0, 0, 0, 0}, append([]byte(tc.sql), 0)...)
		ch := SessionStateChange('Q', msg)
		if ch.Takes != tc.pin || ch.Recheck != tc.recheck {
			t.Errorf("%q: takes %v recheck %v; want %v %v", tc.sql, ch.Takes, ch.Recheck, tc.pin, tc.recheck)
		}
	}
}

// TestSchemaChangeTag: which CommandComplete tags count as schema changes.
func TestSchemaChangeTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"ALTER TABLE": true, "DROP TYPE": true, "CREATE TYPE": true, "CREATE DOMAIN": true,
		"CREATE FUNCTION": true, "DROP COLUMN": true, "CREATE TABLE": true,
		"IMPORT FOREIGN SCHEMA": true, "COMMENT": false, "GRANT": false, "SELECT 1": false,
		"INSERT 0 1": false, "DELETE 3": false, "CREATE": false, "DROPX TABLE": false,
		"DISCARD ALL": false, "DEALLOCATE ALL": false, "": false, "ALTER": false,
	} {
		if got := SchemaChangeTag(append([]byte(tag), 0)); got != want {
			t.Errorf("%q: %v, want %v", tag, got, want)
		}
	}
}

// FuzzSchemaChangeTag: the classifier never panics, and agrees with the rule read
// literally.
func FuzzSchemaChangeTag(f *testing.F) {
	for _, s := range []string{"ALTER TABLE\x00", "DROP TYPE\x00", "CREATE \x00", "IMPORT FOREIGN SCHEMA", "SELECT 1\x00", "D", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := SchemaChangeTag(body)
		tag := string(body)
		if i := strings.IndexByte(tag, 0); i >= 0 {
			tag = tag[:i]
		}
		want := tag == "IMPORT FOREIGN SCHEMA"
		for _, w := range []string{"CREATE ", "ALTER ", "DROP "} {
			if strings.HasPrefix(tag, w) && len(tag) > len(w) {
				want = true
			}
		}
		if got != want {
			t.Fatalf("%q: %v, want %v", body, got, want)
		}
	})
}
