package pgpool

import (
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
