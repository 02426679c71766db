//go:build !linux

package netpark

import "syscall"

// Parker parks connections; on this system it cannot (see New).
type Parker struct{}

// Conn is one connection's registration with a Parker. The zero value is ready for
// use; a Conn is parked at most once at a time.
type Conn struct{}

// New returns ErrUnsupported: this system has no epoll.
func New() (*Parker, error) { return nil, ErrUnsupported }

// Park returns ErrUnsupported.
func (p *Parker) Park(c *Conn, rc syscall.RawConn, fn func()) error { return ErrUnsupported }

// Close does nothing.
func (p *Parker) Close() error { return nil }

// Parked returns 0.
func (p *Parker) Parked() int { return 0 }

// Wake reports false: nothing is ever parked.
func (c *Conn) Wake() bool { return false }
