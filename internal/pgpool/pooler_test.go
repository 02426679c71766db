package pgpool

import (
	"context"
	"testing"
	"time"
)

func TestSimpleQueryThroughPooler(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	c := connect(t, f.connString(addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := c.QueryRow(ctx, "select 1 + $1::int", 41).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Fatalf("got %d, want 42", n)
	}
	if _, err := c.Exec(ctx, "create table t (id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into t values (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := c.QueryRow(ctx, "select v from t where id = 1").Scan(&v); err != nil || v != "a" {
		t.Fatalf("got %q, %v", v, err)
	}
}
