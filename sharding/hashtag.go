package sharding

import "bytes"

// HashKey returns the part of key that is hashed in a pool with the given hash_tag. tag is
// empty (no hash tag) or two bytes, an opening and a closing delimiter, such as "{}". As
// in twemproxy: find the first tag[0] in key, then the first tag[1] after it; if at least
// one byte lies between them, those bytes are hashed, otherwise the whole key is.
//
// The result is a sub-slice of key (no copy, no allocation). A tag that is neither empty
// nor two bytes long is treated as empty.
func HashKey(key []byte, tag string) []byte {
	if len(tag) != 2 {
		return key
	}
	start := bytes.IndexByte(key, tag[0])
	if start < 0 {
		return key
	}
	end := bytes.IndexByte(key[start+1:], tag[1])
	if end <= 0 { // not found, or nothing between the delimiters
		return key
	}
	return key[start+1 : start+1+end]
}
