package wire

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestReaderIdleHoldsNoBuffer: a Reader on a file descriptor (a pipe here) reads
// messages, including one that arrives in two pieces, and holds no buffer between
// them: not after Release, and not after a read that found nothing (the deadline
// has passed), so a connection blocked waiting for its next message holds none.
func TestReaderIdleHoldsNoBuffer(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	r := NewReader(pr)
	if r.raw == nil || r.buf != nil || r.small != nil {
		t.Fatalf("new Reader on a pipe: raw %v, buf %d, small %d", r.raw != nil, len(r.buf), len(r.small))
	}
	msg := AppendMessage(nil, 'Q', []byte("SELECT 1\x00"))
	if _, err := pw.Write(msg); err != nil {
		t.Fatal(err)
	}
	typ, got, err := r.Next()
	if err != nil || typ != 'Q' || !bytes.Equal(got, msg) {
		t.Fatalf("Next = %q %q %v", typ, got, err)
	}
	r.Release()
	if r.pooled != nil || len(r.buf) != 0 {
		t.Fatalf("after Release: pooled %v, buf %d", r.pooled != nil, len(r.buf))
	}

	// A message in two writes: the first read takes a buffer, the rest follows.
	if _, err := pw.Write(msg[:3]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := pw.Write(msg[3:])
		done <- err
	}()
	typ, got, err = r.Next()
	if err != nil || typ != 'Q' || !bytes.Equal(got, msg) {
		t.Fatalf("split message: Next = %q %q %v", typ, got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Nothing to read before the deadline: the buffer taken for the attempt is
	// given back, and the error is the deadline's.
	if err := pr.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Next past the deadline: %v", err)
	}
	if r.pooled != nil || len(r.buf) != 0 || r.Buffered() != 0 {
		t.Fatalf("after a read that found nothing: pooled %v, buf %d, buffered %d", r.pooled != nil, len(r.buf), r.Buffered())
	}
	if err := pr.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	// The peer closes: io.EOF, still holding nothing.
	pw.Close()
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after close: %v", err)
	}
	if r.pooled != nil || len(r.buf) != 0 {
		t.Fatalf("after EOF: pooled %v, buf %d", r.pooled != nil, len(r.buf))
	}
}

// TestReaderPreloadOnDescriptor: bytes preloaded into a Reader on a file descriptor
// come first, then what is read from it.
func TestReaderPreloadOnDescriptor(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	a := AppendMessage(nil, 'Q', []byte("a\x00"))
	b := AppendMessage(nil, 'Q', []byte("b\x00"))
	r := NewReader(pr)
	r.Preload(a[:4])
	if _, err := pw.Write(append(a[4:], b...)); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{a, b} {
		if _, got, err := r.Next(); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Next = %q %v, want %q", got, err, want)
		}
	}
}

// TestWriterIdleHoldsNoBuffer: Flush and Reset give the Writer's buffer back, and
// messages of every size (beyond the largest pooled buffer too) are written whole.
func TestWriterIdleHoldsNoBuffer(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	var want []byte
	for _, n := range []int{10, minPooledSize, 3 * minPooledSize, maxPooledSize + 10} {
		m := AppendMessage(nil, 'D', bytes.Repeat([]byte{'x'}, n))
		w.Raw(m)
		w.Raw(m)
		want = append(want, m...)
		want = append(want, m...)
		if w.Buffered() != 2*len(m) {
			t.Fatalf("buffered %d, want %d", w.Buffered(), 2*len(m))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if w.buf != nil || w.pooled != nil {
			t.Fatalf("after Flush of %d-byte messages: buf %d, pooled %v", n, cap(w.buf), w.pooled != nil)
		}
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("wrote %d bytes, want %d", out.Len(), len(want))
	}
	w.Raw([]byte("abc"))
	w.Reset()
	if w.buf != nil || w.pooled != nil || w.Buffered() != 0 {
		t.Fatalf("after Reset: buf %d, pooled %v", cap(w.buf), w.pooled != nil)
	}
}
