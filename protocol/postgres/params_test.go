package postgres

import (
	"context"
	"testing"
	"time"
)

func TestParseSearchPathChange(t *testing.T) {
	for _, tc := range []struct {
		sql, want string
		ok        bool
	}{
		{"SET search_path = s1", "s1", true},
		{"set search_path to s1, public;", "s1, public", true},
		{"SET SESSION search_path TO \"$user\", public", "\"$user\", public", true},
		{"SET LOCAL search_path = s1", "", false},
		{"SET search_path TO DEFAULT", defaultValue, true},
		{"RESET search_path", defaultValue, true},
		{"RESET ALL", defaultValue, true},
		{"DISCARD ALL", defaultValue, true},
		{"SET search_path = s1; select 1", "", false},
		{"SET statement_timeout = 5", "", false},
		{"select 'SET search_path = x'", "", false},
	} {
		got, ok := parseSearchPathChange(tc.sql)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q, %v", tc.sql, got, ok, tc.want, tc.ok)
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
		var va, tza string
		if err := a.QueryRow(ctx, "select v, current_setting('TimeZone') from t").Scan(&va, &tza); err != nil {
			t.Fatal(err)
		}
		if va != "s1" || tza != "Asia/Tokyo" {
			t.Fatalf("round %d: client A sees %q, %q; want s1, Asia/Tokyo", i, va, tza)
		}
		if tx != nil {
			tx.Commit(ctx)
		}
		var vb, tzb string
		if err := b.QueryRow(ctx, "select v, current_setting('TimeZone') from t").Scan(&vb, &tzb); err != nil {
			t.Fatal(err)
		}
		if vb != "public" || tzb != defaultTZ {
			t.Fatalf("round %d: client B sees %q, %q; want public, %s (A's SET leaked)", i, vb, tzb, defaultTZ)
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
