package pgpool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWaitersShareOneTimer: however many clients wait, the pool holds one timer,
// armed for the earliest deadline; a waiter whose deadline has passed gets the
// wait-timeout error as its grant and leaves the queue, the others stay in order,
// and a waiter without a deadline never expires.
func TestWaitersShareOneTimer(t *testing.T) {
	p := &pool{}
	now := time.Now()
	late := now.Add(time.Hour)
	var ws []*waiter
	add := func(deadline time.Time) *waiter {
		w := &waiter{ch: make(chan grant, 1), since: now, deadline: deadline}
		p.mu.Lock()
		p.waiters.push(w)
		p.armExpiry(w)
		p.mu.Unlock()
		ws = append(ws, w)
		return w
	}
	for i := 0; i < 1000; i++ {
		add(late.Add(time.Duration(i) * time.Millisecond))
	}
	p.mu.Lock()
	first, at := p.expiry, p.expiryAt
	p.mu.Unlock()
	if first == nil || !at.Equal(late) {
		t.Fatalf("after 1000 waiters: timer %v armed for %v, want one armed for %v", first != nil, at, late)
	}
	never := add(time.Time{})
	due := add(now.Add(-time.Millisecond)) // already past: the timer fires at once
	select {
	case g := <-due.ch:
		if !errors.Is(g.err, ErrQueryWaitTimeout) {
			t.Fatalf("expired waiter's grant: %+v, want ErrQueryWaitTimeout", g)
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiter past its deadline got nothing")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.expiry != first {
		t.Fatal("the pool's timer was replaced, not re-armed")
	}
	if !due.gone || p.waiters.n != 1001 || p.waiters.head != ws[0] || p.waiters.tail != never {
		t.Fatalf("queue after expiry: %d waiters, expired one gone %v", p.waiters.n, due.gone)
	}
	if !p.expiryAt.Equal(late) {
		t.Fatalf("re-armed for %v, want the earliest left, %v", p.expiryAt, late)
	}
	for _, w := range ws {
		if w != due && len(w.ch) != 0 {
			t.Fatal("a waiter before its deadline was granted something")
		}
	}
	p.expiry.Stop()
}

// TestDroppedPoolStopsWaitTimer: when a reload removes the database of a pool whose
// client waits for a server connection, the waiting client gets an error at once and
// the pool's wait timer, armed for query_wait_timeout, is stopped with it rather than
// left to fire later on a pool nobody holds.
func TestDroppedPoolStopsWaitTimer(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = time.Hour
	pl, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	holder := connect(t, f.connString(addr))
	if _, err := holder.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "select 1"); err != nil { // binds the one server connection
		t.Fatal(err)
	}
	waiter := connect(t, f.connString(addr))
	done := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "select 1")
		done <- err
	}()
	var p *pool
	waitFor(t, "a client waiting for a server connection", 30*time.Second, func() bool {
		pl.mu.Lock()
		p = pl.pools[poolKey{f.db, f.user}]
		pl.mu.Unlock()
		return p != nil && p.stats.waiting.Load() == 1
	})
	p.mu.Lock()
	armed := p.expiry
	p.mu.Unlock()
	if armed == nil {
		t.Fatal("a client waits with query_wait_timeout set, but the pool has no wait timer")
	}

	next := *cfg
	next.Databases = map[string]*Database{}
	pl.Reload(&next)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the waiting client's query succeeded on a removed database")
		}
	case <-ctx.Done():
		t.Fatal("the waiting client got nothing when its pool was removed")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		t.Fatal("the removed database's pool is not closed")
	}
	if p.expiry.Stop() {
		t.Fatal("the removed pool's wait timer was still armed")
	}
}
