package wire

// Unread returns a copy of the bytes read from the underlying reader and not yet
// returned, for a connection handed to another process with what was already read
// from it. ok is false while a message is being streamed (part of it was returned):
// the bytes are then not a whole number of messages.
func (r *Reader) Unread() (b []byte, ok bool) {
	if r.rem > 0 {
		return nil, false
	}
	return append([]byte(nil), r.buf[r.r:r.w]...), true
}

// Preload makes b the first bytes the Reader returns, before anything it reads from
// the underlying reader: the bytes another process had read from the connection and
// not processed (Unread). Call it on a new Reader, before any read.
func (r *Reader) Preload(b []byte) {
	if len(b) == 0 {
		return
	}
	r.reserve(r.w - r.r + len(b))
	r.compact()
	r.w += copy(r.buf[r.w:], b)
}
