package sharding

import (
	"bytes"
	"testing"
)

func TestHashKey(t *testing.T) {
	tests := []struct {
		key, tag, want string
	}{
		{"user:{42}:name", "{}", "42"},
		{"{a}{b}", "{}", "a"},
		{"{}x{y}", "{}", "{}x{y}"}, // empty tag: whole key
		{"x{yz", "{}", "x{yz"},     // no closing byte
		{"x}y{z", "{}", "x}y{z"},   // closing byte only before the opening one
		{"}{ab}", "{}", "ab"},
		{"foo:bar:baz", "::", "bar"},
		{"a::b", "::", "a::b"},
		{"plain", "", "plain"},
		{"$a$", "$$", "a"},
		{"a{b}c", "{", "a{b}c"}, // a tag that is not two bytes is ignored
		{"", "{}", ""},
	}
	for _, tt := range tests {
		if got := HashKey([]byte(tt.key), tt.tag); string(got) != tt.want {
			t.Errorf("HashKey(%q, %q) = %q, want %q", tt.key, tt.tag, got, tt.want)
		}
	}
}

func FuzzHashKey(f *testing.F) {
	f.Add([]byte("user:{42}:name"), "{}")
	f.Add([]byte("{}"), "{}")
	f.Add([]byte("a:b:c"), "::")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, key []byte, tag string) {
		got := HashKey(key, tag)
		if len(tag) != 2 {
			if !bytes.Equal(got, key) {
				t.Fatalf("tag %q: got %q, want the whole key", tag, got)
			}
			return
		}
		if len(got) == len(key) {
			return // whole key
		}
		// A proper sub-slice: inside key, non-empty, delimited as documented.
		if len(got) == 0 {
			t.Fatalf("empty result for %q", key)
		}
		start := bytes.IndexByte(key, tag[0])
		if start < 0 || !bytes.Equal(key[start+1:start+1+len(got)], got) {
			t.Fatalf("HashKey(%q, %q) = %q is not after the first %q", key, tag, got, tag[0])
		}
		end := start + 1 + len(got)
		if end >= len(key) || key[end] != tag[1] || bytes.IndexByte(got, tag[1]) >= 0 {
			t.Fatalf("HashKey(%q, %q) = %q does not end at the first %q", key, tag, got, tag[1])
		}
		if len(got) > 0 && &got[0] != &key[start+1] {
			t.Fatal("result is not a sub-slice of key")
		}
	})
}
