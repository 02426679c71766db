package wire

import "sync"

// Buffer size classes: 8 KiB for ordinary bursts, doubling up to 1 MiB. Larger
// buffers are allocated for one message and dropped afterwards.
const (
	minPooledSize = 8 << 10
	maxPooledSize = 1 << 20
	numClasses    = 8 // 8K, 16K, ..., 1M
)

var pools [numClasses]sync.Pool

// free keeps up to freeCap buffers of the smallest class apart from pools[0], which
// the garbage collector empties: connections take one for every burst they read or
// write, and would otherwise allocate afresh after each collection.
const freeCap = 1024

var free = make(chan *[]byte, freeCap)

func classOf(size int) int {
	c, n := 0, minPooledSize
	for n < size {
		n <<= 1
		c++
	}
	return c
}

// getBuf returns a buffer of at least size bytes. Buffers of more than maxPooledSize
// bytes are allocated fresh and never pooled.
func getBuf(size int) *[]byte {
	if size > maxPooledSize {
		b := make([]byte, size)
		return &b
	}
	c := classOf(size)
	if c == 0 {
		select {
		case b := <-free:
			return b
		default:
		}
	}
	if v := pools[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, minPooledSize<<c)
	return &b
}

// putBuf returns a buffer obtained from getBuf.
func putBuf(b *[]byte) {
	n := cap(*b)
	if n > maxPooledSize || n < minPooledSize {
		return
	}
	c := classOf(n)
	if minPooledSize<<c != n {
		return
	}
	*b = (*b)[:n]
	if c == 0 {
		select {
		case free <- b:
			return
		default:
		}
	}
	pools[c].Put(b)
}
