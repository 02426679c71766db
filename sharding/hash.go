package sharding

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// HashFunc hashes a key to 32 bits. The functions returned by LookupHash do not retain
// or modify key, do not allocate, and are safe for concurrent use.
type HashFunc func(key []byte) uint32

// ErrUnknownHash is returned (wrapped) by LookupHash for a name it does not know.
var ErrUnknownHash = errors.New("sharding: unknown hash")

// DefaultHash is the hash twemproxy uses when a pool has no hash: key.
const DefaultHash = "fnv1a_64"

// hashes lists the hash functions by their nutcracker.yml names, in twemproxy's order,
// followed by our additions.
var hashes = []struct {
	name string
	fn   HashFunc
}{
	{"one_at_a_time", hashOneAtATime},
	{"md5", hashMD5},
	{"crc16", hashCRC16},
	{"crc32", hashCRC32},
	{"crc32a", hashCRC32a},
	{"fnv1_64", hashFNV1_64},
	{"fnv1a_64", hashFNV1a_64},
	{"fnv1_32", hashFNV1_32},
	{"fnv1a_32", hashFNV1a_32},
	{"hsieh", hashHsieh},
	{"murmur", hashMurmur},
	{"jenkins", hashJenkins},
	{"xxhash", hashXXHash},
}

// LookupHash returns the hash function named as in a nutcracker.yml hash: key (for
// example "fnv1a_64", "murmur"; see HashNames). Names are case-sensitive, as in
// twemproxy. An unknown name gives an error wrapping ErrUnknownHash.
func LookupHash(name string) (HashFunc, error) {
	for _, h := range hashes {
		if h.name == name {
			return h.fn, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownHash, name)
}

// HashNames returns the names LookupHash accepts: twemproxy's twelve in its order, then
// "xxhash", which twemproxy does not have. The caller owns the returned slice.
func HashNames() []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.name
	}
	return names
}

// IsTwemproxyHash reports whether name is one of twemproxy's own twelve hash names, that
// is, one a nutcracker.yml for nutcracker itself may use.
func IsTwemproxyHash(name string) bool {
	for _, h := range hashes[:12] {
		if h.name == name {
			return true
		}
	}
	return false
}

// signExtend returns b as a C char (signed on x86) converted to uint32, the way several of
// twemproxy's hash functions read key bytes: bytes 0x80-0xff become 0xffffff80-0xffffffff.
func signExtend(b byte) uint32 {
	return uint32(int32(int8(b)))
}

// hashMD5 is twemproxy's md5: the first four bytes of the MD5 digest, little-endian.
func hashMD5(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}

// hashXXHash is the lower 32 bits of XXH64 with seed 0. It is not in twemproxy.
func hashXXHash(key []byte) uint32 {
	return uint32(xxhash.Sum64(key))
}

// hashOneAtATime is Bob Jenkins' one-at-a-time hash reading bytes as signed chars.
func hashOneAtATime(key []byte) uint32 {
	var h uint32
	for _, b := range key {
		h += signExtend(b)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}
