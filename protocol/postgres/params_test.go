package postgres

import (
	"context"
	"testing"
	"time"
)

func TestParseSetOp(t *testing.T) {
	for _, tc := range []struct {
		sql               string
		want              setOp
		isSet, followable bool
	}{
		{"SET search_path = s1", setOp{tag: "SET", name: "search_path", value: "s1"}, true, true},
		{"set search_path to s1, public;", setOp{tag: "SET", name: "search_path", value: "s1, public"}, true, true},
		{"SET SESSION search_path TO \"$user\", public", setOp{tag: "SET", name: "search_path", value: "\"$user\", public"}, true, true},
		{"SET client_min_messages TO 'warning'", setOp{tag: "SET", name: "client_min_messages", value: "'warning'"}, true, true},
		{"SET statement_timeout = DEFAULT", setOp{tag: "SET", name: "statement_timeout", value: defaultValue}, true, true},
		{"RESET search_path", setOp{tag: "RESET", name: "search_path", value: defaultValue}, true, true},
		{"RESET ALL", setOp{tag: "RESET", all: true}, true, true},
		{"DISCARD ALL", setOp{tag: "DISCARD ALL", all: true}, true, true},
		{"SET LOCAL search_path = s1", setOp{}, false, false},
		{"SET TimeZone = 'UTC'", setOp{}, false, false},
		{"SET TIME ZONE 'UTC'", setOp{}, false, false},
		{"SET search_path = s1; select 1", setOp{}, true, false},
		{"SET ROLE admin", setOp{}, true, false},
		{"select 'SET search_path = x'", setOp{}, false, false},
	} {
		op, isSet, followable := parseSetOp(tc.sql)
		if op != tc.want || isSet != tc.isSet || followable != tc.followable {
			t.Errorf("%q: got %+v %v %v; want %+v %v %v", tc.sql, op, isSet, followable, tc.want, tc.isSet, tc.followable)
		}
	}
}

// TestSetFollowsClient: one client's SET search_path and SET TimeZone are invisible to
// the other clients of the same server connection and persist for itself across
// transactions on different server connections.
func TestSetFollowsClient(t *testing.T) {
	f := newFixture(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"create schema s1", "create table public.t (v text)", "create table s1.t (v text)",
		"insert into public.t values ('public')", "insert into s1.t values ('s1')",
	} {
		if _, err := setup.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	_, addr := startPooler(t, cfg)
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	var defaultTZ string
	if err := b.QueryRow(ctx, "show timezone").Scan(&defaultTZ); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET search_path = s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET TimeZone = 'Asia/Tokyo'"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET statement_timeout = '7min'"); err != nil {
		t.Fatal(err)
	}
	// A SET that fails changes nothing.
	if _, err := a.Exec(ctx, "SET work_mem = 'not a size'"); err == nil {
		t.Fatal("bad SET succeeded")
	}
	for i := 0; i < 6; i++ {
		// Hold a transaction on one client now and then, so the two clients trade
		// server connections.
		var tx interface{ Commit(context.Context) error }
		if i%2 == 1 {
			t2, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t2.Exec(ctx, "select 1")
			tx = t2
		}
		var va, tza, sta string
		if err := a.QueryRow(ctx, "select v, current_setting('TimeZone'), current_setting('statement_timeout') from t").Scan(&va, &tza, &sta); err != nil {
			t.Fatal(err)
		}
		if va != "s1" || tza != "Asia/Tokyo" || sta != "7min" {
			t.Fatalf("round %d: client A sees %q, %q, %q; want s1, Asia/Tokyo, 7min", i, va, tza, sta)
		}
		if tx != nil {
			tx.Commit(ctx)
		}
		var vb, tzb, stb string
		if err := b.QueryRow(ctx, "select v, current_setting('TimeZone'), current_setting('statement_timeout') from t").Scan(&vb, &tzb, &stb); err != nil {
			t.Fatal(err)
		}
		if vb != "public" || tzb != defaultTZ || stb != "0" {
			t.Fatalf("round %d: client B sees %q, %q, %q; want public, %s, 0 (A's SET leaked)", i, vb, tzb, stb, defaultTZ)
		}
	}
	if _, err := a.Exec(ctx, "RESET search_path"); err != nil {
		t.Fatal(err)
	}
	var va string
	if err := a.QueryRow(ctx, "select v from t").Scan(&va); err != nil || va != "public" {
		t.Fatalf("after RESET: %q, %v", va, err)
	}
}
