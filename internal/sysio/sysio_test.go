package sysio

import (
	"syscall"
	"testing"
)

// TestReadWrite checks one write and read through a non-blocking pipe, the EAGAIN of a
// read on the empty pipe, and the end of file once the write end is closed.
func TestReadWrite(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	for _, fd := range p {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	if n, e := Read(uintptr(p[0]), buf); e != syscall.EAGAIN || n != -1 {
		t.Fatalf("read of an empty pipe = %d, %v; want -1, EAGAIN", n, e)
	}
	if n, e := Write(uintptr(p[1]), []byte("hello")); e != 0 || n != 5 {
		t.Fatalf("write = %d, %v; want 5, 0", n, e)
	}
	if n, e := Read(uintptr(p[0]), buf); e != 0 || string(buf[:n]) != "hello" {
		t.Fatalf("read = %d, %v (%q); want 5, 0 (hello)", n, e, buf[:max(n, 0)])
	}
	syscall.Close(p[1])
	if n, e := Read(uintptr(p[0]), buf); e != 0 || n != 0 {
		t.Fatalf("read at end of file = %d, %v; want 0, 0", n, e)
	}
}
